// The kernel resolver's key: names in DNS wire format, exactly as bpf/dns.bpf.c builds them
// from a query (length-prefixed labels, final zero, zero padding), and none it could not match.
import { describe, expect, it } from 'vitest';
import { DNS_NAME_MAX } from '../../src/datapath/abi.js';
import { wireName } from '../../src/dns/kernel-names.js';

describe('wireName', () => {
  it('writes length-prefixed labels and the final zero, zero padded to the key size', () => {
    const w = wireName('web.alpine-net')!;
    expect(w.length).toBe(DNS_NAME_MAX);
    expect(w.subarray(0, 16)).toEqual(Buffer.from([3, ...Buffer.from('web'), 10, ...Buffer.from('alpine-net'), 0]));
    expect(w.subarray(16).every((b) => b === 0)).toBe(true);
  });

  it('refuses what no query name in the kernel can match: empty or long labels, names past the key', () => {
    expect(wireName('')).toBeUndefined();
    expect(wireName('a..b')).toBeUndefined();
    expect(wireName('x'.repeat(64))).toBeUndefined();
    expect(wireName('x'.repeat(63))).toBeDefined();
    // Labels and the final zero fill the 128 bytes exactly (the kernel reads a name up to 128); one more byte does not fit.
    const fits = ['a'.repeat(62), 'b'.repeat(63)].join('.');
    expect(wireName(fits)![DNS_NAME_MAX - 1]).toBe(0);
    expect(wireName(`c${fits}`)).toBeUndefined();
  });
});
