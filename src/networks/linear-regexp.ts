/**
 * Regular expressions matched in time linear in the text, as Go's regexp (RE2) matches moby's
 * filters: the pattern is compiled to a Thompson NFA and simulated with a set of states, so
 * `([0-9a-f]+)+x` costs O(pattern x text) instead of backtracking exponentially. The subset is
 * what list filters use: literals, `.`, classes (`[a-f0-9]`, `[^-]`, `\d \w \s`), groups
 * (`(...)`, `(?:...)`, `(?P<n>...)`), `|`, `* + ?`, `{m}`, `{m,}`, `{m,n}` and the anchors `^ $`.
 * Anything else (back-references, look-around, flags, `\b`) is refused with PatternError, as
 * RE2 refuses the first two.
 */

export class PatternError extends Error {
  override readonly name = 'PatternError';
}

/** Bounds that keep compilation itself small: Go's repeat limit, and a cap on NFA size. */
export const PATTERN_LIMITS = { maxLength: 1024, maxRepeat: 1000, maxStates: 20_000 } as const;

type CharTest = (c: number) => boolean;

type Node =
  | { t: 'char'; test: CharTest }
  | { t: 'empty' }
  | { t: 'bol' }
  | { t: 'eol' }
  | { t: 'cat'; parts: Node[] }
  | { t: 'alt'; options: Node[] }
  | { t: 'rep'; node: Node; min: number; max: number /* -1: unbounded */ };

const isDigit: CharTest = (c) => c >= 48 && c <= 57;
const isWord: CharTest = (c) => isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const isSpace: CharTest = (c) => c === 32 || (c >= 9 && c <= 13);

class Parser {
  #i = 0;
  constructor(readonly src: string) {}

