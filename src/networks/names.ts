import { invalid } from '../errors.js';

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Docker's rule for container names, applied to networks and sandboxes alike. */
export function validateName(kind: 'network' | 'sandbox', name: string): void {
  if (!name) throw invalid(`${kind} name must not be empty`);
  if (!NAME.test(name) || name.length > 128)
    throw invalid(`invalid ${kind} name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed (at most 128 characters)`);
}

/** An alias or hostname: an RFC 1123 label sequence. */
export function validateHostname(kind: string, name: string): void {
  if (!/^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/.test(name))
    throw invalid(`invalid ${kind} "${name}": use letters, digits, '-' and '.' (RFC 1123)`);
}
