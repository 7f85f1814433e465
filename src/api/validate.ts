/**
 * One declarative validator for everything a client sends: a route states the shape of its
 * body and query as a schema (types, string lengths, list and map sizes, integer ranges), and
 * check() either returns the typed value or throws a 400 naming the field. Unknown object keys
 * are ignored, as Go's encoding/json does for moby; null is accepted wherever a field is optional,
 * as Go reads null as the zero value. Nesting depth is bounded by the schemas themselves, and the
 * raw text by boundedJson() before it is parsed.
 */
import { invalid } from '../errors.js';

export interface Schema<T> {
  /** What the field must be, for error messages ("a string of at most 255 characters"). */
  readonly expected: string;
  /** The checked value; throws an `invalid` ServiceError naming `path`. */
  check(value: unknown, path: string): T;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

/** Longest string any field accepts unless its schema says otherwise. */
export const DEFAULT_MAX_STRING = 4096;

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value === 'number' && !Number.isFinite(value) ? 'non-finite number' : typeof value;
}

/** The name of a field in messages; the top level is the body itself. */
function where(path: string): string {
  return path || 'request body';
}

function fail(path: string, expected: string, value: unknown): never {
  throw invalid(`invalid ${where(path)}: expected ${expected}, got ${typeName(value)}`);
}

export function str(opts: { max?: number; min?: number; oneOf?: readonly string[] } = {}): Schema<string> {
  const max = opts.max ?? DEFAULT_MAX_STRING;
  const min = opts.min ?? 0;
  const expected = opts.oneOf ? `one of ${opts.oneOf.map((s) => JSON.stringify(s)).join(', ')}` : `a string of ${min > 0 ? `${min} to ${max}` : `at most ${max}`} characters`;
  return {
    expected,
    check(value, path) {
      if (typeof value !== 'string') fail(path, expected, value);
      if (value.length > max || value.length < min) throw invalid(`invalid ${where(path)}: expected ${expected}, got ${value.length} characters`);
      if (value.includes('\0')) throw invalid(`invalid ${where(path)}: NUL characters are not allowed`);
      if (opts.oneOf && !opts.oneOf.includes(value)) throw invalid(`invalid ${where(path)}: expected ${expected}, got ${JSON.stringify(value.slice(0, 64))}`);
      return value;
    },
  };
}

export function bool(): Schema<boolean> {
  return {
    expected: 'a boolean',
    check(value, path) {
      if (typeof value !== 'boolean') fail(path, 'a boolean', value);
      return value;
    },
  };
}

export function int(min: number, max: number): Schema<number> {
  const expected = `an integer from ${min} to ${max}`;
  return {
    expected,
    check(value, path) {
      if (typeof value !== 'number' || !Number.isInteger(value)) fail(path, expected, value);
      if (value < min || value > max) throw invalid(`invalid ${where(path)}: expected ${expected}, got ${value}`);
      return value;
    },
  };
}

export function list<T>(item: Schema<T>, max: number): Schema<T[]> {
  const expected = `a list of at most ${max} items (${item.expected})`;
  return {
    expected,
    check(value, path) {
      if (!Array.isArray(value)) fail(path, expected, value);
      if (value.length > max) throw invalid(`invalid ${where(path)}: expected at most ${max} items, got ${value.length}`);
      return value.map((v, i) => item.check(v, `${path}[${i}]`));
    },
  };
}

/** A JSON object used as a map (labels, options): string keys, values of one schema. */
export function dict<T>(value: Schema<T>, maxKeys: number, maxKey = 1024): Schema<Record<string, T>> {
  const expected = `an object of at most ${maxKeys} keys (${value.expected})`;
  return {
    expected,
    check(v, path) {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, expected, v);
      const entries = Object.entries(v);
      if (entries.length > maxKeys) throw invalid(`invalid ${where(path)}: expected at most ${maxKeys} keys, got ${entries.length}`);
      // A null prototype: a key "__proto__" stays a key.
      const out = Object.create(null) as Record<string, T>;
      for (const [k, x] of entries) {
        if (k.length === 0 || k.length > maxKey || k.includes('\0')) throw invalid(`invalid ${where(path)}: keys must be 1 to ${maxKey} characters without NUL`);
        out[k] = value.check(x, `${path}.${k.slice(0, 64)}`);
      }
      // Back to a plain object so JSON rendering and `in` behave as elsewhere.
      return { ...out };
    },
  };
}

/** An optional field: absent or null both read as undefined. */
export function opt<T>(s: Schema<T>): Schema<T | undefined> {
  return {
    expected: `${s.expected} or null`,
    check(value, path) {
      return value === undefined || value === null ? undefined : s.check(value, path);
    },
  };
}

type Fields = Record<string, Schema<unknown>>;
type ObjectOf<F extends Fields> = { [K in keyof F as undefined extends Infer<F[K]> ? never : K]: Infer<F[K]> } & {
  [K in keyof F as undefined extends Infer<F[K]> ? K : never]?: Infer<F[K]>;
};

/** A JSON object with known fields; required ones are those not wrapped in opt(). */
export function obj<F extends Fields>(fields: F): Schema<ObjectOf<F>> {
  const expected = 'an object';
  return {
    expected,
    check(value, path) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, expected, value);
      const src = value as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const [key, schema] of Object.entries(fields)) {
        const v = Object.prototype.hasOwnProperty.call(src, key) ? src[key] : undefined;
        const checked = schema.check(v, path ? `${path}.${key}` : key);
        if (checked !== undefined) out[key] = checked;
      }
      return out as ObjectOf<F>;
    },
  };
}

/** Checks a request body: `invalid body: ...` or `invalid Name: ...` for a top-level field. */
export function checkBody<T>(schema: Schema<T>, body: unknown): T {
  return schema.check(body, '');
}

/** Query parameters: each declared one is a string schema; repeated or unknown keys as moby reads them (first value, ignored). */
export function checkQuery<F extends Record<string, Schema<unknown>>>(query: URLSearchParams, fields: F): ObjectOf<F> {
  const out: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(fields)) {
    const v = query.get(key);
    const checked = schema.check(v === null ? undefined : v, `query parameter ${key}`);
    if (checked !== undefined) out[key] = checked;
  }
  return out as ObjectOf<F>;
}

/** A boolean query flag as moby's httputils.BoolValue reads it: "", "0", "no", "false", "none" are false. */
export function flag(): Schema<boolean> {
  return {
    expected: 'a boolean flag',
    check(value, path) {
      if (value === undefined) return false;
      if (typeof value !== 'string' || value.length > 16) fail(path, 'a boolean flag', value);
      return !['', '0', 'no', 'false', 'none'].includes(value.trim().toLowerCase());
    },
  };
}

/** Limits on raw JSON text, checked before JSON.parse so no parse or walk grows with them. */
export const JSON_LIMITS = { maxBytes: 1024 * 1024, maxDepth: 32 } as const;

/**
 * Throws unless `text` nests at most maxDepth arrays/objects (one linear pass over the text,
 * skipping strings), so a body of 100,000 brackets is refused without being parsed.
 */
export function checkJsonDepth(text: string, maxDepth = JSON_LIMITS.maxDepth): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) throw invalid(`invalid JSON: nested deeper than ${maxDepth} levels`);
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}
