/**
 * The macvlan driver's -o options as moby reads them (`parent`, `macvlan_mode`), with moby's
 * error messages, and the parent's VLAN form (`IF.VID`).
 */
import { invalid } from '../../errors.js';

export const MacvlanOption = { parent: 'parent', mode: 'macvlan_mode' } as const;
export const MACVLAN_MODES = ['bridge', 'private', 'vepa', 'passthru'] as const;
export type MacvlanMode = (typeof MACVLAN_MODES)[number];

/** The mode of a network's children: -o macvlan_mode, bridge when not given (moby's default). */
export function modeOf(options: Readonly<Record<string, string>>): MacvlanMode {
  const m = options[MacvlanOption.mode] ?? '';
  return m === '' ? 'bridge' : (m as MacvlanMode);
}

/** -o parent=IF.VID split into the trunk and the VLAN id, as moby's parseVlan does (without the existence check). */
export function parseVlanParent(parent: string): { trunk: string; vid: number } {
  const parts = parent.split('.');
  if (parts.length !== 2) throw invalid(`required interface name format is: name.vlan_id, ex. eth0.10 for vlan 10, instead received ${parent}`);
  const [trunk, vidText] = parts;
  const vid = /^[0-9]+$/.test(vidText) ? Number(vidText) : NaN;
  if (!Number.isInteger(vid)) throw invalid(`unable to parse a valid vlan id from: ${vidText} (ex. eth0.10 for vlan 10)`);
  return { trunk, vid };
}

/** The checks that need no kernel: mode, a parent name that can exist, never loopback. */
export function validateMacvlanOptions(options: Readonly<Record<string, string>>): void {
  const mode = options[MacvlanOption.mode];
  if (mode !== undefined && mode !== '' && !(MACVLAN_MODES as readonly string[]).includes(mode))
    throw invalid(`requested macvlan mode '${mode}' is not valid, 'bridge' mode is the macvlan driver default`);
  const parent = options[MacvlanOption.parent];
  if (parent === undefined || parent === '') return;
  if (parent === 'lo') throw invalid('loopback interface is not a valid macvlan parent link');
  if (!/^[a-zA-Z0-9_.@:-]{1,15}$/.test(parent)) throw invalid(`invalid parent interface name "${parent}": 1-15 characters of [a-zA-Z0-9_.@:-]`);
}
