import { describe, expect, it } from 'vitest';
import { matchPattern, parseFilters, parseUntil } from '../../src/networks/filters.js';
import { LinearRegExp, PatternError } from '../../src/networks/linear-regexp.js';

describe('linear-time filter patterns', () => {
  it('answers the evil pattern from issue 10 at once, on a long id', () => {
    const id = 'ab12'.repeat(16);
    // A backtracking engine needs ~2^n steps here: at n = 30 that is minutes; RegExp is not used.
    const evil = '([0-9a-f]+)+x';
    const text = `${'a'.repeat(30)}`;
    const t0 = performance.now();
    expect(matchPattern(id, evil)).toBe(false);
    expect(matchPattern(text, evil)).toBe(false);
    expect(matchPattern('a'.repeat(10_000), '(a*)*(a|aa)*b')).toBe(false);
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('grows linearly: 10x the text costs about 10x, not 100x or more', () => {
    const re = new LinearRegExp('(([0-9a-f]+)+)*x');
    const time = (n: number) => {
      const s = '0'.repeat(n);
      const t0 = performance.now();
      for (let i = 0; i < 5; i++) expect(re.test(s)).toBe(false);
      return performance.now() - t0;
    };
    time(2000); // warm up
    const small = time(4000);
    const large = time(40_000);
    expect(large / small).toBeLessThan(30);
  });

  it('matches what moby filters match (Go regexp semantics: unanchored)', () => {
    const cases: Array<[string, string, boolean]> = [
      ['front', 'front-net', true],
      ['^front$', 'front-net', false],
      ['^front', 'front-net', true],
      ['net$', 'front-net', true],
      ['f.n', 'front', false],
      ['f.?r', 'front', true],
      ['^[a-f0-9]{12}', '0123456789abff', true],
      ['^[a-f0-9]{12}$', '0123456789abff', false],
      ['^[a-f0-9]{2,3}$', 'abc', true],
      ['^[a-f0-9]{2,}$', 'a', false],
      ['^(ab|cd)+$', 'abcdab', true],
      ['^(?:ab|cd)+$', 'abce', false],
      ['^(?P<x>a)b', 'ab', true],
      ['[^-]+-[^-]+', 'a-b', true],
      ['\\d\\d', 'n12', true],
      ['\\w+\\.\\w+', 'a.b', true],
      ['a\\.b', 'axb', false],
      ['[\\d-]+$', '12-3', true],
      ['', 'anything', true],
      ['x*', '', true],
      ['a|', 'zzz', true],
    ];
    for (const [pattern, text, want] of cases) expect([pattern, text, new LinearRegExp(pattern).test(text)]).toEqual([pattern, text, want]);
  });

  it('agrees with JavaScript RegExp on 3,000 random patterns of the subset and short texts (seed 10)', () => {
    let seed = 10;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const atom = (depth: number): string => {
      const k = rnd(depth > 2 ? 4 : 6);
      if (k === 0) return 'ab.'[rnd(3)];
      if (k === 1) return ['[ab]', '[^a]', '\\d', '[a-c0-1]'][rnd(4)];
      if (k === 2) return 'abc'[rnd(3)];
      if (k === 3) return ['^', '$', 'a', 'b'][rnd(4)];
      if (k === 4) return `(${pattern(depth + 1)})`;
      return `(?:${pattern(depth + 1)}|${pattern(depth + 1)})`;
    };
    const pattern = (depth: number): string => {
      let p = '';
      for (let i = 1 + rnd(3); i > 0; i--) {
        const a = atom(depth);
        p += a === '^' || a === '$' ? a : a + ['', '', '*', '+', '?', '{1,2}', '{2}'][rnd(7)];
      }
      return p;
    };
    let matched = 0;
    for (let i = 0; i < 3000; i++) {
      const p = pattern(0);
      const text = Array.from({ length: rnd(7) }, () => 'abc01'[rnd(5)]).join('');
      const want = new RegExp(p).test(text);
      if (want) matched++;
      expect([p, text, new LinearRegExp(p).test(text)]).toEqual([p, text, want]);
    }
    expect(matched).toBeGreaterThan(300);
    expect(matched).toBeLessThan(2700);
  });

  it('refuses what RE2 refuses or we do not implement; such a filter matches only exactly', () => {
    for (const bad of ['(a)\\1', '(?=a)', '(?i)abc', '\\bword', 'a{1001}', 'a{3,2}', '(ab', 'ab)', '*a', '[a', '[[:alpha:]]', 'x'.repeat(1025)]) {
      expect(() => new LinearRegExp(bad), bad).toThrow(PatternError);
    }
    expect(() => new LinearRegExp('(((a{1000}){1000}){1000})')).toThrow(/too large/);
    expect(matchPattern('(ab', '(ab')).toBe(true);
    expect(matchPattern('x(ab', '(ab')).toBe(false);
  });

  it('parses filters strictly and bounds them', () => {
    expect([...parseFilters('{"name":{"a":true,"b":false},"driver":["bridge"]}', ['name', 'driver'])]).toEqual([
      ['name', ['a']],
      ['driver', ['bridge']],
    ]);
    expect(() => parseFilters('{"name":[1]}', ['name'])).toThrow(/values must be strings/);
    expect(() => parseFilters('{"name":{"a":"yes"}}', ['name'])).toThrow(/expected \{"value": true/);
    expect(() => parseFilters('{"nope":{"a":true}}', ['name'])).toThrow(/invalid filter 'nope'/);
    expect(() => parseFilters(JSON.stringify({ name: Array(65).fill('a') }), ['name'])).toThrow(/more than 64 values/);
    expect(() => parseFilters(JSON.stringify({ name: ['a'.repeat(1025)] }), ['name'])).toThrow(/longer than 1024/);
    expect(() => parseUntil('1'.repeat(65))).toThrow(/expected a duration/);
    expect(parseUntil('1h', 3_600_000)).toBe(0);
  });
});
