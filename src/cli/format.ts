/**
 * Output as docker prints it: `--format` (table / json / Go-template-ish), aligned tables,
 * truncated ids, relative times, sizes and port lists. Each helper mirrors the docker CLI
 * (or go-units) function named in its comment, because users diff our output against docker's.
 */
import { Template } from './template.js';
import { humanDuration } from '../util/human-duration.js';

// ---------- lists: docker's formatter.Context ----------

/** One item of a list as templates see it: string fields, plus methods such as Label("k"). */
export type Row = Record<string, string | ((...args: unknown[]) => string)>;

export interface ListSpec<T> {
  /** The default table, e.g. `table {{.ID}}\t{{.Name}}`. */
  readonly table: string;
  /** Field -> column title, for `table` formats. */
  readonly headers: Readonly<Record<string, string>>;
  row(item: T, trunc: boolean): Row;
}

export interface ListOptions {
  /** '' or 'table', 'json', `table ...`, or a template. */
  readonly format?: string;
  /** Ids only (when no custom format is given). */
  readonly quiet?: boolean;
  readonly trunc: boolean;
}

/** Builds a row whose `{{json .}}` is its string fields in key order, as docker's MarshalJSON. */
export function row(fields: Record<string, string>, methods: Record<string, (...args: unknown[]) => string> = {}): Row {
  const value: Row = { ...fields };
  for (const [name, fn] of Object.entries(methods)) Object.defineProperty(value, name, { value: fn, enumerable: false });
  Object.defineProperty(value, 'toJSON', {
    value: () => Object.fromEntries(Object.keys(fields).sort().map((k) => [k, fields[k]])),
    enumerable: false,
  });
  return value;
}

/** Renders items like docker's `ls`/`ps`; throws TemplateError for a bad --format. */
export function renderList<T>(items: readonly T[], spec: ListSpec<T>, options: ListOptions): string {
  let format = options.format ?? '';
  if (format === '' || format === 'table') format = options.quiet ? '{{.ID}}' : spec.table;
  const isTable = format.startsWith('table');
  let body = isTable ? format.slice('table'.length) : format === 'json' ? '{{json .}}' : format;
  body = body.replace(/^ +| +$/g, '').replaceAll('\\t', '\t').replaceAll('\\n', '\n');
  const template = Template.parse(body);

  const lines = items.map((item) => template.execute(spec.row(item, options.trunc)) + '\n').join('');
  if (!isTable) return lines;
  return tabwrite(template.execute(spec.headers, 'header') + '\n' + lines, { minWidth: 10, padding: 3 });
}


// ---------- text/tabwriter (docker's fork): elastic tabstops ----------

export interface TabOptions {
  /** Minimal cell width including padding. */
  readonly minWidth: number;
  readonly padding: number;
}

/** Aligns tab-terminated cells of contiguous lines into columns, as Go's tabwriter does. */
export function tabwrite(text: string, options: TabOptions): string {
  const lines = text.split('\n').map((line) => line.split('\t'));
  const widths: number[] = [];
  let out = '';

  const writeLines = (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const cells = lines[i];
      cells.forEach((cell, j) => {
        out += cell;
        if (j < widths.length && j < cells.length - 1) out += ' '.repeat(Math.max(0, widths[j] - displayWidth(cell)));
      });
      if (i + 1 < lines.length) out += '\n';
    }
  };

  const format = (line0: number, line1: number) => {
    const column = widths.length;
    for (let current = line0; current < line1; current++) {
      if (column >= lines[current].length - 1) continue;
      writeLines(line0, current);
      line0 = current;
      let width = options.minWidth;
      for (; current < line1; current++) {
        const cells = lines[current];
        if (column >= cells.length - 1) break;
        width = Math.max(width, displayWidth(cells[column]) + options.padding);
      }
      widths.push(width);
      format(line0, current);
      widths.pop();
      line0 = current;
    }
    writeLines(line0, line1);
  };

  format(0, lines.length);
  return out;
}

/** Terminal columns a string takes: East Asian wide characters count two. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const ch of text) width += isWide(ch.codePointAt(0) ?? 0) ? 2 : 1;
  return width;
}

function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  );
}

// ---------- ids, names, commands ----------

/** stringid.TruncateID: drop an algorithm prefix, keep 12 characters. */
export function truncateId(id: string): string {
  const colon = id.indexOf(':');
  return (colon >= 0 ? id.slice(colon + 1) : id).slice(0, 12);
}

/** formatter.Ellipsis: fit in maxWidth columns, ending with "…" when cut. */
export function ellipsis(text: string, maxWidth: number): string {
  if (maxWidth <= 0) return '';
  const chars = [...text];
  if (maxWidth === 1) return chars[0] ?? '';
  if (displayWidth(text) <= maxWidth) return text;
  let width = 0;
  let kept = '';
  for (const ch of chars) {
    const w = displayWidth(ch);
    if (width + w > maxWidth - 1) break;
    width += w;
    kept += ch;
  }
  return kept + '…';
}

