import { describe, expect, it } from 'vitest';
import { be16, bytes, decode, encode, encodeAll, formatIPv6, ipv4, ipv6, ipv6Bytes, mac, pad, struct, u16, u32, u64, u8 } from '../../src/datapath/libbpf/codec.js';
import { probeCounter, probeEvent } from '../../src/datapath/abi.js';

describe('codec', () => {
  it('lays out a struct with C alignment and zeroed padding', () => {
    const key = struct({ addr: ipv4, port: be16, proto: u8, cookie: u64 });
    expect(key.size).toBe(16);
    expect(key.offsets).toEqual({ addr: 0, port: 4, proto: 6, cookie: 8 });
    const buf = encode(key, { addr: '10.1.2.3', port: 8080, proto: 6, cookie: 7 });
    expect(buf.toString('hex')).toBe('0a010203' + '1f90' + '06' + '00' + '0700000000000000');
    expect(decode(key, buf)).toEqual({ addr: '10.1.2.3', port: 8080, proto: 6, cookie: 7 });
  });

  it('rounds a struct size up to its widest member', () => {
    expect(struct({ a: u64, b: u8 }).size).toBe(16);
    expect(struct({ a: u16, b: u8 }).size).toBe(4);
    expect(struct({ a: u8, b: u8 }).size).toBe(2);
  });

  it('mirrors the probe ABI sizes', () => {
    expect(probeCounter.size).toBe(16);
    expect(probeEvent.size).toBe(24);
    expect(probeEvent.offsets.saddr).toBe(16);
  });

  it('leaves padding out of decoded values', () => {
    const s = struct({ a: u8, p: pad(3), b: u32 });
    expect(decode(s, Buffer.from('0100000002000000', 'hex'))).toEqual({ a: 1, b: 2 });
  });

  it('refuses values that do not fit', () => {
    expect(() => encode(u8, 256)).toThrow(TypeError);
    expect(() => encode(u16, -1)).toThrow(TypeError);
    expect(() => encode(u32, 1.5)).toThrow(TypeError);
    expect(() => encode(u64, 2 ** 60)).toThrow(TypeError);
    expect(() => encode(ipv4, '1.2.3')).toThrow(/not an IPv4 address/);
    expect(() => encode(ipv4, '1.2.3.256')).toThrow(/not an IPv4 address/);
    expect(() => encode(mac, '00:11:22:33:44')).toThrow(/not a MAC address/);
    expect(() => encode(bytes(4), Buffer.alloc(3))).toThrow(/expected 4 bytes/);
    expect(() => encode(struct({ a: u8 }), {} as { a: number })).toThrow(/"a" is missing/);
  });

  it('round-trips addresses and byte order', () => {
    expect(encode(be16, 0x1234).toString('hex')).toBe('1234');
    expect(encode(u16, 0x1234).toString('hex')).toBe('3412');
    expect(decode(mac, encode(mac, '02:42:ac:11:00:02'))).toBe('02:42:ac:11:00:02');
    expect(encodeAll(u32, [1, 2]).toString('hex')).toBe('0100000002000000');
  });

  it('refuses to decode a short buffer', () => {
    expect(() => decode(u32, Buffer.alloc(2))).toThrow(/2 bytes, expected 4/);
  });
});

describe('IPv6 addresses (struct addr6)', () => {
  it('encodes every text form to its 16 bytes and decodes to RFC 5952 text', () => {
    const cases: Array<[string, string, string]> = [
      ['::', '00000000000000000000000000000000', '::'],
      ['', '00000000000000000000000000000000', '::'],
      ['::1', '00000000000000000000000000000001', '::1'],
      ['fd00:a::2', 'fd00000a000000000000000000000002', 'fd00:a::2'],
      ['FD00:0:0:0:0:0:0:2', 'fd000000000000000000000000000002', 'fd00::2'],
      ['2001:db8:0:0:1:0:0:1', '20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
      ['fe80::aa:bbff:fecc:ddee', 'fe8000000000000000aabbfffeccddee', 'fe80::aa:bbff:fecc:ddee'],
      ['::ffff:10.1.2.3', '00000000000000000000ffff0a010203', '::ffff:a01:203'],
      ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008', '1:2:3:4:5:6:7:8'],
    ];
    for (const [text, hex, canonical] of cases) {
      expect(ipv6Bytes(text).toString('hex')).toBe(hex);
      expect(formatIPv6(Buffer.from(hex, 'hex'))).toBe(canonical);
      expect(decode(ipv6, encode(ipv6, text))).toBe(canonical);
    }
    for (const bad of ['1.2.3.4', 'fd00::g', ':::', 'fd00::1::2']) expect(() => ipv6Bytes(bad)).toThrow(/is not an IPv6 address/);
  });
});
