// The address-family matrix through the daemon, as a user drives it (bpfnet's CLI, Docker's
// flags), on each datapath: every packet behaviour of the behaviour and DNS suites runs on an
// IPv4-only, a dual-stack and an IPv6-only network, once per family the network has —
// addresses (static ones too), same-network reach, isolation, names (A/AAAA and PTR from the
// resolver on the gateway of that family), masquerade (NAT66 for IPv6) seen from outside,
// --internal, published TCP and UDP ports from outside keeping the client address, from the
// host through loopback, by hairpin, and run-time connect/disconnect.
// The datapath-level IPv6 cases (routed mode, ICMP errors, forged sources and neighbour
// advertisements) are in datapath-v6-suite.ts; API-level cases (bad input, kills) do not
// depend on the family and run in behaviour-suite.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { addUplink6, Lab, UPLINK, UPLINK6 } from '../../src/lab/lab.js';
import { LabDaemon } from '../../src/lab/daemon.js';
import type { Netns } from '../../src/system/ip.js';
import { projectRoot } from '../../src/paths.js';
import { expectNoLeaks } from '../support/leak-check.js';
import { ECHO_SERVER, echoServer, peerIp, ping, probe, sandboxNs, waitPort } from '../support/traffic.js';

/** The uplink's IPv6 addresses (the lab's UPLINK6, as the bench and the other suites use). */
const HOST6 = UPLINK6.host;
const EXT6 = UPLINK6.external;
const DNS_QUERY = join(projectRoot, 'test', 'support', 'dns-query.mjs');

type Family = 4 | 6;

interface Kind {
  name: string;
  families: Family[];
  /** `network create` flags for the kind's networks: n is 0 (its network), 1 (another), 2 (internal). */
  create: (n: number) => string[];
  /** Static addresses asked for sandbox b. */
  staticIp: Partial<Record<Family, string>>;
  /** Host ports published to its web sandbox (TCP, UDP). */
  tcpPort: number;
  udpPort: number;
}

const KINDS: Kind[] = [
  { name: 'v4', families: [4], create: (n) => ['--subnet', `10.7${n}.1.0/24`], staticIp: { 4: '10.70.1.9' }, tcpPort: 8101, udpPort: 5301 },
  {
    name: 'dual',
    families: [4, 6],
    create: (n) => ['--ipv6', '--subnet', `10.7${n}.2.0/24`, '--subnet', `fd7${n}:2::/64`],
    staticIp: { 4: '10.70.2.9', 6: 'fd70:2::9' },
    tcpPort: 8102,
    udpPort: 5302,
  },
  { name: 'v6only', families: [6], create: (n) => ['--ipv6', '--ipv4=false', '--subnet', `fd7${n}:3::/64`], staticIp: { 6: 'fd70:3::9' }, tcpPort: 8103, udpPort: 5303 },
];

const FAMILY_HOST: Record<Family, string> = { 4: UPLINK.hostAddress, 6: HOST6 };
const FAMILY_EXT: Record<Family, string> = { 4: UPLINK.externalAddress, 6: EXT6 };
const LOOPBACK: Record<Family, string> = { 4: '127.0.0.1', 6: '::1' };

