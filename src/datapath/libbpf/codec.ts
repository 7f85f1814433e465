/**
 * Byte codecs for map keys and values: C structs as the BPF programs lay them out
 * (natural alignment, x86-64/arm64 little-endian host order), so src/datapath/abi.ts
 * can mirror bpf/shared/*.h field for field.
 */
import { isIP } from 'node:net';
import { parseIPv4 } from '../../ipam/ipv4.js';

export interface Codec<T> {
  /** Size in bytes (C sizeof). */
  readonly size: number;
  /** C alignment. */
  readonly align: number;
  encodeInto(value: T, buf: Buffer, offset: number): void;
  decodeFrom(buf: Buffer, offset: number): T;
  /** Set on padding: encoded as zeros, left out of decoded structs. */
  readonly padding?: true;
}

/** Encodes one value into a fresh buffer. */
export function encode<T>(codec: Codec<T>, value: T): Buffer {
  const buf = Buffer.alloc(codec.size);
  codec.encodeInto(value, buf, 0);
  return buf;
}

/** Decodes one value, checking the buffer holds exactly one. */
export function decode<T>(codec: Codec<T>, buf: Buffer): T {
  if (buf.length < codec.size) throw new TypeError(`decode: ${buf.length} bytes, expected ${codec.size}`);
  return codec.decodeFrom(buf, 0);
}

/** Encodes many values back to back (batch map calls). */
export function encodeAll<T>(codec: Codec<T>, values: readonly T[]): Buffer {
  const buf = Buffer.alloc(codec.size * values.length);
  values.forEach((v, i) => codec.encodeInto(v, buf, i * codec.size));
  return buf;
}

function integer(size: 1 | 2 | 4, bigEndian: boolean): Codec<number> {
  const max = 2 ** (size * 8) - 1;
  return {
    size,
    align: size,
    encodeInto(v, buf, off) {
      if (!Number.isInteger(v) || v < 0 || v > max) throw new TypeError(`${v} does not fit in an unsigned ${size * 8}-bit field`);
      if (size === 1) buf.writeUInt8(v, off);
      else if (size === 2) bigEndian ? buf.writeUInt16BE(v, off) : buf.writeUInt16LE(v, off);
      else bigEndian ? buf.writeUInt32BE(v, off) : buf.writeUInt32LE(v, off);
    },
    decodeFrom(buf, off) {
      if (size === 1) return buf.readUInt8(off);
      if (size === 2) return bigEndian ? buf.readUInt16BE(off) : buf.readUInt16LE(off);
      return bigEndian ? buf.readUInt32BE(off) : buf.readUInt32LE(off);
    },
  };
}

export const u8 = integer(1, false);
export const u16 = integer(2, false);
export const u32 = integer(4, false);
/** A 16-bit field in network byte order (__be16: ports). */
export const be16 = integer(2, true);
/** A 32-bit field in network byte order (__be32). */
export const be32 = integer(4, true);

/** A 64-bit counter as a JS number (exact up to 2^53). */
export const u64: Codec<number> = {
  size: 8,
  align: 8,
  encodeInto(v, buf, off) {
    if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`${v} is not a safe unsigned 64-bit integer`);
    buf.writeBigUInt64LE(BigInt(v), off);
  },
  decodeFrom(buf, off) {
    return Number(buf.readBigUInt64LE(off));
  },
};

/** A 64-bit field as a bigint (exact). */
export const u64n: Codec<bigint> = {
  size: 8,
  align: 8,
  encodeInto(v, buf, off) {
    buf.writeBigUInt64LE(v, off);
  },
  decodeFrom(buf, off) {
    return buf.readBigUInt64LE(off);
  },
};

/** Dotted quad text -> the u32 whose big-endian bytes are the address (what a __be32 holds); TypeError if it is not one. */
export function ipv4Word(v: string): number {
  const word = typeof v === 'string' ? parseIPv4(v) : undefined;
  if (word === undefined) throw new TypeError(`"${v}" is not an IPv4 address`);
  return word;
}

/** An IPv4 address in network byte order (__be32), as dotted quad text. */
export const ipv4: Codec<string> = {
  size: 4,
  align: 4,
  encodeInto(v, buf, off) {
    buf.writeUInt32BE(ipv4Word(v), off);
  },
  decodeFrom(buf, off) {
    return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
  },
};

