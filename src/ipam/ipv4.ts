/** IPv4 addresses as unsigned 32-bit numbers, and CIDR blocks over them. */

export interface Cidr {
  /** The address as written (may have host bits set). */
  readonly addr: number;
  readonly bits: number;
}

const DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function parseIPv4(text: string): number | undefined {
  const m = DOTTED.exec(text.trim() === text ? text : '');
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p, i) => p > 255 || (m[i + 1].length > 1 && m[i + 1].startsWith('0')))) return undefined;
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export function formatIPv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function isIPv4(text: string): boolean {
  return parseIPv4(text) !== undefined;
}

export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const addr = parseIPv4(text.slice(0, slash));
  const bitsText = text.slice(slash + 1);
  if (addr === undefined || !/^\d{1,2}$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  if (bits > 32) return undefined;
  return { addr, bits };
}

export function maskOf(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** The block's first address (host bits cleared). */
export function networkOf(c: Cidr): number {
  return (c.addr & maskOf(c.bits)) >>> 0;
}

export function broadcastOf(c: Cidr): number {
  return (networkOf(c) | ~maskOf(c.bits)) >>> 0;
}

export function masked(c: Cidr): Cidr {
  return { addr: networkOf(c), bits: c.bits };
}

export function isMasked(c: Cidr): boolean {
  return networkOf(c) === c.addr;
}

export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.addr)}/${c.bits}`;
}

export function contains(c: Cidr, ip: number): boolean {
  return ((ip & maskOf(c.bits)) >>> 0) === networkOf(c);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const bits = Math.min(a.bits, b.bits);
  return ((a.addr & maskOf(bits)) >>> 0) === ((b.addr & maskOf(bits)) >>> 0);
}

/** Number of addresses in the block. */
export function sizeOf(c: Cidr): number {
  return 2 ** (32 - c.bits);
}
