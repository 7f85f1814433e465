/**
 * How a command ends when it does not succeed. The exit statuses follow docker's:
 * 125 for a command line the CLI refuses, 1 for a daemon error, the process's own status
 * for run/exec.
 */

export const EXIT_USAGE = 125;

/** A mistake in the command line, caught before anything reaches the daemon. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Ends the command with `code`; `message`, when not empty, goes to stderr. */
export class ExitStatus extends Error {
  override readonly name = 'ExitStatus';
  constructor(
    readonly code: number,
    message = '',
  ) {
    super(message);
  }
}
