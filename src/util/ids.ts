import { randomBytes } from 'node:crypto';

/** A 64-hex id, as moby's for networks, endpoints and containers. */
export function newId(): string {
  return randomBytes(32).toString('hex');
}

/** RFC 3339 with nanoseconds, as Go prints time.Time in JSON ("2026-11-22T06:38:03.609685482Z"). */
export function nowRfc3339Nano(): string {
  const now = process.hrtime.bigint();
  const ms = Date.now();
  const iso = new Date(ms).toISOString(); // ...T06:38:03.609Z
  const nanos = String(ms % 1000).padStart(3, '0') + String(now % 1_000_000n).padStart(6, '0');
  return `${iso.slice(0, 19)}.${nanos}Z`;
}

/** Go's time.String() form used by `docker network ls --format {{.CreatedAt}}`. */
export function goTimeString(rfc3339: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d+))?Z$/.exec(rfc3339);
  if (!m) return rfc3339;
  const frac = (m[3] ?? '').replace(/0+$/, '');
  return `${m[1]} ${m[2]}${frac ? `.${frac}` : ''} +0000 UTC`;
}
