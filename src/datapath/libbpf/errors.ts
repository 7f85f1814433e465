/**
 * A failed kernel or libbpf call. `code` is the errno name ("ENOENT", "EEXIST", "E2BIG"...),
 * `errno` its number; the message names the object: `map "nat4" update: ... File exists`.
 * The native addon constructs this class (registered at load), so callers can test
 * `err instanceof BpfError && err.code === 'EEXIST'`.
 * Wrong argument types or sizes are TypeErrors, not BpfErrors.
 */
export class BpfError extends Error {
  override readonly name = 'BpfError';
  readonly code: string;
  readonly errno: number;

  constructor(message: string, code: string, errno: number) {
    super(message);
    this.code = code;
    this.errno = errno;
  }
}

/** True if err is a BpfError with the given errno name. */
export function isBpfError(err: unknown, code?: string): err is BpfError {
  return err instanceof BpfError && (code === undefined || err.code === code);
}
