/**
 * Errors the service layer raises, classed the way moby classes them, because the
 * docker CLI decides from the HTTP status (`network rm -f` needs a 404, for one).
 * The API maps each kind to its status; the CLI prints the message and exits non-zero.
 */
export type ErrorKind = 'invalid' | 'not-found' | 'conflict' | 'forbidden' | 'unavailable' | 'system';

export const statusOf: Record<ErrorKind, number> = {
  invalid: 400,
  forbidden: 403,
  'not-found': 404,
  conflict: 409,
  system: 500,
  unavailable: 503,
};

export class ServiceError extends Error {
  override readonly name = 'ServiceError';
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export const invalid = (msg: string) => new ServiceError('invalid', msg);
export const notFound = (msg: string) => new ServiceError('not-found', msg);
export const conflict = (msg: string) => new ServiceError('conflict', msg);
export const forbidden = (msg: string) => new ServiceError('forbidden', msg);
export const unavailable = (msg: string) => new ServiceError('unavailable', msg);
export const systemError = (msg: string) => new ServiceError('system', msg);
