// The macvlan driver's pure parts: moby's option checks and messages, the VLAN form of a parent,
// the resolver's address (the last free one of the range), and names that fit IFNAMSIZ.
import { describe, expect, it } from 'vitest';
import { MacvlanDriver } from '../../src/drivers/macvlan/macvlan-driver.js';
import { modeOf, parseVlanParent, validateMacvlanOptions } from '../../src/drivers/macvlan/options.js';
import { ServiceError } from '../../src/errors.js';
import type { NetworkRecord } from '../../src/networks/model.js';

const message = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ServiceError) return err.message;
    throw err;
  }
  throw new Error('expected a ServiceError');
};

const net = (over: Partial<NetworkRecord>): NetworkRecord => ({
  id: 'ab'.repeat(32), name: 'n', created: '', driver: 'macvlan', scope: 'local', internal: false, attachable: false, ingress: false,
  configOnly: false, enableIPv4: true, enableIPv6: false, ipamDriver: 'default', ipamOptions: {}, ipamConfig: [], options: { parent: 'eth0' },
  labels: {}, predefined: false, subnet: '10.1.0.0/24', gateway: '10.1.0.1', ...over,
});

describe('macvlan options', () => {
  it('takes the four modes, bridge by default, and refuses others with moby\'s message', () => {
    expect(modeOf({})).toBe('bridge');
    expect(modeOf({ macvlan_mode: '' })).toBe('bridge');
    for (const m of ['bridge', 'private', 'vepa', 'passthru']) expect(() => validateMacvlanOptions({ macvlan_mode: m })).not.toThrow();
    expect(message(() => validateMacvlanOptions({ macvlan_mode: 'source' }))).toBe("requested macvlan mode 'source' is not valid, 'bridge' mode is the macvlan driver default");
  });

  it('refuses loopback and names no interface can have', () => {
    expect(message(() => validateMacvlanOptions({ parent: 'lo' }))).toBe('loopback interface is not a valid macvlan parent link');
    expect(message(() => validateMacvlanOptions({ parent: 'a b' }))).toMatch(/invalid parent interface name/);
    expect(message(() => validateMacvlanOptions({ parent: 'x'.repeat(16) }))).toMatch(/invalid parent interface name/);
  });

  it('splits IF.VID as moby\'s parseVlan, with its messages', () => {
    expect(parseVlanParent('eth0.50')).toEqual({ trunk: 'eth0', vid: 50 });
    expect(message(() => parseVlanParent('eth0.5.1'))).toBe('required interface name format is: name.vlan_id, ex. eth0.10 for vlan 10, instead received eth0.5.1');
    expect(message(() => parseVlanParent('eth0.x'))).toBe('unable to parse a valid vlan id from: x (ex. eth0.10 for vlan 10)');
  });
});

describe('macvlan driver', () => {
  const driver = new MacvlanDriver({ instance: 'bpfnet', linkPrefix: 'bn3f2a' });

  it('puts the resolver on the last address of the range that the gateway and aux addresses leave free', () => {
    expect(driver.resolverAddress(net({}))).toBe('10.1.0.254');
    expect(driver.resolverAddress(net({ ipRange: '10.1.0.128/26' }))).toBe('10.1.0.190');
    expect(driver.resolverAddress(net({ ipamConfig: [{ Subnet: '10.1.0.0/24', AuxiliaryAddresses: { a: '10.1.0.254', b: '10.1.0.253' } }] }))).toBe('10.1.0.252');
    // passthru too: the resolver interface is then a veth pair joined to the parent by eBPF.
    expect(driver.resolverAddress(net({ options: { parent: 'eth0', macvlan_mode: 'passthru' } }))).toBe('10.1.0.254');
  });

  it('puts the IPv6 resolver on the last but one address of the IPv6 range the gateway and aux addresses leave free', () => {
    const six = { enableIPv6: true, subnet6: 'fd00:1::/64', gateway6: 'fd00:1::1' };
    expect(driver.resolverAddress6(net(six))).toBe('fd00:1::ffff:ffff:ffff:fffe');
    expect(driver.resolverAddress6(net({ ...six, ipRange6: 'fd00:1::100/120' }))).toBe('fd00:1::1fe');
    expect(driver.resolverAddress6(net({ ...six, ipamConfig: [{ Subnet: 'fd00:1::/64', AuxiliaryAddresses: { a: 'fd00:1:0:0:ffff:ffff:ffff:fffe' } }] }))).toBe('fd00:1::ffff:ffff:ffff:fffd');
    expect(driver.resolverAddress6(net({}))).toBeUndefined();
    // IPv6-only: no IPv4 resolver address, an IPv6 one.
    expect(driver.resolverAddress(net({ ...six, subnet: undefined, gateway: undefined }))).toBeUndefined();
    expect(driver.resolverAddress6(net({ ...six, options: { parent: 'eth0', macvlan_mode: 'passthru' } }))).toBe('fd00:1::ffff:ffff:ffff:fffe');
  });

  it('names its links within IFNAMSIZ, apart from the bn* links reconcile sweeps', () => {
    const id = 'f'.repeat(64);
    for (const name of [driver.shimName(id), driver.parkedName(id)]) {
      expect(name.length).toBeLessThanOrEqual(15);
      expect(name.startsWith('mv3f2a')).toBe(true);
    }
    expect(driver.shimName(id)).not.toBe(driver.parkedName(id));
  });

  it('hangs internal networks on a segment of their own and the others on their parent', () => {
    expect(driver.lowerOf(net({ options: { parent: 'eth0.7' } }))).toBe('eth0.7');
    expect(driver.lowerOf(net({ internal: true, options: {} }))).toMatch(/^mv3f2ai/);
  });
});
