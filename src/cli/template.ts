/**
 * The part of Go's text/template that docker's `--format` is used with in practice:
 * `{{.Field}}`, `{{.A.B}}`, `{{.Label "k"}}`, functions (json, upper, lower, title, join,
 * split, index, pad, truncate, println), pipelines (`{{.Name | upper}}`) and `{{-`/`-}}` trimming.
 * Control structures (range, if, with, ...) are refused with a clear error rather than
 * printed wrongly.
 */

export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

type Operand =
  | { kind: 'field'; path: string[]; text: string }
  | { kind: 'func'; name: string }
  | { kind: 'literal'; value: unknown };

type Command = Operand[];
type Pipeline = Command[];
type Node = { kind: 'text'; text: string } | { kind: 'action'; pipeline: Pipeline; text: string };

type Func = (...args: unknown[]) => unknown;

const KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block', 'break', 'continue']);

const FUNCS: Record<string, Func> = {
  json: (v) => JSON.stringify(v === undefined ? null : v),
  upper: (v) => toText(v).toUpperCase(),
  lower: (v) => toText(v).toLowerCase(),
  title: (v) => toText(v).replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_m, pre: string, c: string) => pre + c.toUpperCase()),
  join: (list, sep) => (Array.isArray(list) ? list.map(toText).join(toText(sep)) : toText(list)),
  split: (v, sep) => toText(v).split(toText(sep)),
  index: (v, ...keys) => keys.reduce<unknown>((acc, key) => indexInto(acc, key), v),
  pad: (v, prefix, suffix) => {
    const text = toText(v);
    return text === '' ? text : ' '.repeat(Number(prefix)) + text + ' '.repeat(Number(suffix));
  },
  truncate: (v, n) => toText(v).slice(0, Number(n)),
  println: (...args) => args.map(toText).join(' ') + '\n',
  print: (...args) => args.map(toText).join(''),
};

// Table headers go through the same template; these keep a header's text as it is.
const HEADER_FUNCS: Record<string, Func> = {
  ...FUNCS,
  json: (v) => toText(v),
  upper: (v) => toText(v),
  lower: (v) => toText(v),
  title: (v) => toText(v),
  join: (v) => toText(v),
  split: (v) => toText(v),
  truncate: (v) => toText(v),
};

export class Template {
  readonly #nodes: Node[];

  private constructor(nodes: Node[]) {
    this.#nodes = nodes;
  }

  /** Throws TemplateError("template parsing error: ...") for what it cannot parse. */
  static parse(source: string): Template {
    return new Template(parseNodes(source));
  }

  /** Renders data; with header, data is the field -> column header map of a table. */
  execute(data: unknown, mode: 'data' | 'header' = 'data'): string {
    const funcs = mode === 'header' ? HEADER_FUNCS : FUNCS;
    let out = '';
    for (const node of this.#nodes) {
      if (node.kind === 'text') out += node.text;
      else out += toText(runPipeline(node, data, funcs, mode === 'header'));
    }
    return out;
  }
}

/** Go's %v for the values a JSON document can hold. */
export function toText(value: unknown): string {
  if (value === null || value === undefined) return '<nil>';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'function') return toText(value());
  if (Array.isArray(value)) return `[${value.map(toText).join(' ')}]`;
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `map[${entries.map(([k, v]) => `${k}:${toText(v)}`).join(' ')}]`;
}

function parseNodes(source: string): Node[] {
  const nodes: Node[] = [];
  let pos = 0;
  let trimNextText = false;
  while (pos <= source.length) {
    const open = source.indexOf('{{', pos);
    let text = source.slice(pos, open < 0 ? source.length : open);
    if (trimNextText) text = text.replace(/^\s+/, '');
    if (open < 0) {
      if (text) nodes.push({ kind: 'text', text });
      break;
    }
    let start = open + 2;
    if (/^-\s/.test(source.slice(start, start + 2))) {
      text = text.replace(/\s+$/, '');
      start += 1;
    }
    if (text) nodes.push({ kind: 'text', text });
    const close = findClose(source, start);
    if (close < 0) throw parseError('unclosed action');
    let end = close;
    trimNextText = false;
    if (/\s-$/.test(source.slice(start, close))) {
      end = close - 1;
      trimNextText = true;
    }
    const actionText = source.slice(start, end).trim();
    if (actionText.startsWith('/*')) {
      pos = close + 2;
      continue;
    }
    nodes.push({ kind: 'action', pipeline: parsePipeline(actionText), text: actionText });
    pos = close + 2;
  }
  return nodes;
}

function findClose(source: string, from: number): number {
  let quote: string | undefined;
  for (let i = from; i < source.length; i++) {
    const c = source[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === '`') quote = c;
    else if (c === '}' && source[i + 1] === '}') return i;
  }
  return -1;
}

