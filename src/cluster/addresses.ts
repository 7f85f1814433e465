/**
 * Address text for cluster keys: one canonical spelling per address (so "fd00:0::5" and
 * "fd00::5" are one reservation key), and the candidates of a subnet in allocation order.
 * IPv4 and IPv6 alike, as bigints.
 */
import { isIP } from 'node:net';

export interface Prefix {
  family: 4 | 6;
  base: bigint;
  bits: number;
}

function parseV6(text: string): bigint | undefined {
  let t = text;
  const v4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  if (v4Tail) {
    const v4 = parseAddress(v4Tail[1]!);
    if (!v4) return undefined;
    t = t.slice(0, -v4Tail[1]!.length) + `${(v4.value >> 16n).toString(16)}:${(v4.value & 0xffffn).toString(16)}`;
  }
  const halves = t.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  let v = 0n;
  for (const g of groups) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  return v;
}

export function parseAddress(text: string): { family: 4 | 6; value: bigint } | undefined {
  const fam = isIP(text);
  if (fam === 4) return { family: 4, value: text.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n) };
  if (fam === 6) {
    const v = parseV6(text);
    return v === undefined ? undefined : { family: 6, value: v };
  }
  return undefined;
}

export function formatAddress(family: 4 | 6, v: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(112 - 16 * i)) & 0xffffn));
  // RFC 5952: the longest run (>= 2) of zero groups becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** The canonical text of an address; throws naming it when it is not one. */
export function canonicalAddress(text: string): string {
  const a = parseAddress(text);
  if (!a) throw new Error(`"${text}" is not an IP address`);
  return formatAddress(a.family, a.value);
}

export function parsePrefix(text: string): Prefix | undefined {
  const [addr, bitsText] = text.split('/');
  const a = addr === undefined ? undefined : parseAddress(addr);
  const bits = Number(bitsText);
  const width = a?.family === 4 ? 32 : 128;
  if (!a || !Number.isInteger(bits) || bits < 0 || bits > width) return undefined;
  const host = (1n << BigInt(width - bits)) - 1n;
  return { family: a.family, base: a.value & ~host, bits };
}

export function prefixContains(p: Prefix, address: string): boolean {
  const a = parseAddress(address);
  if (!a || a.family !== p.family) return false;
  const width = p.family === 4 ? 32 : 128;
  return a.value >> BigInt(width - p.bits) === p.base >> BigInt(width - p.bits);
}

/**
 * Host addresses of a prefix in order, starting after `after` (wrapping once), skipping the
 * network address, IPv4's broadcast and the addresses in `skip` (the gateway).
 */
export function* candidates(p: Prefix, skip: ReadonlySet<string>, after?: string): Generator<string> {
  const width = p.family === 4 ? 32 : 128;
  const size = 1n << BigInt(width - p.bits);
  const first = p.base + 1n;
  const last = p.family === 4 && p.bits < 31 ? p.base + size - 2n : p.base + size - 1n;
  const from = after !== undefined ? parseAddress(after) : undefined;
  let start = from && from.value >= first && from.value < last ? from.value + 1n : first;
  let v = start;
  for (;;) {
    const text = formatAddress(p.family, v);
    if (!skip.has(text)) yield text;
    v = v >= last ? first : v + 1n;
    if (v === start) return;
  }
}
