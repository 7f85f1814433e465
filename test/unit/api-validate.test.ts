import { describe, expect, it } from 'vitest';
import { ServiceError } from '../../src/errors.js';
import { execSchema, networkConnectSchema, networkCreateSchema, networkDisconnectSchema, sandboxCreateSchema } from '../../src/api/schemas.js';
import { checkBody, checkJsonDepth, checkQuery, flag, str } from '../../src/api/validate.js';

function rejects(fn: () => unknown, message: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ServiceError);
  expect((err as ServiceError).kind).toBe('invalid');
  expect((err as ServiceError).message).toMatch(message);
}

describe('api validator', () => {
  it('refuses the connect body that bricked the daemon: Aliases [1, null]', () => {
    rejects(() => checkBody(networkConnectSchema, { Container: 'a', EndpointConfig: { Aliases: [1, null] } }), /^invalid EndpointConfig\.Aliases\[0\]: expected a string of at most 255 characters, got number$/);
  });

  it('takes IPv6 fields where moby has them and bounds them (their meaning is checked by the service: test/unit/network-ipv6.test.ts)', () => {
    expect(checkBody(sandboxCreateSchema, { Name: 's', IPv6Address: 'fd00::5' })).toMatchObject({ IPv6Address: 'fd00::5' });
    expect(checkBody(networkConnectSchema, { Container: 'a', EndpointConfig: { IPAMConfig: { IPv6Address: 'fd00::5' } } })).toMatchObject({ EndpointConfig: { IPAMConfig: { IPv6Address: 'fd00::5' } } });
    rejects(() => checkBody(sandboxCreateSchema, { Name: 's', IPv6Address: 6 }), /^invalid IPv6Address: expected a string of at most 64 characters, got number$/);
    rejects(() => checkBody(networkConnectSchema, { Container: 'a', EndpointConfig: { IPAMConfig: { IPv6Address: 'f'.repeat(65) } } }), /^invalid EndpointConfig\.IPAMConfig\.IPv6Address: .*got 65 characters$/);
    rejects(() => checkBody(networkCreateSchema, { Name: 'n', EnableIPv6: 'yes' }), /^invalid EnableIPv6: expected a boolean/);
  });

  it('refuses a numeric Subnet, naming the field', () => {
    rejects(() => checkBody(networkCreateSchema, { Name: 'n', IPAM: { Config: [{ Subnet: 12 }] } }), /^invalid IPAM\.Config\[0\]\.Subnet: expected .*got number$/);
  });

  it('refuses a body that is not an object and a missing required field', () => {
    rejects(() => checkBody(networkCreateSchema, [1]), /^invalid request body: expected an object, got array$/);
    rejects(() => checkBody(networkCreateSchema, {}), /^invalid Name: .*got undefined$/);
    rejects(() => checkBody(networkDisconnectSchema, { Container: '' }), /^invalid Container: expected a string of 1 to 256 characters, got 0 characters$/);
  });

  it('bounds strings, lists and maps', () => {
    rejects(() => checkBody(networkCreateSchema, { Name: 'x'.repeat(257) }), /got 257 characters/);
    rejects(() => checkBody(sandboxCreateSchema, { Name: 's', Publish: Array(1025).fill('80') }), /at most 1024 items, got 1025/);
    const labels = Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`k${i}`, 'v']));
    rejects(() => checkBody(networkCreateSchema, { Name: 'n', Labels: labels }), /^invalid Labels: expected at most 256 keys, got 257$/);
    rejects(() => checkBody(networkCreateSchema, { Name: 'n', Labels: { a: 1 } }), /^invalid Labels\.a: expected a string/);
    rejects(() => checkBody(execSchema, { Cmd: ['a\0b'] }), /NUL characters are not allowed/);
  });

  it('reads null as absent, ignores unknown keys, keeps __proto__ a plain key', () => {
    const body = checkBody(networkCreateSchema, JSON.parse('{"Name":"n","Labels":{"__proto__":"x"},"IPAM":null,"Options":null,"Unknown":[[[1]]]}'));
    expect(body).toEqual({ Name: 'n', Labels: { ['__proto__']: 'x' } });
    expect(Object.getPrototypeOf(body.Labels)).toBe(Object.prototype);
    expect(Object.keys(body.Labels!)).toEqual(['__proto__']);
    const connect = checkBody(networkConnectSchema, { Container: 'c', EndpointConfig: { Aliases: null, NetworkID: '', IPAddress: '' } });
    expect(connect).toEqual({ Container: 'c', EndpointConfig: {} });
  });

  it('checks queries: strings and moby-style boolean flags', () => {
    expect(checkQuery(new URLSearchParams('force=1&x=y'), { force: flag() })).toEqual({ force: true });
    expect(checkQuery(new URLSearchParams('force=0'), { force: flag() })).toEqual({ force: false });
    expect(checkQuery(new URLSearchParams(''), { force: flag() })).toEqual({ force: false });
    rejects(() => checkQuery(new URLSearchParams(''), { name: str({ max: 4 }) }), /^invalid query parameter name: .*got undefined$/);
    rejects(() => checkQuery(new URLSearchParams('name=abcdef'), { name: str({ max: 4 }) }), /got 6 characters/);
  });

  it('refuses deep nesting before parsing, without counting brackets inside strings', () => {
    rejects(() => checkJsonDepth('['.repeat(100_000)), /nested deeper than 32 levels/);
    expect(() => checkJsonDepth(`{"a":"${'['.repeat(1000)}\\"["}`)).not.toThrow();
    expect(() => checkJsonDepth('['.repeat(32) + ']'.repeat(32))).not.toThrow();
    rejects(() => checkJsonDepth('['.repeat(33)), /nested deeper/);
  });
});
