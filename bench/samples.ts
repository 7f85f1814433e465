/**
 * Which samples count. A sample during which the client saw an error (refused or reset
 * connections, timeouts) or a response other than 2xx measured something else than the path
 * working: it is kept in the results with the reason, and left out of every median and ratio. Pure.
 */

/** Why a sample with these metrics is dropped, or undefined when it counts. */
export function dropReason(metrics: Readonly<Record<string, number>>): string | undefined {
  const errors = metrics.errors ?? 0;
  const non2xx = metrics.non2xx ?? 0;
  const parts: string[] = [];
  if (errors > 0) parts.push(`${errors} error${errors === 1 ? '' : 's'}`);
  if (non2xx > 0) parts.push(`${non2xx} non-2xx response${non2xx === 1 ? '' : 's'}`);
  return parts.length ? parts.join(', ') : undefined;
}

/** Whether a stored sample enters the statistics: measured, and not dropped. */
export function counts(s: { error?: string; dropped?: string }): boolean {
  return s.error === undefined && s.dropped === undefined;
}
