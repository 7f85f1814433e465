// The open driver model: drivers register with their capabilities, the services ask those
// capabilities, an unknown driver gets moby's 404, and each driver validates its own -o options.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BridgeDriver } from '../../src/drivers/bridge/bridge-driver.js';
import type { Driver } from '../../src/drivers/driver.js';
import { HostDriver } from '../../src/drivers/host/host-driver.js';
import { NullDriver } from '../../src/drivers/none/null-driver.js';
import { DriverRegistry, exclusiveError } from '../../src/drivers/registry.js';
import { ServiceError } from '../../src/errors.js';
import { projectRoot } from '../../src/paths.js';

const registry = () => new DriverRegistry([new BridgeDriver({ instance: 'bpfnet', linkPrefix: 'bn3f2a' }), new HostDriver(), new NullDriver()]);

function failure(fn: () => unknown): { kind: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof ServiceError) return { kind: err.kind, message: err.message };
    throw err;
  }
  throw new Error('expected a ServiceError');
}

/** A driver that no service knows by name: what macvlan or a remote plugin will look like. */
const outsider: Driver = {
  name: 'outsider',
  capabilities: { datapath: false, scope: 'global', needsParent: true, ownNamespace: true, addresses: true, userNetworks: true, embeddedDns: false, disconnect: true },
  createNetwork: async () => undefined,
  deleteNetwork: async () => undefined,
  createEndpoint: async (_n, ep) => ep,
  join: async (_n, ep) => ep,
  leave: async () => undefined,
  deleteEndpoint: async () => undefined,
};

describe('driver registry', () => {
  it('refuses an unknown driver with moby\'s 404 message', () => {
    expect(failure(() => registry().get('macvlan'))).toEqual({ kind: 'not-found', message: 'plugin "macvlan" not found' });
    expect(failure(() => registry().forNewNetwork('none'))).toEqual({ kind: 'not-found', message: 'plugin "none" not found' });
  });

  it('refuses user networks of the predefined-only drivers, as moby does', () => {
    expect(failure(() => registry().forNewNetwork('host'))).toEqual({ kind: 'forbidden', message: 'only one instance of "host" network is allowed' });
    expect(failure(() => registry().forNewNetwork('null'))).toEqual({ kind: 'forbidden', message: 'only one instance of "null" network is allowed' });
    expect(registry().forNewNetwork('bridge').name).toBe('bridge');
  });

  it('takes a new driver by registration alone, and refuses a second one under a taken name', () => {
    const r = registry();
    r.register(outsider);
    expect(r.forNewNetwork('outsider').capabilities.scope).toBe('global');
    expect(r.names()).toEqual(['bridge', 'host', 'null', 'outsider']);
    expect(() => r.register(new HostDriver())).toThrow('driver "host" is already registered');
    expect(() => r.register({ ...outsider, name: 'Bad Name' })).toThrow('not a valid driver name');
  });

  it('describes the built-in drivers by capability', () => {
    const caps = Object.fromEntries(registry().names().map((n) => [n, registry().get(n).capabilities]));
    expect(caps.bridge).toMatchObject({ datapath: true, ownNamespace: true, addresses: true, userNetworks: true, embeddedDns: true, disconnect: true });
    expect(caps.bridge.exclusive).toBeUndefined();
    expect(caps.host).toMatchObject({ datapath: false, ownNamespace: false, addresses: false, userNetworks: false, disconnect: false });
    expect(caps.null).toMatchObject({ datapath: false, ownNamespace: true, addresses: false, userNetworks: false, disconnect: true, publishRefusal: '' });
  });

  it('gives the exclusive modes\' errors as moby words them, and none for bridge', () => {
    const r = registry();
    const e = (name: string) => {
      const err = exclusiveError(r.get(name));
      return err && { kind: err.kind, message: err.message };
    };
    expect(e('host')).toEqual({ kind: 'forbidden', message: 'container cannot be disconnected from host network or connected to host network' });
    expect(e('null')).toEqual({ kind: 'invalid', message: 'container cannot be connected to multiple networks with one of the networks in private (none) mode' });
    expect(e('bridge')).toBeUndefined();
  });
});

describe('bridge driver', () => {
  const bridge = new BridgeDriver({ instance: 'bpfnet', linkPrefix: 'bn3f2a' });

  it('validates the com.docker.network.bridge.* options it owns and keeps unknown ones', () => {
    const v = (options: Record<string, string>) => failure(() => bridge.validateOptions(options));
    expect(v({ 'com.docker.network.bridge.enable_icc': 'maybe' })).toEqual({ kind: 'invalid', message: 'invalid value "maybe" for option com.docker.network.bridge.enable_icc: expected true or false' });
    expect(v({ 'com.docker.network.bridge.enable_ip_masquerade': '1' }).kind).toBe('invalid');
    expect(v({ 'com.docker.network.bridge.host_binding_ipv4': '300.1.1.1' }).kind).toBe('invalid');
    expect(v({ 'com.docker.network.driver.mtu': '67' }).kind).toBe('invalid');
    expect(v({ 'com.docker.network.bridge.name': 'a name with spaces' }).kind).toBe('invalid');
    expect(v({ 'com.docker.network.bridge.name': 'x'.repeat(16) }).kind).toBe('invalid');
    expect(() => bridge.validateOptions({ 'com.docker.network.bridge.enable_icc': 'false', 'com.docker.network.driver.mtu': '9000', 'com.example.other': 'kept' })).not.toThrow();
  });

  it('names the host device and the parked end within IFNAMSIZ and never alike', () => {
    for (let i = 0; i < 200; i++) {
      const id = [...crypto.getRandomValues(new Uint8Array(32))].map((b) => b.toString(16).padStart(2, '0')).join('');
      const other = [...crypto.getRandomValues(new Uint8Array(32))].map((b) => b.toString(16).padStart(2, '0')).join('');
      for (const name of [bridge.hostDevice(id), bridge.parkedName(id)]) expect(name.length).toBeLessThanOrEqual(15);
      expect(bridge.parkedName(id)).not.toBe(bridge.hostDevice(id));
      expect(bridge.parkedName(id)).not.toBe(bridge.hostDevice(other));
      expect(bridge.parkedName(id)).not.toBe(bridge.deviceFor(other, {}));
    }
  });
});

describe('no decision by driver name outside the drivers', () => {
  /** Files another engineer owns that still compare names (reported, not hidden): src/dns is not this branch's. */
  const KNOWN = ['src/dns/name-index.ts'];

  it('finds no `driver === \'...\'` comparison in src/ outside src/drivers', () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts')) files.push(relative(projectRoot, p));
      }
    };
    walk(join(projectRoot, 'src'));
    const offenders = files.filter((f) => !f.startsWith('src/drivers/') && !KNOWN.includes(f) && /driver\s*[!=]==?\s*['"]/.test(readFileSync(join(projectRoot, f), 'utf8')));
    expect(offenders).toEqual([]);
  });
});
