/**
 * Go's json.Indent and json.Compact over raw JSON text. `inspect` prints the daemon's bytes
 * re-indented, not a re-serialisation: key order (even of numeric-looking keys), number
 * spelling and string escapes stay exactly as the daemon sent them.
 */

/** Re-indents valid JSON; `{}` and `[]` stay on one line, as in Go. */
export function indentJson(raw: string, indent = '    '): string {
  return layout(raw, indent);
}

/** Removes insignificant whitespace. */
export function compactJson(raw: string): string {
  return layout(raw, undefined);
}

function layout(raw: string, indent: string | undefined): string {
  JSON.parse(raw); // refuse invalid input before producing half a document
  let out = '';
  let depth = 0;
  let i = 0;
  const newline = () => {
    if (indent !== undefined) out += '\n' + indent.repeat(depth);
  };
  while (i < raw.length) {
    const c = raw[i];
    if (c === '"') {
      let j = i + 1;
      while (raw[j] !== '"') j += raw[j] === '\\' ? 2 : 1;
      out += raw.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    if (c === '{' || c === '[') {
      out += c;
      const next = nextSignificant(raw, i + 1);
      if (raw[next] === '}' || raw[next] === ']') {
        out += raw[next];
        i = next + 1;
        continue;
      }
      depth++;
      newline();
    } else if (c === '}' || c === ']') {
      depth--;
      newline();
      out += c;
    } else if (c === ',') {
      out += c;
      newline();
    } else if (c === ':') {
      out += indent === undefined ? ':' : ': ';
    } else {
      out += c;
    }
    i++;
  }
  return out;
}

function nextSignificant(raw: string, from: number): number {
  let i = from;
  while (i < raw.length && /\s/.test(raw[i])) i++;
  return i;
}