/** strconv.Quote for the printable text commands are made of. */
export function goQuote(text: string): string {
  return JSON.stringify(text).replace(/[\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** sortorder.NaturalLess as a comparator: numbers inside names compare by value (net2 < net10). */
export function naturalCompare(a: string, b: string): number {
  return naturalLess(a, b) ? -1 : naturalLess(b, a) ? 1 : 0;
}

function naturalLess(a: string, b: string): boolean {
  const s1 = Buffer.from(a);
  const s2 = Buffer.from(b);
  const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
  let i1 = 0;
  let i2 = 0;
  while (i1 < s1.length && i2 < s2.length) {
    const d1 = isDigit(s1[i1]);
    const d2 = isDigit(s2[i2]);
    if (d1 !== d2) return d1;
    if (!d1) {
      if (s1[i1] !== s2[i2]) return s1[i1] < s2[i2];
      i1++;
      i2++;
      continue;
    }
    while (i1 < s1.length && s1[i1] === 0x30) i1++;
    while (i2 < s2.length && s2[i2] === 0x30) i2++;
    const nz1 = i1;
    const nz2 = i2;
    while (i1 < s1.length && isDigit(s1[i1])) i1++;
    while (i2 < s2.length && isDigit(s2[i2])) i2++;
    if (i1 - nz1 !== i2 - nz2) return i1 - nz1 < i2 - nz2;
    const n1 = s1.subarray(nz1, i1).toString('latin1');
    const n2 = s2.subarray(nz2, i2).toString('latin1');
    if (n1 !== n2) return n1 < n2;
    if (nz1 !== nz2) return nz1 < nz2;
  }
  return s1.length < s2.length;
}

// ---------- times ----------

/** "5 seconds ago", as docker ps's CREATED column; '' when the time is unknown. */
export function timeAgo(created: string, now: number): string {
  const at = Date.parse(created);
  if (Number.isNaN(at)) return '';
  // docker's container list carries whole seconds: the same instant reads the same here.
  return `${humanDuration(now - Math.floor(at / 1000) * 1000)} ago`;
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/i;

/** Go's time.String() of an RFC 3339 timestamp: "2026-11-22 06:38:18.52 +0000 UTC". */
export function goTimeString(rfc3339: string | undefined): string {
  const m = rfc3339 ? RFC3339.exec(rfc3339) : null;
  if (!m) return '0001-01-01 00:00:00 +0000 UTC';
  const fraction = (m[3] ?? '').replace(/0+$/, '');
  const zone = m[4].toUpperCase() === 'Z' ? '+0000 UTC' : `${m[4].replace(':', '')} ${m[4].replace(':', '')}`;
  return `${m[1]} ${m[2]}${fraction ? `.${fraction}` : ''} ${zone}`;
}

// ---------- sizes ----------

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

/** go-units HumanSizeWithPrecision: 1234 -> "1.23kB" at precision 3. */
export function humanSize(bytes: number, precision = 4): string {
  let size = bytes;
  let unit = 0;
  while (size >= 1000 && unit < DECIMAL_UNITS.length - 1) {
    size /= 1000;
    unit++;
  }
  return formatG(size, precision) + DECIMAL_UNITS[unit];
}

/** Go's %.{p}g: p significant digits, no trailing zeros, exponent form when large or small. */
export function formatG(value: number, precision: number): string {
  if (value === 0) return '0';
  const [mantissa, expText] = value.toExponential(precision - 1).split('e');
  const exp = Number(expText);
  if (exp < -4 || exp >= precision) {
    const m = mantissa.includes('.') ? mantissa.replace(/\.?0+$/, '') : mantissa;
    return `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  const fixed = value.toFixed(Math.max(0, precision - 1 - exp));
  return fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
}

// ---------- ports ----------

export interface PortSummary {
  readonly IP: string;
  readonly PrivatePort: number;
  readonly PublicPort: number;
  readonly Type: string;
}

/** formatter.DisplayablePorts: "0.0.0.0:8080->80/tcp, 9000-9001/udp". */
export function displayablePorts(ports: readonly PortSummary[]): string {
  const sorted = [...ports].sort(comparePorts);
  const groups = new Map<string, { first: number; last: number }>();
  const result: string[] = [];
  const hostMappings: string[] = [];
  for (const port of sorted) {
    const current = port.PrivatePort;
    let key = port.Type;
    if (port.IP) {
      if (port.PublicPort !== current) {
        hostMappings.push(`${joinHostPort(port.IP, String(port.PublicPort))}->${port.PrivatePort}/${port.Type}`);
        continue;
      }
      key = `${port.IP}/${port.Type}`;
    }
    const group = groups.get(key);
    if (!group) {
      groups.set(key, { first: current, last: current });
      continue;
    }
    if (current === group.last + 1) {
      group.last = current;
      continue;
    }
    result.push(formGroup(key, group.first, group.last));
    // Go replaces the map entry but keeps the key's first-seen position; delete+set would move it.
    group.first = current;
    group.last = current;
  }
  for (const [key, group] of groups) result.push(formGroup(key, group.first, group.last));
  return [...result, ...hostMappings].join(', ');
}

function formGroup(key: string, first: number, last: number): string {
  const parts = key.split('/');
  const ip = parts.length > 1 ? parts[0] : '';
  const type = parts.length > 1 ? parts[1] : parts[0];
  let group = first === last ? String(first) : `${first}-${last}`;
  if (ip) group = `${joinHostPort(ip, group)}->${group}`;
  return `${group}/${type}`;
}

function comparePorts(a: PortSummary, b: PortSummary): number {
  if (a.PrivatePort !== b.PrivatePort) return a.PrivatePort - b.PrivatePort;
  if (a.IP !== b.IP) return a.IP < b.IP ? -1 : 1;
  if (a.PublicPort !== b.PublicPort) return a.PublicPort - b.PublicPort;
  return a.Type < b.Type ? -1 : a.Type > b.Type ? 1 : 0;
}

function joinHostPort(host: string, port: string): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