export function ipv6Suite(datapath: 'iptables' | 'ebpf'): void {
  describe(`the address-family matrix through the daemon on the ${datapath} datapath`, () => {
    let lab: Lab;
    let d: LabDaemon;
    const cli = (...args: string[]) => d.bpfnet(...args);
    const settings = async (sandbox: string) => JSON.parse(await cli('inspect', sandbox))[0].NetworkSettings;
    /** The sandbox's address of one family on a network ('' when it has none). */
    const addr = async (sandbox: string, network: string, f: Family): Promise<string> => {
      const ep = (await settings(sandbox)).Networks[network];
      return (f === 4 ? ep?.IPAddress : ep?.GlobalIPv6Address) ?? '';
    };
    /** The network's gateway of one family, as its sandboxes see it (inspect shows only asked-for gateways, as moby's). */
    const gateway = async (network: string, f: Family): Promise<string> => {
      const ep = (await settings(`${network.replace(/-net$/, '')}-a`)).Networks[network];
      return f === 4 ? ep.Gateway : ep.IPv6Gateway;
    };
    const reach = (ns: Netns, host: string) => ping(lab, ns, host);
    const bracket = (a: string) => (a.includes(':') ? `[${a}]` : a);

    beforeAll(async () => {
      lab = await Lab.create();
      // The daemon reads the uplink's global IPv6 address at start: it is NAT66's source.
      await addUplink6(lab);
      d = await LabDaemon.start(lab, { datapath });
      await Promise.all([echoServer(lab, lab.external, 'tcp', 7000, '::'), echoServer(lab, lab.external, 'udp', 7001, '::')]);
      for (const k of KINDS) {
        await cli('network', 'create', ...k.create(0), `${k.name}-net`);
        await cli('network', 'create', ...k.create(1), `${k.name}-other`);
        await cli('network', 'create', '--internal', ...k.create(2), `${k.name}-int`);
        const statics = [...(k.staticIp[4] ? ['--ip', k.staticIp[4]] : []), ...(k.staticIp[6] ? ['--ip6', k.staticIp[6]] : [])];
        const any = k.families.includes(6) ? '::' : '0.0.0.0';
        await Promise.all([
          cli('run', '-d', '--name', `${k.name}-a`, '--network', `${k.name}-net`),
          cli('run', '-d', '--name', `${k.name}-b`, '--network', `${k.name}-net`, ...statics),
          cli('run', '-d', '--name', `${k.name}-c`, '--network', `${k.name}-other`),
          cli('run', '-d', '--name', `${k.name}-w`, '--network', `${k.name}-int`),
          cli(
            'run', '-d', '--name', `${k.name}-web`, '--network', `${k.name}-net`, '-p', `${k.tcpPort}:80`, '-p', `${k.udpPort}:53/udp`, '--',
            'sh', '-c', `${process.execPath} ${ECHO_SERVER} tcp 80 ${any} & ${process.execPath} ${ECHO_SERVER} udp 53 ${any} & wait`,
          ),
        ]);
        await waitPort(lab, await sandboxNs(d, `${k.name}-web`), LOOPBACK[k.families[0]!], 80);
      }
    }, 240_000);

    afterAll(async () => {
      try {
        if (d) await expectNoLeaks(lab, d);
      } finally {
        await lab?.destroy();
      }
    });

    describe.each(KINDS)('on a $name network', (k) => {
      const net = `${k.name}-net`;
      const other = (f: Family) => (f === 4 ? 6 : 4) as Family;

      it('gives every sandbox an address of each family the network has and none of the others, static ones as asked', async () => {
        for (const f of [4, 6] as Family[]) {
          const a = await addr(`${k.name}-a`, net, f);
          const b = await addr(`${k.name}-b`, net, f);
          if (k.families.includes(f)) {
            expect(a).toMatch(f === 4 ? /^10\.70\.\d\.\d+$/ : /^fd70:/);
            expect(b).toBe(k.staticIp[f]);
          } else {
            expect([a, b]).toEqual(['', '']);
          }
        }
        const inspect = JSON.parse(await cli('network', 'inspect', net))[0];
        expect(inspect.EnableIPv6).toBe(k.families.includes(6));
        expect(inspect.IPAM.Config.map((c: { Subnet: string }) => (c.Subnet.includes(':') ? 6 : 4))).toEqual(k.families);
      });

      it('reaches sandboxes of its network (ping, TCP keeping the source) and none of another network, per family', async () => {
        const a = await sandboxNs(d, `${k.name}-a`);
        for (const f of k.families) {
          expect(await reach(a, k.staticIp[f]!)).toBe(true);
          expect(peerIp(await probe(lab, a, 'tcp', await addr(`${k.name}-web`, net, f), 80))).toBe(await addr(`${k.name}-a`, net, f));
          const c = await addr(`${k.name}-c`, `${k.name}-other`, f);
          expect(await reach(a, c)).toBe(false);
          expect(await probe(lab, a, 'tcp', c, 80, 800)).toBeNull();
        }
      });

      it('resolves names to the records of its families from the resolver on each gateway, and addresses back to names', async () => {
        const a = await sandboxNs(d, `${k.name}-a`);
        const query = async (server: string, name: string, type: string) => JSON.parse((await lab.execRaw(a, process.execPath, [DNS_QUERY, server, name, type])).stdout);
        for (const f of k.families) {
          const server = await gateway(net, f);
          expect(await query(server, `${k.name}-b`, f === 4 ? 'A' : 'AAAA')).toMatchObject({ rcode: 'NOERROR', answers: [k.staticIp[f]] });
          // The family the network lacks: the name exists, with no record of that type.
          expect(await query(server, `${k.name}-b`, other(f) === 4 ? 'A' : 'AAAA')).toMatchObject({ rcode: 'NOERROR', answers: k.families.includes(other(f)) ? [k.staticIp[other(f)]] : [] });
          // Another network's sandbox is not a name here.
          expect((await query(server, `${k.name}-c`, f === 4 ? 'A' : 'AAAA')).answers ?? []).toEqual([]);
          const ptr = f === 4 ? `${k.staticIp[4]!.split('.').reverse().join('.')}.in-addr.arpa` : ptrName6(k.staticIp[6]!);
          expect((await query(server, ptr, 'PTR')).answers).toEqual([expect.stringMatching(new RegExp(`^${k.name}-b(\\.|$)`))]);
        }
      });

      it('masquerades TCP and UDP to the uplink address of each family, and lets nothing out of an --internal network', async () => {
        const a = await sandboxNs(d, `${k.name}-a`);
        const w = await sandboxNs(d, `${k.name}-w`);
        for (const f of k.families) {
          expect(peerIp(await probe(lab, a, 'tcp', FAMILY_EXT[f], 7000))).toBe(FAMILY_HOST[f]);
          expect(peerIp(await probe(lab, a, 'udp', FAMILY_EXT[f], 7001))).toBe(FAMILY_HOST[f]);
          expect(await probe(lab, w, 'tcp', FAMILY_EXT[f], 7000, 800)).toBeNull();
          expect(await reach(w, FAMILY_EXT[f])).toBe(false);
        }
      });

      it('answers its published TCP and UDP ports from outside on each family, keeping the client address and port', async () => {
        for (const f of k.families) {
          expect(await probe(lab, lab.external, 'tcp', FAMILY_HOST[f], k.tcpPort, 1500, 42000 + f)).toBe(`${FAMILY_EXT[f]}:${42000 + f}`);
          expect(await probe(lab, lab.external, 'udp', FAMILY_HOST[f], k.udpPort, 1500, 42010 + f)).toBe(`${FAMILY_EXT[f]}:${42010 + f}`);
        }
      });

      it('answers them from the host through loopback and from the sandbox itself through the host address (hairpin), from the gateway', async () => {
        const web = await sandboxNs(d, `${k.name}-web`);
        for (const f of k.families) {
          const gw = await gateway(net, f);
          // ip6tables cannot DNAT ::1 out of lo (Docker needs its userland proxy there): the eBPF datapath answers, the iptables one cannot.
          const viaLoopback = f === 4 || datapath === 'ebpf' ? gw : null;
          expect(peerIp(await probe(lab, lab.host, 'tcp', LOOPBACK[f], k.tcpPort, viaLoopback ? 1500 : 800)), `${bracket(LOOPBACK[f])}:${k.tcpPort} from the host`).toBe(viaLoopback);
          expect(peerIp(await probe(lab, web, 'tcp', FAMILY_HOST[f], k.tcpPort)), `hairpin over IPv${f}`).toBe(gw);
        }
      });

      it('changes reachability at once on connect (with static addresses) and disconnect', async () => {
        const c = await sandboxNs(d, `${k.name}-c`);
        const target = k.staticIp[k.families[0]!]!;
        expect(await reach(c, target)).toBe(false);
        const statics = k.families.flatMap((f) => (f === 4 ? ['--ip', target.replace(/\.9$/, '.19')] : ['--ip6', k.staticIp[6]!.replace(/::9$/, '::19')]));
        await cli('network', 'connect', ...statics, net, `${k.name}-c`);
        try {
          for (const f of k.families) {
            expect(await addr(`${k.name}-c`, net, f)).toBe(f === 4 ? k.staticIp[4]!.replace(/\.9$/, '.19') : k.staticIp[6]!.replace(/::9$/, '::19'));
            expect(await reach(c, k.staticIp[f]!)).toBe(true);
          }
        } finally {
          await cli('network', 'disconnect', net, `${k.name}-c`);
        }
        for (const f of k.families) expect(await reach(c, k.staticIp[f]!)).toBe(false);
      });
    });

    it('answers a port published on [::] over IPv6 only', async () => {
      await cli('run', '-d', '--name', 'six-only-port', '--network', 'dual-net', '-p', '[::]:8190:80', '--', process.execPath, ECHO_SERVER, 'tcp', '80', '::');
      await waitPort(lab, await sandboxNs(d, 'six-only-port'), '::1', 80);
      expect(peerIp(await probe(lab, lab.external, 'tcp', HOST6, 8190))).toBe(EXT6);
      expect(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8190, 800)).toBeNull();
    });

    it('carries several IPv6 subnets on one network: a sandbox in each reaches the other and the outside, another network neither', async () => {
      await cli('network', 'create', '--ipv6', '--subnet', 'fd7a:1::/64', '--subnet', 'fd7a:2::/64', 'multi6');
      try {
        const config = JSON.parse(await cli('network', 'inspect', 'multi6'))[0].IPAM.Config as Array<{ Subnet: string }>;
        expect(config.filter((c) => c.Subnet.includes(':'))).toEqual([{ Subnet: 'fd7a:1::/64' }, { Subnet: 'fd7a:2::/64' }]);
        await Promise.all([
          cli('run', '-d', '--name', 'multi-1', '--network', 'multi6', '--ip6', 'fd7a:1::10', '--', process.execPath, ECHO_SERVER, 'tcp', '80', '::'),
          cli('run', '-d', '--name', 'multi-2', '--network', 'multi6', '--ip6', 'fd7a:2::10'),
        ]);
        // Automatic addresses come from the first subnet with room.
        await cli('run', '-d', '--name', 'multi-3', '--network', 'multi6');
        expect(await addr('multi-3', 'multi6', 6)).toMatch(/^fd7a:1::/);
        const second = (await settings('multi-2')).Networks.multi6;
        expect([second.GlobalIPv6Address, second.GlobalIPv6PrefixLen, second.IPv6Gateway]).toEqual(['fd7a:2::10', 64, 'fd7a:2::1']);
        const [m1, m2] = await Promise.all([sandboxNs(d, 'multi-1'), sandboxNs(d, 'multi-2')]);
        await waitPort(lab, m1, '::1', 80);
        expect(await reach(m2, 'fd7a:1::10')).toBe(true);
        expect(await reach(m1, 'fd7a:2::10')).toBe(true);
        expect(peerIp(await probe(lab, m2, 'tcp', 'fd7a:1::10', 80))).toBe('fd7a:2::10');
        // Out through NAT66 from the second subnet, as from the first.
        expect(peerIp(await probe(lab, m2, 'tcp', EXT6, 7000))).toBe(HOST6);
        const c = await sandboxNs(d, 'dual-c');
        for (const target of ['fd7a:1::10', 'fd7a:2::10']) expect(await reach(c, target), `dual-c to ${target}`).toBe(false);
        expect(await probe(lab, c, 'tcp', 'fd7a:1::10', 80, 800)).toBeNull();
      } finally {
        await cli('rm', '-f', 'multi-1', 'multi-2', 'multi-3');
        await cli('network', 'rm', 'multi6');
      }
    });
  });
}

/** The ip6.arpa name of an IPv6 address (nibbles, reversed). */
function ptrName6(a: string): string {
  const [head, tail = ''] = a.split('::');
  const groups = (s: string) => (s ? s.split(':') : []);
  const h = groups(head!);
  const t = groups(tail);
  const full = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t].map((g) => g.padStart(4, '0')).join('');
  return `${[...full].reverse().join('.')}.ip6.arpa`;
}