/** IPv6 text (any form Node's net accepts, '' = ::) -> its 16 bytes; TypeError if it is not one. */
export function ipv6Bytes(v: string): Buffer {
  const text = v === '' ? '::' : v;
  if (typeof text !== 'string' || isIP(text) !== 6) throw new TypeError(`"${v}" is not an IPv6 address`);
  let [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const words = (part: string | undefined): string[] => (part ? part.split(':') : []);
  let h = words(head);
  let t = words(tail);
  // An embedded IPv4 tail (::ffff:1.2.3.4) is two words.
  const v4 = (list: string[]): string[] => {
    const last = list[list.length - 1];
    if (!last || !last.includes('.')) return list;
    const b = last.split('.').map(Number);
    return [...list.slice(0, -1), ((b[0] << 8) | b[1]).toString(16), ((b[2] << 8) | b[3]).toString(16)];
  };
  if (tail === undefined) h = v4(h);
  else t = v4(t);
  const all = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const buf = Buffer.alloc(16);
  all.forEach((w, i) => buf.writeUInt16BE(parseInt(w, 16), i * 2));
  return buf;
}

/** 16 bytes -> canonical IPv6 text (RFC 5952: lowercase, longest zero run compressed). */
export function formatIPv6(buf: Buffer, off = 0): string {
  const w = Array.from({ length: 8 }, (_, i) => buf.readUInt16BE(off + i * 2));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = w.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** An IPv6 address (struct addr6: 16 bytes, network order), as canonical text. */
export const ipv6: Codec<string> = {
  size: 16,
  align: 4,
  encodeInto(v, buf, off) {
    ipv6Bytes(v).copy(buf, off);
  },
  decodeFrom(buf, off) {
    return formatIPv6(buf, off);
  },
};

/** A MAC address (6 bytes), as "aa:bb:cc:dd:ee:ff". */
export const mac: Codec<string> = {
  size: 6,
  align: 1,
  encodeInto(v, buf, off) {
    const parts = v.split(':');
    if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new TypeError(`"${v}" is not a MAC address`);
    parts.forEach((p, i) => buf.writeUInt8(parseInt(p, 16), off + i));
  },
  decodeFrom(buf, off) {
    return [...buf.subarray(off, off + 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
  },
};

/** n raw bytes (a char array or opaque blob). */
export function bytes(n: number): Codec<Buffer> {
  return {
    size: n,
    align: 1,
    encodeInto(v, buf, off) {
      if (v.length !== n) throw new TypeError(`expected ${n} bytes, got ${v.length}`);
      v.copy(buf, off);
    },
    decodeFrom(buf, off) {
      return Buffer.from(buf.subarray(off, off + n));
    },
  };
}

/** n bytes of padding: always written as zero, read as nothing. */
export function pad(n: number): Codec<undefined> {
  return { size: n, align: 1, padding: true, encodeInto() {}, decodeFrom: () => undefined };
}

/** A C array of n elements. */
export function array<T>(codec: Codec<T>, n: number): Codec<T[]> {
  return {
    size: codec.size * n,
    align: codec.align,
    encodeInto(v, buf, off) {
      if (v.length !== n) throw new TypeError(`expected an array of ${n}, got ${v.length}`);
      v.forEach((x, i) => codec.encodeInto(x, buf, off + i * codec.size));
    },
    decodeFrom(buf, off) {
      return Array.from({ length: n }, (_, i) => codec.decodeFrom(buf, off + i * codec.size));
    },
  };
}

type Fields = Record<string, Codec<any>>;
type Decoded<F extends Fields> = {
  [K in keyof F as F[K] extends Codec<undefined> ? never : K]: F[K] extends Codec<infer T> ? T : never;
};

export interface StructCodec<F extends Fields> extends Codec<Decoded<F>> {
  /** Byte offset of each field (for tests that compare against BTF). */
  readonly offsets: Readonly<Record<keyof F, number>>;
}

/** A C struct: fields in declaration order, each at its natural alignment, size rounded up. */
export function struct<F extends Fields>(fields: F): StructCodec<F> {
  const offsets = {} as Record<keyof F, number>;
  let size = 0;
  let align = 1;
  for (const [name, codec] of Object.entries(fields)) {
    size = Math.ceil(size / codec.align) * codec.align;
    offsets[name as keyof F] = size;
    size += codec.size;
    align = Math.max(align, codec.align);
  }
  size = Math.ceil(size / align) * align;
  const entries = Object.entries(fields);
  // Flat arrays for the hot loop (10,000 published ports are 20,000 structs).
  const names = entries.filter(([, c]) => !c.padding).map(([n]) => n);
  const codecs = names.map((n) => fields[n]);
  const fieldOffsets = names.map((n) => offsets[n as keyof F]);
  return {
    size,
    align,
    offsets,
    encodeInto(value, buf, off) {
      buf.fill(0, off, off + size); // padding is zero, so keys hash the same in C and JS
      const record = value as Record<string, unknown>;
      for (let i = 0; i < names.length; i++) {
        const v = record[names[i]];
        if (v === undefined) throw new TypeError(`struct field "${names[i]}" is missing`);
        codecs[i].encodeInto(v, buf, off + fieldOffsets[i]);
      }
    },
    decodeFrom(buf, off) {
      const out: Record<string, unknown> = {};
      for (const [name, codec] of entries) {
        if (!codec.padding) out[name] = codec.decodeFrom(buf, off + offsets[name as keyof F]);
      }
      return out as Decoded<F>;
    },
  };
}
