/**
 * GET /events filters, as moby reads them: `filters` is JSON, either {"key":{"value":true}}
 * (the docker CLI's form) or {"key":["value"]}; an event passes when, for every key given, one
 * of its values matches. `since` and `until` are Unix seconds (with an optional .nanoseconds)
 * or RFC 3339 times.
 */
import { invalid } from '../errors.js';
import type { EventMessage } from './network-events.js';

const KEYS = ['type', 'event', 'network', 'scope', 'label', 'container', 'driver'] as const;

export type EventFilter = Map<string, Set<string>>;

export function parseEventFilters(text: string | null): EventFilter {
  const out: EventFilter = new Map();
  if (!text) return out;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw invalid(`invalid filter: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw invalid('invalid filter: expected a JSON object');
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (!(KEYS as readonly string[]).includes(key)) throw invalid(`invalid filter '${key}'`);
    const values = Array.isArray(value) ? value : value && typeof value === 'object' ? Object.keys(value) : undefined;
    if (!values || values.some((v) => typeof v !== 'string')) throw invalid(`invalid filter '${key}': values must be strings`);
    out.set(key, new Set(values as string[]));
  }
  return out;
}

/** Does `e` pass `f`? type, event, network (id or name), scope, container, driver. */
export function matchesEvent(e: EventMessage, f: EventFilter): boolean {
  const has = (key: string, ...candidates: Array<string | undefined>) => {
    const want = f.get(key);
    return !want || candidates.some((c) => c !== undefined && want.has(c));
  };
  const a = e.Actor.Attributes;
  if (f.has('label')) return false; // network events carry no labels
  return (
    has('type', e.Type) &&
    has('event', e.Action) &&
    has('network', e.Actor.ID, a.name, ...[...(f.get('network') ?? [])].filter((v) => v.length >= 3 && e.Actor.ID.startsWith(v))) &&
    has('scope', e.scope) &&
    has('container', a.container) &&
    has('driver', a.type)
  );
}

/** `since`/`until` -> nanoseconds since the epoch; undefined when absent. */
export function parseEventTime(name: string, text: string | null, now = Date.now()): bigint | undefined {
  if (text === null || text === '') return undefined;
  const m = /^(\d+)(?:\.(\d{1,9}))?$/.exec(text);
  if (m) return BigInt(m[1]) * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0') || '0');
  const d = /^-?\d+(\.\d+)?[smh]$/.test(text) ? now - Number(text.slice(0, -1)) * { s: 1e3, m: 6e4, h: 36e5 }[text.at(-1) as 's' | 'm' | 'h'] : Date.parse(text);
  if (Number.isNaN(d)) throw invalid(`invalid value for ${name}: "${text}"`);
  return BigInt(Math.round(d)) * 1_000_000n;
}