  parse(): Node {
    const node = this.#alt();
    if (this.#i < this.src.length) throw new PatternError(`unexpected ${JSON.stringify(this.src[this.#i])} at ${this.#i}`);
    return node;
  }

  #peek(): string | undefined {
    return this.src[this.#i];
  }

  #alt(): Node {
    const options = [this.#cat()];
    while (this.#peek() === '|') {
      this.#i++;
      options.push(this.#cat());
    }
    return options.length === 1 ? options[0] : { t: 'alt', options };
  }

  #cat(): Node {
    const parts: Node[] = [];
    while (this.#i < this.src.length && this.#peek() !== '|' && this.#peek() !== ')') parts.push(this.#repeat(this.#atom()));
    return parts.length === 1 ? parts[0] : parts.length === 0 ? { t: 'empty' } : { t: 'cat', parts };
  }

  #repeat(atom: Node): Node {
    for (;;) {
      const c = this.#peek();
      let min: number;
      let max: number;
      if (c === '*') [min, max] = [0, -1];
      else if (c === '+') [min, max] = [1, -1];
      else if (c === '?') [min, max] = [0, 1];
      else if (c === '{' && /^\{\d+(,\d*)?\}/.test(this.src.slice(this.#i, this.#i + 16))) {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.#i, this.#i + 16))!;
        min = Number(m[1]);
        max = m[2] === undefined ? min : m[3] === '' ? -1 : Number(m[3]);
        if (min > PATTERN_LIMITS.maxRepeat || max > PATTERN_LIMITS.maxRepeat || (max >= 0 && max < min)) throw new PatternError(`invalid repeat count ${m[0]}`);
        this.#i += m[0].length - 1;
      } else return atom;
      this.#i++;
      if (this.#peek() === '?') this.#i++; // lazy: the same language, so the same match/no-match answer
      atom = { t: 'rep', node: atom, min, max };
    }
  }

  #atom(): Node {
    const c = this.src[this.#i++];
    switch (c) {
      case '(': {
        if (this.#peek() === '?') {
          if (this.src.startsWith('?:', this.#i)) this.#i += 2;
          else if (/^\?P?<[A-Za-z_][A-Za-z0-9_]*>/.test(this.src.slice(this.#i, this.#i + 40))) this.#i = this.src.indexOf('>', this.#i) + 1;
          else throw new PatternError('unsupported group syntax (?...)');
        }
        const inner = this.#alt();
        if (this.src[this.#i++] !== ')') throw new PatternError('missing closing )');
        return inner;
      }
      case ')':
        throw new PatternError('unexpected )');
      case '*':
      case '+':
      case '?':
        throw new PatternError(`missing argument to repetition operator ${c}`);
      case '.':
        return { t: 'char', test: (x) => x !== 10 };
      case '^':
        return { t: 'bol' };
      case '$':
        return { t: 'eol' };
      case '[':
        return { t: 'char', test: this.#class() };
      case '\\':
        return { t: 'char', test: this.#escape(false) };
      default: {
        const code = c.charCodeAt(0);
        return { t: 'char', test: (x) => x === code };
      }
    }
  }

  /** After a backslash; inClass: \b etc. are not classes there either. */
  #escape(inClass: boolean): CharTest {
    const c = this.src[this.#i++];
    if (c === undefined) throw new PatternError('trailing backslash');
    switch (c) {
      case 'd':
        return isDigit;
      case 'D':
        return (x) => !isDigit(x);
      case 'w':
        return isWord;
      case 'W':
        return (x) => !isWord(x);
      case 's':
        return isSpace;
      case 'S':
        return (x) => !isSpace(x);
      case 't':
        return (x) => x === 9;
      case 'n':
        return (x) => x === 10;
      case 'r':
        return (x) => x === 13;
      case 'f':
        return (x) => x === 12;
      case 'v':
        return (x) => x === 11;
    }
    // Punctuation escapes itself (\. \- \[ ...); letters and digits would be back-references or classes we do not have.
    if (/[A-Za-z0-9]/.test(c)) throw new PatternError(`unsupported escape \\${c}${inClass ? ' in a class' : ''}`);
    const code = c.charCodeAt(0);
    return (x) => x === code;
  }

  #class(): CharTest {
    let negate = false;
    if (this.#peek() === '^') {
      negate = true;
      this.#i++;
    }
    const tests: CharTest[] = [];
    let first = true;
    for (;;) {
      const c = this.src[this.#i];
      if (c === undefined) throw new PatternError('missing closing ]');
      if (c === ']' && !first) {
        this.#i++;
        break;
      }
      first = false;
      if (c === '[' && this.src[this.#i + 1] === ':') throw new PatternError('POSIX classes [[:name:]] are not supported');
      let lo: number;
      if (c === '\\') {
        this.#i++;
        const start = this.#i;
        const t = this.#escape(true);
        if (this.#i - start === 1 && /[dDwWsS]/.test(this.src[start])) {
          tests.push(t);
          continue;
        }
        lo = this.#escapedCode(start);
      } else {
        lo = c.charCodeAt(0);
        this.#i++;
      }
      if (this.#peek() === '-' && this.src[this.#i + 1] !== undefined && this.src[this.#i + 1] !== ']') {
        this.#i++;
        let hi: number;
        if (this.#peek() === '\\') {
          this.#i++;
          const start = this.#i;
          this.#escape(true);
          hi = this.#escapedCode(start);
        } else hi = this.src.charCodeAt(this.#i++);
        if (hi < lo) throw new PatternError('invalid character class range');
        tests.push((x) => x >= lo && x <= hi);
      } else tests.push((x) => x === lo);
    }
    return (x) => tests.some((t) => t(x)) !== negate;
  }

  /** The one character an escape at src[start] stands for. */
  #escapedCode(start: number): number {
    const c = this.src[start];
    const named: Record<string, number> = { t: 9, n: 10, r: 13, f: 12, v: 11 };
    if (c in named) return named[c];
    if (/[dDwWsS]/.test(c)) throw new PatternError('a class escape cannot end a range');
    return c.charCodeAt(0);
  }
}

// ---- Thompson NFA ----

type State =
  | { k: 'char'; test: CharTest; out: number }
  | { k: 'split'; a: number; b: number }
  | { k: 'bol'; out: number }
  | { k: 'eol'; out: number }
  | { k: 'match' };

class Compiler {
  readonly states: State[] = [];

  #add(s: State): number {
    if (this.states.length >= PATTERN_LIMITS.maxStates) throw new PatternError(`pattern too large (more than ${PATTERN_LIMITS.maxStates} states)`);
    this.states.push(s);
    return this.states.length - 1;
  }

  /** Compiles node so that it continues at `next`; returns its entry state. Built back to front. */
  compile(node: Node, next: number): number {
    switch (node.t) {
      case 'char':
        return this.#add({ k: 'char', test: node.test, out: next });
      case 'empty':
        return next;
      case 'bol':
        return this.#add({ k: 'bol', out: next });
      case 'eol':
        return this.#add({ k: 'eol', out: next });
      case 'cat': {
        let entry = next;
        for (let i = node.parts.length - 1; i >= 0; i--) entry = this.compile(node.parts[i], entry);
        return entry;
      }
      case 'alt': {
        let entry = this.compile(node.options[node.options.length - 1], next);
        for (let i = node.options.length - 2; i >= 0; i--) entry = this.#add({ k: 'split', a: this.compile(node.options[i], next), b: entry });
        return entry;
      }
      case 'rep': {
        let entry = next;
        if (node.max < 0) {
          // x*: a loop state whose branch re-enters it after x.
          const loop = this.#add({ k: 'split', a: -1, b: next });
          const body = this.compile(node.node, loop);
          (this.states[loop] as { a: number }).a = body;
          entry = loop;
        } else {
          for (let i = node.max - node.min; i > 0; i--) entry = this.#add({ k: 'split', a: this.compile(node.node, entry), b: next });
        }
        for (let i = 0; i < node.min; i++) entry = this.compile(node.node, entry);
        return entry;
      }
    }
  }
}

export class LinearRegExp {
  readonly #states: State[];
  readonly #start: number;

  constructor(pattern: string) {
    if (pattern.length > PATTERN_LIMITS.maxLength) throw new PatternError(`pattern longer than ${PATTERN_LIMITS.maxLength} characters`);
    const compiler = new Compiler();
    const match = compiler.states.push({ k: 'match' }) - 1;
    this.#start = compiler.compile(new Parser(pattern).parse(), match);
    this.#states = compiler.states;
  }

  /** Number of NFA states: the per-character cost of test(). */
  get size(): number {
    return this.#states.length;
  }

  /** Whether the pattern matches anywhere in text (unanchored, as Go's MatchString). */
  test(text: string): boolean {
    const n = this.#states.length;
    const mark = new Int32Array(n).fill(-1);
    let current: number[] = [];
    let next: number[] = [];
    const stack: number[] = [];
    // Adds s and everything reachable by empty moves at position pos; true when that reaches a match.
    const add = (list: number[], s0: number, pos: number, gen: number): boolean => {
      stack.push(s0);
      while (stack.length > 0) {
        const s = stack.pop()!;
        if (mark[s] === gen) continue;
        mark[s] = gen;
        const st = this.#states[s];
        switch (st.k) {
          case 'match':
            stack.length = 0;
            return true;
          case 'split':
            stack.push(st.b, st.a);
            break;
          case 'bol':
            if (pos === 0) stack.push(st.out);
            break;
          case 'eol':
            if (pos === text.length) stack.push(st.out);
            break;
          case 'char':
            list.push(s);
            break;
        }
      }
      return false;
    };
    for (let pos = 0; ; pos++) {
      // Unanchored: a new thread starts at every position (generation pos marks who is in the set).
      if (add(current, this.#start, pos, pos)) return true;
      if (pos === text.length) return false;
      const c = text.charCodeAt(pos);
      next.length = 0;
      for (const s of current) {
        const st = this.#states[s] as { test: CharTest; out: number };
        if (st.test(c) && add(next, st.out, pos + 1, pos + 1)) return true;
      }
      [current, next] = [next, current];
      if (current.length === 0 && this.#anchoredAtStart()) return false;
    }
  }

  #anchoredAtStart(): boolean {
    return this.#states[this.#start]?.k === 'bol';
  }
}
