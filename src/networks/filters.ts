/**
 * Engine API list filters: `?filters={"driver":{"bridge":true}}` (or the older
 * `{"driver":["bridge"]}`), parsed and checked against the keys an endpoint accepts.
 */
import { invalid } from '../errors.js';

export type Filters = Map<string, string[]>;

export function parseFilters(text: string | null | undefined, accepted: readonly string[]): Filters {
  const out: Filters = new Map();
  if (!text) return out;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw invalid(`invalid filter: ${text} is not JSON`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid('invalid filter: expected an object');
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (!accepted.includes(key)) throw invalid(`invalid filter '${key}'`);
    let values: string[];
    if (Array.isArray(value)) values = value.map(String);
    else if (value && typeof value === 'object') values = Object.entries(value).filter(([, on]) => on === true).map(([k]) => k);
    else throw invalid(`invalid filter '${key}': expected a set of values`);
    if (values.length > 0) out.set(key, values);
  }
  return out;
}

/** A `label` filter: `k` (present) or `k=v` (equal). */
export function matchLabel(labels: Record<string, string>, filter: string): boolean {
  const eq = filter.indexOf('=');
  if (eq < 0) return filter in labels;
  return labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}

/** moby's filters.Match: an unanchored regular expression, so in effect a substring match. */
export function matchPattern(value: string, pattern: string): boolean {
  try {
    return new RegExp(pattern).test(value);
  } catch {
    return value.includes(pattern);
  }
}

/** `until`: a Go duration ("24h", "1h30m", "90s") before now, or a timestamp. Returns epoch ms. */
export function parseUntil(text: string, now = Date.now()): number {
  const dur = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(text);
  if (dur && text !== '') {
    const [h, m, s] = dur.slice(1).map((x) => Number(x ?? 0));
    return now - ((h * 60 + m) * 60 + s) * 1000;
  }
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw invalid(`invalid filter 'until=${text}': expected a duration like 24h or a timestamp`);
  return t;
}
