// The benchmark's CNI setup: the reference plugins (bridge + host-local + portmap) driven
// through the CNI protocol inside a lab host — ADD gives working same-network traffic,
// published ports and masquerade; DEL leaves nothing of the container behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { UPLINK } from '../../src/lab/lab.js';
import { ipJson, links } from '../../src/system/ip.js';
import { CNI_PLUGIN_DIR, CniSetup, type CniContainer } from '../../bench/setups/cni.js';
import { CniError, CniRuntime } from '../../bench/setups/cni-runtime.js';
import { echoServer, peerIp, ping, probe } from '../support/traffic.js';
import { requireFiles } from '../support/requirements.js';

describe('CNI setup (reference plugins through the CNI protocol)', () => {
  let s: CniSetup;
  let srv: CniContainer;
  let cli: CniContainer;
  const ipamDir = () => join(s.lab.tmpDir(), 'cni-ipam', s.runtime.list.name);
  const hostRules = async () => s.lab.exec(s.lab.host, 'iptables-save', []);

  beforeAll(async () => {
    requireFiles(['bridge', 'host-local', 'portmap'].map((p) => join(CNI_PLUGIN_DIR, p)), 'containernetworking-plugins');
    s = await CniSetup.bare();
    srv = await s.attach('srv', [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
    cli = await s.attach('cli');
    await echoServer(s.lab, srv.ns, 'tcp', 80);
    await echoServer(s.lab, s.lab.external, 'tcp', 7000);
  });

  afterAll(async () => {
    await s?.destroy();
  });

  it('ADD gives each container an address on the bridge, its gateway and a default route', async () => {
    expect(srv.ip).toMatch(/^10\.88\.\d+\.\d+$/);
    expect(cli.ip).toMatch(/^10\.88\.\d+\.\d+$/);
    expect(srv.ip).not.toBe(cli.ip);
    const routes = await ipJson<Array<{ dst: string; gateway?: string }>>(srv.ns, ['route', 'show']);
    expect(routes.find((r) => r.dst === 'default')?.gateway).toBe('10.88.0.1');
    const hostLinks = (await links(s.lab.host)).map((l) => l.ifname);
    expect(hostLinks).toContain('cni0');
    expect(readdirSync(ipamDir())).toEqual(expect.arrayContaining([srv.ip, cli.ip]));
  });

  it('carries same-network traffic between containers', async () => {
    expect(await ping(s.lab, cli.ns, srv.ip)).toBe(true);
    expect(peerIp(await probe(s.lab, cli.ns, 'tcp', srv.ip, 80))).toBe(cli.ip);
  });

  it('publishes hostPort 8080 to the container through portmap, keeping the client address', async () => {
    expect(peerIp(await probe(s.lab, s.lab.external, 'tcp', UPLINK.hostAddress, 8080))).toBe(UPLINK.externalAddress);
    expect(await hostRules()).toMatch(/DNAT.*--to-destination 10\.88\.\d+\.\d+:80/);
  });

  it('masquerades a container to the uplink address (ipMasq)', async () => {
    expect(peerIp(await probe(s.lab, cli.ns, 'tcp', UPLINK.externalAddress, 7000))).toBe(UPLINK.hostAddress);
  });

  it('DEL leaves nothing of the container behind: interface, veth, address lease, NAT rules', async () => {
    const vethsBefore = (await links(s.lab.host)).filter((l) => l.ifname.startsWith('veth')).length;
    await s.runtime.del(srv.attachment);
    expect((await links(srv.ns)).map((l) => l.ifname)).toEqual(['lo']);
    expect((await links(s.lab.host)).filter((l) => l.ifname.startsWith('veth')).length).toBe(vethsBefore - 1);
    expect(readdirSync(ipamDir())).not.toContain(srv.ip);
    const rules = await hostRules();
    expect(rules).not.toContain(srv.ip);
    expect(rules).not.toContain(srv.attachment.containerId);
    expect(rules).not.toMatch(/--dport 8080/);
    expect(await probe(s.lab, s.lab.external, 'tcp', UPLINK.hostAddress, 8080, 800)).toBeNull();
    // The other container is untouched.
    expect(peerIp(await probe(s.lab, cli.ns, 'tcp', UPLINK.externalAddress, 7000))).toBe(UPLINK.hostAddress);
  });

  it('DEL of the last container leaves only the network-wide objects the plugins keep by design', async () => {
    await s.detach(cli);
    const hostLinks = (await links(s.lab.host)).map((l) => l.ifname).sort();
    // bridge keeps the bridge device; everything per container is gone.
    expect(hostLinks).toEqual(['cni0', 'lo', UPLINK.hostIf].sort());
    const leases = readdirSync(ipamDir()).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
    expect(leases).toEqual([]);
    const rules = await hostRules();
    expect(rules).not.toMatch(/10\.88\.\d+\.\d+\/32/);
    expect(rules).not.toMatch(/-j CNI-DN-/);
    // DEL twice is success, as the spec requires.
    await s.runtime.del(cli.attachment);
  });

  it('reports a failing plugin with its name and the CNI error', async () => {
    const bad = new CniRuntime(
      { cniVersion: '1.0.0', name: `${s.lab.prefix}-bad`, plugins: [{ type: 'bridge', bridge: 'cni1', ipam: { type: 'host-local', subnet: 'not-a-subnet' } }] },
      { pluginDir: CNI_PLUGIN_DIR, hostNetns: s.lab.host.path, cacheDir: join(s.lab.tmpDir(), 'bad-cache') },
    );
    const ns = await s.lab.addNamespace('bad');
    const err = await bad.add({ containerId: 'bad', netns: ns.path, ifname: 'eth0' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).message).toMatch(/^CNI ADD of plugin "bridge" failed/);
    expect((await links(ns)).map((l) => l.ifname)).toEqual(['lo']);
  });
});