function parsePipeline(text: string): Pipeline {
  if (text === '') throw parseError('missing value for command');
  const tokens = tokenize(text);
  const pipeline: Pipeline = [[]];
  for (const token of tokens) {
    if (token === '|') {
      if (pipeline[pipeline.length - 1].length === 0) throw parseError(`missing command before "|" in {{${text}}}`);
      pipeline.push([]);
      continue;
    }
    pipeline[pipeline.length - 1].push(operandOf(token, text));
  }
  if (pipeline[pipeline.length - 1].length === 0) throw parseError(`missing command after "|" in {{${text}}}`);
  return pipeline;
}

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"' || c === '`') {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += c === '"' && text[j] === '\\' ? 2 : 1;
      if (j >= text.length) throw parseError(`unterminated quoted string in {{${text}}}`);
      tokens.push(text.slice(i, j + 1));
      i = j + 1;
    } else if (c === '|') {
      tokens.push('|');
      i++;
    } else if (c === '(' || c === ')' || c === '$') {
      throw unsupported(text, c === '$' ? 'variables' : 'parenthesised pipelines');
    } else {
      let j = i;
      while (j < text.length && !/[\s|()"`]/.test(text[j])) j++;
      tokens.push(text.slice(i, j));
      i = j;
    }
  }
  return tokens;
}

function operandOf(token: string, action: string): Operand {
  if (token.startsWith('"')) {
    try {
      return { kind: 'literal', value: JSON.parse(token) };
    } catch {
      throw parseError(`bad quoted string ${token}`);
    }
  }
  if (token.startsWith('`')) return { kind: 'literal', value: token.slice(1, -1) };
  if (/^-?\d+(\.\d+)?$/.test(token)) return { kind: 'literal', value: Number(token) };
  if (token === 'true' || token === 'false') return { kind: 'literal', value: token === 'true' };
  if (token === 'nil') return { kind: 'literal', value: null };
  if (token === '.') return { kind: 'field', path: [], text: '.' };
  if (/^(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(token)) return { kind: 'field', path: token.slice(1).split('.'), text: token };
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(token)) {
    if (KEYWORDS.has(token)) throw unsupported(action, `"${token}"`);
    if (!(token in FUNCS)) throw parseError(`template: :1: function "${token}" not defined`);
    return { kind: 'func', name: token };
  }
  throw parseError(`unexpected "${token}" in {{${action}}}`);
}

function runPipeline(node: Extract<Node, { kind: 'action' }>, data: unknown, funcs: Record<string, Func>, header: boolean): unknown {
  let value: unknown;
  node.pipeline.forEach((command, index) => {
    const piped = index > 0 ? [value] : [];
    value = runCommand(command, piped, data, funcs, header, node.text);
  });
  return value;
}

function runCommand(
  command: Command,
  piped: unknown[],
  data: unknown,
  funcs: Record<string, Func>,
  header: boolean,
  action: string,
): unknown {
  const [head, ...rest] = command;
  const args = () => [...rest.map((op) => evaluate(op, data, header, action, [])), ...piped];
  if (head.kind === 'func') return funcs[head.name](...args());
  if (rest.length === 0 && piped.length === 0) return evaluate(head, data, header, action, []);
  if (head.kind === 'literal') throw execError(action, `can't give argument to non-function ${toText(head.value)}`);
  return evaluate(head, data, header, action, args());
}

function evaluate(op: Operand, data: unknown, header: boolean, action: string, args: unknown[]): unknown {
  if (op.kind === 'literal') return op.value;
  if (op.kind === 'func') return FUNCS[op.name]();
  if (header) {
    // A table header: the column title of the field, whatever arguments it takes.
    const name = op.path[op.path.length - 1];
    const headers = data as Record<string, string>;
    return name !== undefined && Object.hasOwn(headers, name) ? headers[name] : '';
  }
  let value = data;
  op.path.forEach((key, i) => {
    if (value === null || value === undefined || typeof value !== 'object') {
      throw execError(action, `nil pointer evaluating interface {}.${key}`);
    }
    if (!(key in (value as object))) {
      throw execError(action, `map has no entry for key "${key}"`);
    }
    value = (value as Record<string, unknown>)[key];
    if (typeof value === 'function') {
      const callArgs = i === op.path.length - 1 ? args : [];
      value = (value as Func)(...callArgs);
    } else if (i === op.path.length - 1 && args.length > 0) {
      throw execError(action, `${op.text} is not a method but has arguments`);
    }
  });
  return value;
}

function indexInto(value: unknown, key: unknown): unknown {
  if (Array.isArray(value)) return value[Number(key)];
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    // Go's index on a map yields the zero value for a missing key.
    return Object.hasOwn(record, String(key)) ? record[String(key)] : '';
  }
  throw new TemplateError(`template parsing error: error calling index: cannot index ${toText(value)}`);
}

function parseError(message: string): TemplateError {
  return new TemplateError(`template parsing error: ${message}`);
}

function execError(action: string, message: string): TemplateError {
  return new TemplateError(`template parsing error: template: :1: executing "" at <${action}>: ${message}`);
}

function unsupported(action: string, what: string): TemplateError {
  return parseError(`${what} in {{${action}}} is not supported: bpfnet's --format takes fields and functions only`);
}
