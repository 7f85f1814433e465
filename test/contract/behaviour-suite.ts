// The behaviour suite every datapath runs: Docker's networking walkthrough, outbound
// masquerade, published ports, run-time connect/disconnect, bad input, and a daemon killed
// in the middle of a connect — all with real packets in a lab.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { LabDaemon } from '../../src/lab/daemon.js';
import { links, listNetns, netns } from '../../src/system/ip.js';
import { api } from '../support/api.js';
import { expectNoLeaks, leakReport } from '../support/leak-check.js';
import { ECHO_SERVER, echoServer, peerIp, ping, probe, sandboxIp, sandboxNs } from '../support/traffic.js';

export function behaviourSuite(datapath: 'iptables' | 'ebpf'): void {
  describe(`behaviour on the ${datapath} datapath`, () => {
    let lab: Lab;
    let d: LabDaemon;
    const cli = (...args: string[]) => d.bpfnet(...args);

    beforeAll(async () => {
      lab = await Lab.create();
      d = await LabDaemon.start(lab, { datapath });
      await echoServer(lab, lab.external, 'tcp', 7000);
      await echoServer(lab, lab.external, 'udp', 7001);
    });

    afterAll(async () => {
      try {
        // After every case: the kernel, the maps, the rules and IPAM still match the store.
        if (d) await expectNoLeaks(lab, d);
      } finally {
        await lab?.destroy();
      }
    });

    describe("Docker's walkthrough", () => {
      it('isolates networks and lets a sandbox on two networks reach both', async () => {
        await cli('network', 'create', '--driver', 'bridge', 'alpine-net');
        for (const [name, net] of [
          ['alpine1', 'alpine-net'],
          ['alpine2', 'alpine-net'],
          ['alpine3', 'bridge'],
          ['alpine4', 'alpine-net'],
        ])
          await cli('run', '-d', '--name', name, '--network', net);
        await cli('network', 'connect', 'bridge', 'alpine4');
        const ns = Object.fromEntries(await Promise.all(['alpine1', 'alpine2', 'alpine3', 'alpine4'].map(async (n) => [n, await sandboxNs(d, n)] as const)));
        const ip = {
          alpine1: await sandboxIp(d, 'alpine1', 'alpine-net'),
          alpine2: await sandboxIp(d, 'alpine2', 'alpine-net'),
          alpine3: await sandboxIp(d, 'alpine3', 'bridge'),
        };
        expect(await ping(lab, ns.alpine1, ip.alpine2)).toBe(true);
        expect(await ping(lab, ns.alpine1, ip.alpine3)).toBe(false);
        expect(await ping(lab, ns.alpine4, ip.alpine1)).toBe(true);
        expect(await ping(lab, ns.alpine4, ip.alpine2)).toBe(true);
        expect(await ping(lab, ns.alpine4, ip.alpine3)).toBe(true);
        expect(await ping(lab, ns.alpine3, ip.alpine1)).toBe(false);
      });

      it('shows the attachments in network inspect and ls', async () => {
        const inspect = JSON.parse(await cli('network', 'inspect', 'alpine-net'))[0];
        expect(Object.values(inspect.Containers).map((c: any) => c.Name).sort()).toEqual(['alpine1', 'alpine2', 'alpine4']);
        const bridge = JSON.parse(await cli('network', 'inspect', 'bridge'))[0];
        expect(Object.values(bridge.Containers).map((c: any) => c.Name).sort()).toEqual(['alpine3', 'alpine4']);
        expect(bridge.Options['com.docker.network.bridge.name']).toBe('bpfnet0');
        const ls = await cli('network', 'ls');
        expect(ls.split('\n')[0]).toMatch(/^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$/);
        expect(ls).toMatch(/alpine-net\s+bridge\s+local/);
      });
    });

    describe('outbound', () => {
      it('masquerades a sandbox to the uplink address (TCP, UDP, ping)', async () => {
        const ns = await sandboxNs(d, 'alpine1');
        expect(peerIp(await probe(lab, ns, 'tcp', UPLINK.externalAddress, 7000))).toBe(UPLINK.hostAddress);
        expect(peerIp(await probe(lab, ns, 'udp', UPLINK.externalAddress, 7001))).toBe(UPLINK.hostAddress);
        expect(await ping(lab, ns, UPLINK.externalAddress)).toBe(true);
      });

      it('lets nothing leave an --internal network', async () => {
        await cli('network', 'create', '--internal', 'inside');
        await cli('run', '-d', '--name', 'walled', '--network', 'inside');
        const ns = await sandboxNs(d, 'walled');
        expect(await probe(lab, ns, 'tcp', UPLINK.externalAddress, 7000, 800)).toBeNull();
        expect(await ping(lab, ns, UPLINK.externalAddress)).toBe(false);
      });
    });

    describe('published ports', () => {
      beforeAll(async () => {
        await cli('run', '-d', '--name', 'web', '--network', 'alpine-net', '-p', '8080:80', '--', process.execPath, ECHO_SERVER, 'tcp', '80');
        await cli('run', '-d', '--name', 'local-only', '--network', 'alpine-net', '-p', '127.0.0.1:8081:80', '--', process.execPath, ECHO_SERVER, 'tcp', '80');
        await cli('run', '-d', '--name', 'dns', '-p', '5353:53/udp', '--', process.execPath, ECHO_SERVER, 'udp', '53');
        await cli(
          'run', '-d', '--name', 'ranged', '-p', '9000-9002:9100-9102', '--', 'sh', '-c',
          `for p in 9100 9101 9102; do ${process.execPath} ${ECHO_SERVER} tcp $p & done; wait`,
        );
        // Servers inside sandboxes need a moment to listen.
        const webNs = await sandboxNs(d, 'web');
        for (let i = 0; i < 50 && (await probe(lab, webNs, 'tcp', '127.0.0.1', 80, 300)) === null; i++);
        const rangedNs = await sandboxNs(d, 'ranged');
        for (let i = 0; i < 50 && (await probe(lab, rangedNs, 'tcp', '127.0.0.1', 9102, 300)) === null; i++);
      });

      it('reaches -p 8080:80 from the outside, keeping the client address and port', async () => {
        expect(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8080, 1500, 41001)).toBe(`${UPLINK.externalAddress}:41001`);
      });

      it('reaches it from the host via 127.0.0.1 and via the uplink address', async () => {
        const gateway = JSON.parse(await cli('network', 'inspect', 'alpine-net'))[0].IPAM.Config[0].Gateway;
        // From 127.0.0.1 the sandbox could not answer: the source becomes the network's gateway.
        expect(peerIp(await probe(lab, lab.host, 'tcp', '127.0.0.1', 8080, 1500, 41002))).toBe(gateway);
        // Via the uplink address too: both datapaths make the gateway the source (the sandbox's way back).
        expect(peerIp(await probe(lab, lab.host, 'tcp', UPLINK.hostAddress, 8080, 1500, 41003))).toBe(gateway);
      });

      it('reaches it from the sandbox itself through the host address (hairpin)', async () => {
        const answer = await probe(lab, await sandboxNs(d, 'web'), 'tcp', UPLINK.hostAddress, 8080, 1500, 41004);
        const gateway = JSON.parse(await cli('network', 'inspect', 'alpine-net'))[0].IPAM.Config[0].Gateway;
        // The answer must go back through the host's translation: the source is the gateway, not the sandbox itself.
        expect(peerIp(answer)).toBe(gateway);
      });

      it('keeps -p 127.0.0.1:8081:80 off the outside but open to the host', async () => {
        expect(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8081, 800)).toBeNull();
        const gateway = JSON.parse(await cli('network', 'inspect', 'alpine-net'))[0].IPAM.Config[0].Gateway;
        expect(peerIp(await probe(lab, lab.host, 'tcp', '127.0.0.1', 8081, 1500, 41005))).toBe(gateway);
      });

      it('publishes UDP and port ranges', async () => {
        expect(await probe(lab, lab.external, 'udp', UPLINK.hostAddress, 5353, 1500, 41006)).toBe(`${UPLINK.externalAddress}:41006`);
        for (const port of [9000, 9001, 9002]) expect(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, port, 1500, 32000 + port)).toBe(`${UPLINK.externalAddress}:${32000 + port}`);
        const ps = await cli('ps');
        expect(ps).toMatch(/0\.0\.0\.0:9000->9100\/tcp/);
        expect(ps).toMatch(/0\.0\.0\.0:5353->53\/udp/);
      });

      it('unpublishes when the sandbox goes', async () => {
        await cli('rm', '-f', 'ranged');
        expect(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 9000, 800)).toBeNull();
      });
    });

    describe('run-time connect and disconnect', () => {
      it('changes reachability at once', async () => {
        const ns3 = await sandboxNs(d, 'alpine3');
        const ip1 = await sandboxIp(d, 'alpine1', 'alpine-net');
        expect(await ping(lab, ns3, ip1)).toBe(false);
        await cli('network', 'connect', 'alpine-net', 'alpine3');
        expect(await ping(lab, ns3, ip1)).toBe(true);
        await cli('network', 'disconnect', 'alpine-net', 'alpine3');
        expect(await ping(lab, ns3, ip1)).toBe(false);
      });

      it('gives a static address on connect and releases it on disconnect', async () => {
        await cli('network', 'create', '--subnet', '10.55.0.0/24', '--ip-range', '10.55.0.128/25', '--gateway', '10.55.0.1', '--aux-address', 'router=10.55.0.2', 'static-net');
        await cli('network', 'connect', '--ip', '10.55.0.9', '--alias', 'nine', 'static-net', 'alpine1');
        expect(await sandboxIp(d, 'alpine1', 'static-net')).toBe('10.55.0.9');
        await cli('run', '-d', '--name', 'dyn', '--network', 'static-net');
        expect(await sandboxIp(d, 'dyn', 'static-net')).toBe('10.55.0.129');
        expect(await ping(lab, await sandboxNs(d, 'dyn'), '10.55.0.9')).toBe(true);
        await cli('network', 'disconnect', 'static-net', 'alpine1');
        await cli('network', 'connect', '--ip', '10.55.0.9', 'static-net', 'alpine2');
        expect(await sandboxIp(d, 'alpine2', 'static-net')).toBe('10.55.0.9');
        await cli('network', 'disconnect', 'static-net', 'alpine2');
      });

      it('never gives one address twice under 50 concurrent creations and 50 concurrent connects', async () => {
        await cli('network', 'create', '--subnet', '10.66.0.0/24', 'crowd');
        await cli('network', 'create', '--subnet', '10.67.0.0/24', 'crowd2');
        const created = await Promise.all(
          Array.from({ length: 50 }, (_, i) => api(d.socket, 'POST', '/sandboxes/create', { Name: `c${i}`, Network: 'crowd' })),
        );
        expect(created.map((r) => r.status)).toEqual(created.map(() => 201));
        const connected = await Promise.all(
          Array.from({ length: 50 }, (_, i) => api(d.socket, 'POST', '/networks/crowd2/connect', { Container: `c${i}` })),
        );
        expect(connected.map((r) => r.status)).toEqual(connected.map(() => 200));
        for (const net of ['crowd', 'crowd2']) {
          const inspect = JSON.parse(await cli('network', 'inspect', net))[0];
          const addrs = Object.values(inspect.Containers).map((c: any) => c.IPv4Address);
          expect(addrs).toHaveLength(50);
          expect(new Set(addrs).size).toBe(50);
        }
        await Promise.all(Array.from({ length: 50 }, (_, i) => api(d.socket, 'DELETE', `/sandboxes/c${i}?force=1`)));
        await cli('network', 'rm', 'crowd', 'crowd2');
      }, 180_000); // 100 serialised API changes with a namespace each: about 40 s on a quiet machine, over 60 s under load
    });

    describe('bad input', () => {
      let before: { networks: string; sandboxes: string; netns: string[] };
      const snapshot = async () => ({ networks: await cli('network', 'ls', '-q'), sandboxes: await cli('ps', '-q', '-a'), netns: (await listNetns()).filter((n) => n.startsWith(d.instance)) });

      beforeAll(async () => {
        before = await snapshot();
      });

      const cases: Array<[string, string, string, unknown, number, RegExp]> = [
        ['invalid CIDR', 'POST', '/networks/create', { Name: 'bad1', IPAM: { Config: [{ Subnet: 'notacidr' }] } }, 400, /^invalid network config:\ninvalid subnet notacidr: invalid CIDR block notation$/],
        ['subnet off its boundary', 'POST', '/networks/create', { Name: 'bad2', IPAM: { Config: [{ Subnet: '10.9.1.5/24' }] } }, 400, /it should be 10\.9\.1\.0\/24/],
        ['overlapping subnet', 'POST', '/networks/create', { Name: 'bad3', IPAM: { Config: [{ Subnet: '10.55.0.0/16' }] } }, 403, /Pool overlaps with other one on this address space/],
        ['gateway outside', 'POST', '/networks/create', { Name: 'bad4', IPAM: { Config: [{ Subnet: '10.77.0.0/24', Gateway: '10.78.0.1' }] } }, 400, /invalid gateway 10\.78\.0\.1/],
        ['ip-range outside', 'POST', '/networks/create', { Name: 'bad5', IPAM: { Config: [{ Subnet: '10.77.0.0/24', IPRange: '10.78.0.0/25' }] } }, 400, /doesn't contain ip-range/],
        ['duplicate network', 'POST', '/networks/create', { Name: 'alpine-net' }, 409, /^network with name alpine-net already exists$/],
        ['predefined name', 'POST', '/networks/create', { Name: 'host' }, 403, /^operation is not permitted on predefined host network $/],
        ['invalid network name', 'POST', '/networks/create', { Name: 'bad name!' }, 400, /invalid network name "bad name!"/],
        ['IPv6 subnet not on its boundary', 'POST', '/networks/create', { Name: 'v6', EnableIPv6: true, IPAM: { Config: [{ Subnet: 'fd00:9::5/64' }] } }, 400, /invalid subnet fd00:9::5\/64: it should be fd00:9::\/64/],
        ['two IPv4 subnets', 'POST', '/networks/create', { Name: 'v4x2', IPAM: { Config: [{ Subnet: '10.91.0.0/24' }, { Subnet: '10.92.0.0/24' }] } }, 400, /one IPv4 subnet per network/],
        ['static IP in use', 'POST', '/networks/static-net/connect', { Container: 'alpine2', EndpointConfig: { IPAMConfig: { IPv4Address: '10.55.0.129' } } }, 403, /Address already in use/],
        ['static IP reserved (aux)', 'POST', '/networks/static-net/connect', { Container: 'alpine2', EndpointConfig: { IPAMConfig: { IPv4Address: '10.55.0.2' } } }, 403, /auxiliary address router/],
        ['static IP is the gateway', 'POST', '/networks/static-net/connect', { Container: 'alpine2', EndpointConfig: { IPAMConfig: { IPv4Address: '10.55.0.1' } } }, 403, /the gateway/],
        ['static IP outside', 'POST', '/networks/static-net/connect', { Container: 'alpine2', EndpointConfig: { IPAMConfig: { IPv4Address: '10.99.0.5' } } }, 400, /no configured subnet or ip-range contain the IP address 10\.99\.0\.5/],
        ['static IP on the default bridge', 'POST', '/networks/bridge/connect', { Container: 'alpine1', EndpointConfig: { IPAMConfig: { IPv4Address: '172.17.0.50' } } }, 400, /user specified IP address is supported on user defined networks only/],
        ['already attached', 'POST', '/networks/alpine-net/connect', { Container: 'alpine1' }, 409, /^alpine1 is already attached to network alpine-net$/],
        ['duplicate sandbox', 'POST', '/sandboxes/create', { Name: 'alpine1' }, 409, /sandbox name "alpine1" is already in use/],
        ['invalid sandbox name', 'POST', '/sandboxes/create', { Name: '-x' }, 400, /invalid sandbox name "-x"/],
        ['malformed port spec', 'POST', '/sandboxes/create', { Name: 'p1', Publish: ['80:abc'] }, 400, /invalid port spec "80:abc"/],
        ['port out of range', 'POST', '/sandboxes/create', { Name: 'p2', Publish: ['70000:80'] }, 400, /outside 1-65535/],
        ['host port already published', 'POST', '/sandboxes/create', { Name: 'p3', Publish: ['8080:81'] }, 409, /Bind for 0\.0\.0\.0:8080 failed: port is already allocated/],
        ['unknown network on run', 'POST', '/sandboxes/create', { Name: 'p4', Network: 'nope' }, 404, /^network nope not found$/],
        ['unknown network', 'GET', '/networks/nope', undefined, 404, /^network nope not found$/],
        ['unknown sandbox on connect', 'POST', '/networks/alpine-net/connect', { Container: 'ghost' }, 404, /^No such container: ghost$/],
        ['remove a network with endpoints', 'DELETE', '/networks/alpine-net', undefined, 403, /has active endpoints/],
        ['remove a predefined network', 'DELETE', '/networks/bridge', undefined, 403, /^bridge is a pre-defined network and cannot be removed$/],
        ['disconnect what is not connected', 'POST', '/networks/inside/disconnect', { Container: 'alpine1' }, 500, /is not connected to network inside/],
        ['unknown filter', 'GET', '/networks?filters=%7B%22colour%22%3A%7B%22red%22%3Atrue%7D%7D', undefined, 400, /^invalid filter 'colour'$/],
        ['API version too new', 'GET', '/v1.51/networks', undefined, 400, /client version 1\.51 is too new/],
      ];

      it.each(cases)('%s', async (_name, method, path, body, status, message) => {
        const r = await api(d.socket, method, path, body);
        expect({ status: r.status, message: r.json?.message }).toEqual({ status, message: expect.stringMatching(message) });
      });

      it('leaves nothing half-made behind', async () => {
        // The table above ran in full: an empty or truncated table must not pass.
        expect(cases.length).toBeGreaterThanOrEqual(28);
        expect(await snapshot()).toEqual(before);
      });

      it('exits non-zero from the CLI with the daemon message', async () => {
        const r = await d.cli(['network', 'create', '--subnet', '10.9.1.5/24', 'bad']);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(/Error response from daemon: invalid network config:\ninvalid subnet 10\.9\.1\.5\/24: it should be 10\.9\.1\.0\/24/);
        const rm = await d.cli(['rm', 'ghost']);
        expect(rm.code).not.toBe(0);
        expect(rm.stderr).toMatch(/No such container: ghost/);
      });
    });

    describe('a daemon killed in the middle of an operation', () => {
      /** Restarts the daemon to stop at failpoint, starts op, SIGKILLs the daemon there and restarts it plainly. */
      async function killAt(failpoint: string, op: () => Promise<unknown>): Promise<void> {
        await d.restart({ BPFNET_FAILPOINTS: `${failpoint}=hang` });
        const from = d.log.length;
        const pending = op().catch(() => null);
        for (let i = 0; i < 200 && !d.log.slice(from).includes(`failpoint ${failpoint}`); i++) await new Promise((r) => setTimeout(r, 50));
        expect(d.log.slice(from)).toContain(`failpoint ${failpoint}`);
        await d.kill();
        await pending;
        await d.restart({});
      }

      /** Kernel and store agree: one namespace per stored sandbox, one host veth per endpoint, one bridge per user network. */
      async function expectConsistent(): Promise<void> {
        const sandboxes: Array<{ Id: string }> = JSON.parse((await api(d.socket, 'GET', '/sandboxes')).text);
        const ours = (await listNetns()).filter((n) => n.startsWith(`${d.instance}-`));
        expect(ours.sort()).toEqual(sandboxes.map((s) => `${d.instance}-${s.Id.slice(0, 12)}`).sort());
        const hostLinks = (await links(lab.host)).filter((l) => l.link_type === 'ether' && l.ifname !== UPLINK.hostIf && l.ifname !== 'bpfnet0');
        const inspected = await Promise.all(sandboxes.map(async (s) => JSON.parse(await cli('inspect', s.Id))[0]));
        const endpoints = inspected.flatMap((s) => Object.keys(s.NetworkSettings.Networks).filter((n) => n !== 'host' && n !== 'none'));
        expect(hostLinks.filter((l) => !l.ifname.includes('-')).length).toBe(endpoints.length);
        const networks: Array<{ Driver: string; Name: string }> = JSON.parse((await api(d.socket, 'GET', '/networks')).text);
        const userBridges = networks.filter((n) => n.Driver === 'bridge' && n.Name !== 'bridge');
        expect(hostLinks.filter((l) => l.ifname.includes('-')).length).toBe(userBridges.length);
        // And the rest: map entries, iptables rules, IPAM allocations, duplicate addresses.
        expect(await leakReport(lab, d)).toEqual([]);
      }

      it('in a connect: restarts consistent, no leaked namespace or link, no half-allocated address', async () => {
        await cli('network', 'create', '--subnet', '10.88.0.0/24', 'fragile');
        await cli('run', '-d', '--name', 'victim');
        // The daemon hangs after building the veth for the new endpoint: kill it there.
        await killAt('attach:after-join', () => api(d.socket, 'POST', '/networks/fragile/connect', { Container: 'victim' }));
        const victimNs = await sandboxNs(d, 'victim');
        // The half-made endpoint is gone from kernel and store, its address free again.
        expect((await links(victimNs)).map((l) => l.ifname).sort()).toEqual(['eth0', 'lo']);
        const inspect = JSON.parse(await cli('network', 'inspect', 'fragile'))[0];
        expect(inspect.Containers).toEqual({});
        // The address the half-made endpoint held is free again: it can be asked for by name.
        await cli('network', 'connect', '--ip', '10.88.0.2', 'fragile', 'victim');
        expect(await sandboxIp(d, 'victim', 'fragile')).toBe('10.88.0.2');
        await expectConsistent();
      });

      it('in a run with a published port: the creation is undone and name, address and port are free', async () => {
        await cli('network', 'create', '--subnet', '10.89.0.0/24', 'crashy');
        await killAt('sandbox:create:after-build', () =>
          api(d.socket, 'POST', '/sandboxes/create', { Name: 'halfborn', Network: 'crashy', Publish: ['8090:80'] }),
        );
        expect((await d.cli(['inspect', 'halfborn'])).code).not.toBe(0);
        await expectConsistent();
        // The same name, the address it held (free again: asked for by name, since Docker's IPAM
        // hands out released addresses last) and the host port work now, with real traffic.
        await cli('run', '-d', '--name', 'halfborn', '--network', 'crashy', '--ip', '10.89.0.2', '-p', '8090:80', '--', process.execPath, ECHO_SERVER, 'tcp', '80');
        expect(await sandboxIp(d, 'halfborn', 'crashy')).toBe('10.89.0.2');
        const ns = await sandboxNs(d, 'halfborn');
        for (let i = 0; i < 50 && (await probe(lab, ns, 'tcp', '127.0.0.1', 80, 300)) === null; i++);
        expect(peerIp(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8090))).toBe(UPLINK.externalAddress);
      });

      it('in an rm: the removal is finished, with its port unpublished', async () => {
        // halfborn from the test before: published on 8090 and reachable.
        await killAt('sandbox:remove:after-teardown', () => api(d.socket, 'DELETE', '/sandboxes/halfborn?force=1'));
        expect((await d.cli(['inspect', 'halfborn'])).code).not.toBe(0);
        await expectConsistent();
        expect(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8090, 800)).toBeNull();
        await cli('run', '-d', '--name', 'halfborn', '--network', 'crashy', '-p', '8090:80');
        await cli('rm', '-f', 'halfborn');
      });

      it('in a network create: the network is there and works after the restart', async () => {
        await killAt('network:create:after-device', () => api(d.socket, 'POST', '/networks/create', { Name: 'unborn', IPAM: { Config: [{ Subnet: '10.90.0.0/24' }] } }));
        await expectConsistent();
        await cli('run', '-d', '--name', 'u1', '--network', 'unborn');
        await cli('run', '-d', '--name', 'u2', '--network', 'unborn');
        expect(await ping(lab, await sandboxNs(d, 'u1'), await sandboxIp(d, 'u2', 'unborn'))).toBe(true);
        await cli('rm', '-f', 'u1', 'u2');
      });

      it('in a network rm: the network is still there, and removing it again works', async () => {
        await killAt('network:remove:after-unbuild', () => api(d.socket, 'DELETE', '/networks/unborn'));
        await expectConsistent();
        await cli('network', 'inspect', 'unborn');
        await cli('network', 'rm', 'unborn');
        await expectConsistent();
        expect((await d.cli(['network', 'inspect', 'unborn'])).code).not.toBe(0);
      });
    });

    // Issue 10, items 5 and 11: what both datapaths must agree on.
    describe('hardening parity', () => {
      const recordUdp = async (ns: Awaited<ReturnType<typeof sandboxNs>>, port: number) => {
        const child = lab.spawn(ns, process.execPath, ['-e', `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>console.log(r.address));s.bind(${port},()=>console.log('ready'))`]);
        let heard = '';
        child.stdout?.on('data', (x: Buffer) => (heard += x.toString()));
        for (let i = 0; i < 100 && !heard.includes('ready'); i++) await new Promise((r) => setTimeout(r, 20));
        return { child, heard: () => heard.split('\n').filter((l) => /^\d/.test(l)) };
      };

      it('reaches a port published on another network through the host address and its own gateway (TCP and UDP), never the target address', async () => {
        await cli('network', 'create', '--subnet', '10.71.0.0/24', 'svc-net');
        await cli('network', 'create', '--subnet', '10.72.0.0/24', 'client-net');
        await cli(
          'run', '-d', '--name', 'svc', '--network', 'svc-net', '-p', '8300:80', '-p', '8301:81/udp', '--', 'sh', '-c',
          `${process.execPath} ${ECHO_SERVER} tcp 80 & ${process.execPath} ${ECHO_SERVER} udp 81 & wait`,
        );
        await cli('run', '-d', '--name', 'client', '--network', 'client-net');
        const svcNs = await sandboxNs(d, 'svc');
        for (let i = 0; i < 50 && (await probe(lab, svcNs, 'tcp', '127.0.0.1', 80, 300)) === null; i++);
        const ns = await sandboxNs(d, 'client');
        // Both datapaths masquerade the client to the target network's gateway (moby #49310).
        for (const host of [UPLINK.hostAddress, '10.72.0.1']) {
          expect(peerIp(await probe(lab, ns, 'tcp', host, 8300))).toBe('10.71.0.1');
          expect(peerIp(await probe(lab, ns, 'udp', host, 8301))).toBe('10.71.0.1');
        }
        expect(await probe(lab, ns, 'tcp', await sandboxIp(d, 'svc', 'svc-net'), 80, 800)).toBeNull();
      });

      // The gateway's broadcast: a bridge port per sandbox carries it (iptables); the portless
      // eBPF datapath delivers the host's broadcast to no sandbox (counted on the bridge: test/reliability/scale.test.ts).
      it(`keeps broadcast between sandboxes of an enable_icc=false network off, and ${datapath === 'ebpf' ? 'drops' : 'lets through'} the gateway's broadcast`, async () => {
        await cli('network', 'create', '-o', 'com.docker.network.bridge.enable_icc=false', '--subnet', '10.73.0.0/24', 'hushed');
        await cli('run', '-d', '--name', 'h1', '--network', 'hushed');
        await cli('run', '-d', '--name', 'h2', '--network', 'hushed');
        const rec = await recordUdp(await sandboxNs(d, 'h2'), 6000);
        const send = (ns: Awaited<ReturnType<typeof sandboxNs>>) =>
          lab.exec(ns, process.execPath, ['-e', "const s=require('dgram').createSocket('udp4');s.bind(()=>{s.setBroadcast(true);s.send('x',6000,'10.73.0.255',()=>s.close())})"]);
        try {
          await send(await sandboxNs(d, 'h1'));
          await new Promise((r) => setTimeout(r, 300));
          expect(rec.heard()).toEqual([]);
          await send(lab.host);
          if (datapath === 'ebpf') {
            await new Promise((r) => setTimeout(r, 300));
            expect(rec.heard()).toEqual([]);
          } else {
            for (let i = 0; i < 50 && rec.heard().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
            expect(rec.heard()).toEqual(['10.73.0.1']);
          }
        } finally {
          rec.child.kill();
        }
      });

      it('drops unsolicited inbound on a network without masquerade', async () => {
        await cli('network', 'create', '-o', 'com.docker.network.bridge.enable_ip_masquerade=false', '--subnet', '10.74.0.0/24', 'plain');
        await cli('run', '-d', '--name', 'routed', '--network', 'plain', '--', process.execPath, ECHO_SERVER, 'tcp', '80');
        const ns = await sandboxNs(d, 'routed');
        for (let i = 0; i < 50 && (await probe(lab, ns, 'tcp', '127.0.0.1', 80, 300)) === null; i++);
        const addr = await sandboxIp(d, 'routed', 'plain');
        await lab.exec(lab.external, 'ip', ['route', 'replace', '10.74.0.0/24', 'via', UPLINK.hostAddress]);
        try {
          expect(await probe(lab, lab.external, 'tcp', addr, 80, 800)).toBeNull();
          expect(await probe(lab, lab.external, 'udp', addr, 80, 800)).toBeNull();
          expect(await ping(lab, lab.external, addr)).toBe(false);
        } finally {
          await lab.exec(lab.external, 'ip', ['route', 'del', '10.74.0.0/24']);
        }
      });

      it('turns IPv6 off inside every sandbox namespace, never the host', async () => {
        const sysctl = async (ns: { path: string }) => (await lab.exec(ns as never, 'sysctl', ['-n', 'net.ipv6.conf.all.disable_ipv6'])).trim();
        expect(await sysctl(await sandboxNs(d, 'h1'))).toBe('1');
        expect(await sysctl(await sandboxNs(d, 'client'))).toBe('1');
        expect(await sysctl(lab.host)).toBe('0');
      });
    });
  });
}
