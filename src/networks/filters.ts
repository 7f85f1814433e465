/**
 * Engine API list filters: `?filters={"driver":{"bridge":true}}` (or the older
 * `{"driver":["bridge"]}`), parsed and checked against the keys an endpoint accepts.
 */
import { invalid } from '../errors.js';
import { LinearRegExp, PatternError } from './linear-regexp.js';

export type Filters = Map<string, string[]>;

/** Values per filter key: each may be a pattern tested against every network. */
const MAX_FILTER_VALUES = 64;
const MAX_FILTER_VALUE = 1024;

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
    if (Array.isArray(value)) {
      if (value.some((v) => typeof v !== 'string')) throw invalid(`invalid filter '${key}': values must be strings`);
      values = value as string[];
    } else if (value && typeof value === 'object') {
      const entries = Object.entries(value);
      if (entries.some(([, on]) => typeof on !== 'boolean')) throw invalid(`invalid filter '${key}': expected {"value": true, ...}`);
      values = entries.filter(([, on]) => on === true).map(([k]) => k);
    } else throw invalid(`invalid filter '${key}': expected a set of values`);
    if (values.length > MAX_FILTER_VALUES) throw invalid(`invalid filter '${key}': more than ${MAX_FILTER_VALUES} values`);
    if (values.some((v) => v.length > MAX_FILTER_VALUE)) throw invalid(`invalid filter '${key}': a value is longer than ${MAX_FILTER_VALUE} characters`);
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

// Compiled patterns of recent requests: one list tests the same pattern against every network.
const compiled = new Map<string, LinearRegExp | null>();

function compile(pattern: string): LinearRegExp | null {
  let re = compiled.get(pattern);
  if (re === undefined) {
    try {
      re = new LinearRegExp(pattern);
    } catch (err) {
      if (!(err instanceof PatternError)) throw err;
      re = null;
    }
    if (compiled.size >= 256) compiled.clear();
    compiled.set(pattern, re);
  }
  return re;
}

/**
 * moby's filters.Match: equal, or an unanchored regular expression that matches (in time
 * linear in the value, as Go's regexp); a pattern that does not compile matches nothing more.
 */
export function matchPattern(value: string, pattern: string): boolean {
  return value === pattern || (compile(pattern)?.test(value) ?? false);
}

/** `until`: a Go duration ("24h", "1h30m", "90s") before now, or a timestamp. Returns epoch ms. */
export function parseUntil(text: string, now = Date.now()): number {
  // Bounded before any regular expression sees it: a duration or a timestamp is short.
  if (text.length > 64) throw invalid(`invalid filter 'until=${text.slice(0, 64)}...': expected a duration like 24h or a timestamp`);
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
