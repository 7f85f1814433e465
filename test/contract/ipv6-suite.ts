// IPv6 end to end through the daemon, as a user drives it (bpfnet's CLI, Docker's flags), on
// each datapath: dual-stack and IPv6-only networks, same-network reach, isolation, NAT66 seen
// from outside, published ports on both families and on [::] only, names answered with AAAA.
// The datapath-level IPv6 cases (routed mode, hairpin, ICMP errors, forged sources and
// neighbour advertisements) are in datapath-v6-suite.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { LabDaemon } from '../../src/lab/daemon.js';
import { ip } from '../../src/system/ip.js';
import { expectNoLeaks } from '../support/leak-check.js';
import { ECHO_SERVER, echoServer, peerIp, probe, sandboxIp, sandboxNs, waitPort } from '../support/traffic.js';
import { join } from 'node:path';
import { projectRoot } from '../../src/paths.js';

/** The uplink's IPv6 addresses (a ULA pair beside the IPv4 benchmark range). */
const HOST6 = 'fd00:198:18::1';
const EXT6 = 'fd00:198:18::2';
const DNS_QUERY = join(projectRoot, 'test', 'support', 'dns-query.mjs');

export function ipv6Suite(datapath: 'iptables' | 'ebpf'): void {
  describe(`IPv6 through the daemon on the ${datapath} datapath`, () => {
    let lab: Lab;
    let d: LabDaemon;
    const cli = (...args: string[]) => d.bpfnet(...args);
    const ip6Of = async (name: string, network: string): Promise<string> =>
      JSON.parse(await cli('inspect', name))[0].NetworkSettings.Networks[network].GlobalIPv6Address;
    const ping6 = async (ns: Awaited<ReturnType<typeof sandboxNs>>, host: string) => (await lab.execRaw(ns, 'ping', ['-6', '-c', '1', '-W', '1', '-q', host])).code === 0;

    beforeAll(async () => {
      lab = await Lab.create();
      // The daemon reads the uplink's global IPv6 address at start: it is NAT66's source.
      await ip(lab.host, ['-6', 'addr', 'add', `${HOST6}/64`, 'dev', UPLINK.hostIf, 'nodad']);
      await ip(lab.external, ['-6', 'addr', 'add', `${EXT6}/64`, 'dev', UPLINK.externalIf, 'nodad']);
      d = await LabDaemon.start(lab, { datapath });
      await echoServer(lab, lab.external, 'tcp', 7000, '::');
      await cli('network', 'create', '--ipv6', '--subnet', '10.61.0.0/24', '--subnet', 'fd61::/64', 'dual');
      await cli('network', 'create', '--ipv6', '--subnet', '10.62.0.0/24', '--subnet', 'fd62::/64', 'other');
      await cli('network', 'create', '--ipv6', '--ipv4=false', '--subnet', 'fd63::/64', 'only6');
      await cli('run', '-d', '--name', 'a', '--network', 'dual');
      await cli('run', '-d', '--name', 'b', '--network', 'dual', '--ip6', 'fd61::b');
      await cli('run', '-d', '--name', 'c', '--network', 'other');
      await cli('run', '-d', '--name', 'x', '--network', 'only6');
      // A server on both families, published on every address and on [::] only.
      await cli('run', '-d', '--name', 'web', '--network', 'dual', '-p', '8080:80', '-p', '[::]:8090:81', '--', 'sh', '-c', `${process.execPath} ${ECHO_SERVER} tcp 80,81 :: & wait`);
      await waitPort(lab, await sandboxNs(d, 'web'), '::1', 81);
    });

    afterAll(async () => {
      try {
        if (d) await expectNoLeaks(lab, d);
      } finally {
        await lab?.destroy();
      }
    });

    it('gives dual-stack sandboxes an address of each family, --ip6 as asked, and IPv6-only ones no IPv4', async () => {
      expect(await sandboxIp(d, 'a', 'dual')).toMatch(/^10\.61\.0\.\d+$/);
      expect(await ip6Of('a', 'dual')).toMatch(/^fd61::/);
      expect(await ip6Of('b', 'dual')).toBe('fd61::b');
      expect(await sandboxIp(d, 'x', 'only6')).toBe('');
      expect(await ip6Of('x', 'only6')).toMatch(/^fd63::/);
      const net = JSON.parse(await cli('network', 'inspect', 'dual'))[0];
      expect(net.EnableIPv6).toBe(true);
      expect(net.IPAM.Config.map((c: { Subnet: string }) => c.Subnet)).toEqual(['10.61.0.0/24', 'fd61::/64']);
    });

    it('reaches a sandbox of its network over IPv6 and none of another network', async () => {
      const a = await sandboxNs(d, 'a');
      expect(await ping6(a, 'fd61::b')).toBe(true);
      const answer = await probe(lab, a, 'tcp', await ip6Of('web', 'dual'), 80);
      expect(peerIp(answer)).toBe(await ip6Of('a', 'dual'));
      expect(await ping6(a, await ip6Of('c', 'other'))).toBe(false);
      expect(await probe(lab, a, 'tcp', await ip6Of('c', 'other'), 80, 800)).toBeNull();
    });

    it('masquerades IPv6 egress to the uplink IPv6 address (NAT66), also from an IPv6-only network', async () => {
      expect(peerIp(await probe(lab, await sandboxNs(d, 'a'), 'tcp', EXT6, 7000))).toBe(HOST6);
      expect(peerIp(await probe(lab, await sandboxNs(d, 'x'), 'tcp', EXT6, 7000))).toBe(HOST6);
    });

    it('answers a port published on every address on both families, keeping the client address', async () => {
      expect(peerIp(await probe(lab, lab.external, 'tcp', HOST6, 8080))).toBe(EXT6);
      expect(peerIp(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8080))).toBe(UPLINK.externalAddress);
    });

    it('answers a port published on [::] over IPv6 only', async () => {
      expect(peerIp(await probe(lab, lab.external, 'tcp', HOST6, 8090))).toBe(EXT6);
      expect(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8090, 800)).toBeNull();
    });

    it('resolves names to AAAA through the resolver on the IPv6 gateway', async () => {
      const r = await lab.execRaw(await sandboxNs(d, 'a'), process.execPath, [DNS_QUERY, 'fd61::1', 'b', 'AAAA']);
      expect(JSON.parse(r.stdout)).toMatchObject({ rcode: 'NOERROR', answers: ['fd61::b'] });
    });
  });
}
