// The sandbox modes every datapath must support, as Docker has them: `--network host` (the
// host's own namespace), `--network none` (loopback only), /etc/hosts with one line per
// connected network across connect and disconnect, and a bridge name that may not take over
// an interface bpfnet did not make. Real daemon, real namespaces, real packets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { LabDaemon } from '../../src/lab/daemon.js';
import { ip, ipJson, link, listNetns } from '../../src/system/ip.js';
import { api } from '../support/api.js';
import { ECHO_SERVER, peerIp, ping, probe, sandboxNs, waitPort } from '../support/traffic.js';

/** The first lines of every sandbox's /etc/hosts (Docker's). */
const HOSTS_HEADER = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];
const hostsFile = (...lines: string[]) => [...HOSTS_HEADER, ...lines].join('\n') + '\n';

const HOST_CONFLICT = 'container cannot be disconnected from host network or connected to host network';
const NONE_CONFLICT = 'container cannot be connected to multiple networks with one of the networks in private (none) mode';

export function sandboxModesSuite(datapath: 'iptables' | 'ebpf'): void {
  describe(`sandbox modes on the ${datapath} datapath`, () => {
    let lab: Lab;
    let d: LabDaemon;
    const cli = (...args: string[]) => d.bpfnet(...args);
    const inspect = async (name: string) => JSON.parse(await cli('inspect', name))[0];
    /** Exit code, stdout and stderr of a CLI call that may fail. */
    const attempt = async (...args: string[]) => {
      const r = await d.cli(args);
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    };
    const ourNamespaces = async () => (await listNetns()).filter((n) => n.startsWith(`${d.instance}-`)).sort();

    beforeAll(async () => {
      lab = await Lab.create();
      d = await LabDaemon.start(lab, { datapath });
    });

    afterAll(async () => {
      await lab?.destroy();
    });

    describe('--network host', () => {
      it('creates the sandbox in the host namespace, discarding -p with Docker\'s warning', async () => {
        const before = await ourNamespaces();
        const r = await attempt('run', '-d', '--name', 'hosty', '--network', 'host', '-p', '8080:80');
        expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: 'WARNING: Published ports are discarded when using host network mode\n' });
        expect(r.stdout).toMatch(/^[0-9a-f]{64}\n$/);
        expect(await ourNamespaces()).toEqual(before);
        const sb = await inspect('hosty');
        expect(sb.HostConfig.NetworkMode).toBe('host');
        expect(Object.keys(sb.NetworkSettings.Networks)).toEqual(['host']);
        expect(sb.NetworkSettings.Networks.host.IPAddress).toBe('');
        expect(sb.NetworkSettings.Ports).toEqual({});
      });

      it('runs exec in the daemon host\'s namespace', async () => {
        const hostNs = (await lab.exec(lab.host, 'readlink', ['/proc/self/ns/net'])).trim();
        expect(hostNs).toMatch(/^net:\[\d+\]$/);
        expect(await cli('exec', 'hosty', 'readlink', '/proc/self/ns/net')).toBe(`${hostNs}\n`);
        // A foreground run's process is there too, and its output and exit code come back.
        const once = await attempt('run', '--name', 'host-once', '--network', 'host', '--', 'sh', '-c', 'readlink /proc/self/ns/net; exit 3');
        expect({ code: once.code, stdout: once.stdout }).toEqual({ code: 3, stdout: `${hostNs}\n` });
        await cli('rm', 'host-once');
        const names = (await ipJson<Array<{ ifname: string }>>(lab.host, ['link', 'show'])).map((l) => l.ifname).sort();
        const seen = (JSON.parse(await cli('exec', 'hosty', 'ip', '-j', 'link', 'show')) as Array<{ ifname: string }>).map((l) => l.ifname).sort();
        expect(seen).toEqual(names);
      });

      it('serves the outside straight from the host\'s address, with no port publishing involved', async () => {
        await cli('run', '-d', '--name', 'host-server', '--network', 'host', '--', process.execPath, ECHO_SERVER, 'tcp', '7100');
        await waitPort(lab, lab.host, '127.0.0.1', 7100);
        expect(peerIp(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 7100))).toBe(UPLINK.externalAddress);
        expect((await inspect('host-server')).State.Running).toBe(true);
      });

      it('lists host-mode sandboxes in ps and in network inspect host', async () => {
        const listed = (await api(d.socket, 'GET', '/sandboxes')).json.map((s: { Name: string; Networks: string[] }) => [s.Name, s.Networks]);
        expect(listed.sort()).toEqual([['host-server', ['host']], ['hosty', ['host']]]);
        const ps = await cli('ps');
        expect(ps).toMatch(/\bhosty\b/);
        expect(ps).toMatch(/\bhost-server\b/);
        const host = JSON.parse(await cli('network', 'inspect', 'host'))[0];
        expect(Object.values(host.Containers).map((c: any) => c.Name).sort()).toEqual(['host-server', 'hosty']);
      });

      it('refuses network connect and disconnect with moby\'s message', async () => {
        await cli('network', 'create', '--subnet', '10.41.0.0/24', 'side');
        const connect = await api(d.socket, 'POST', '/networks/side/connect', { Container: 'hosty' });
        expect({ status: connect.status, message: connect.json?.message }).toEqual({ status: 403, message: HOST_CONFLICT });
        const disconnect = await api(d.socket, 'POST', '/networks/host/disconnect', { Container: 'hosty' });
        expect({ status: disconnect.status, message: disconnect.json?.message }).toEqual({ status: 403, message: HOST_CONFLICT });
        const r = await attempt('network', 'connect', 'bridge', 'hosty');
        expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 1, stderr: `Error response from daemon: ${HOST_CONFLICT}\n` });
        // ... and a sandbox of another mode cannot join the host network either.
        // The port hosty was asked to publish was discarded, not held: another sandbox can take it.
        await cli('run', '-d', '--name', 'bridged', '--network', 'side', '-p', '8080:80');
        const join = await api(d.socket, 'POST', '/networks/host/connect', { Container: 'bridged' });
        expect({ status: join.status, message: join.json?.message }).toEqual({ status: 403, message: HOST_CONFLICT });
      });

      it('removes host-mode sandboxes (and their processes) without touching the host', async () => {
        const linksBefore = (await ipJson<Array<{ ifname: string }>>(lab.host, ['link', 'show'])).map((l) => l.ifname).sort();
        await cli('rm', '-f', 'hosty', 'host-server');
        expect(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 7100, 800)).toBeNull();
        expect((await attempt('inspect', 'hosty')).code).not.toBe(0);
        const host = JSON.parse(await cli('network', 'inspect', 'host'))[0];
        expect(host.Containers).toEqual({});
        expect((await ipJson<Array<{ ifname: string }>>(lab.host, ['link', 'show'])).map((l) => l.ifname).sort()).toEqual(linksBefore);
        expect(await ping(lab, lab.host, '127.0.0.1')).toBe(true);
      });
    });

    describe('--network none', () => {
      it('creates a namespace with loopback only, up; -p is dropped silently, as moby does', async () => {
        const r = await attempt('run', '-d', '--name', 'lonely', '--network', 'none', '--hostname', 'lonely', '-p', '8082:80');
        expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
        const sb = await inspect('lonely');
        expect(sb.HostConfig.NetworkMode).toBe('none');
        expect(sb.NetworkSettings.Ports).toEqual({});
        expect(Object.keys(sb.NetworkSettings.Networks)).toEqual(['none']);
        const ns = await sandboxNs(d, 'lonely');
        expect(ns.path).toBe(`/run/netns/${d.instance}-${sb.Id.slice(0, 12)}`);
        const links = await ipJson<Array<{ ifname: string; flags: string[] }>>(ns, ['link', 'show']);
        expect(links.map((l) => [l.ifname, l.flags.includes('UP')])).toEqual([['lo', true]]);
        const addrs = await ipJson<Array<{ addr_info: Array<{ family: string; local: string }> }>>(ns, ['-4', 'addr', 'show']);
        expect(addrs.flatMap((a) => a.addr_info.map((i) => i.local))).toEqual(['127.0.0.1']);
      });

      it('reaches its own loopback and nothing else', async () => {
        expect(await cli('exec', 'lonely', 'ping', '-c', '1', '-W', '1', '-q', '127.0.0.1')).toMatch(/1 packets transmitted, 1 received/);
        const ns = await sandboxNs(d, 'lonely');
        expect(await ping(lab, ns, UPLINK.externalAddress)).toBe(false);
        expect(await ping(lab, ns, UPLINK.hostAddress)).toBe(false);
        expect(await ip(ns, ['route', 'show'])).toBe('');
      });

      it('has only the localhost lines in /etc/hosts', async () => {
        expect(await cli('exec', 'lonely', 'cat', '/etc/hosts')).toBe(hostsFile());
        expect(await cli('exec', 'lonely', 'cat', '/etc/hostname')).toBe('lonely\n');
      });

      it('refuses network connect with moby\'s message and stays loopback only', async () => {
        const connect = await api(d.socket, 'POST', '/networks/side/connect', { Container: 'lonely' });
        expect({ status: connect.status, message: connect.json?.message }).toEqual({ status: 400, message: NONE_CONFLICT });
        const r = await attempt('network', 'connect', 'bridge', 'lonely');
        expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 1, stderr: `Error response from daemon: ${NONE_CONFLICT}\n` });
        const join = await api(d.socket, 'POST', '/networks/none/connect', { Container: 'bridged' });
        expect({ status: join.status, message: join.json?.message }).toEqual({ status: 400, message: NONE_CONFLICT });
        const ns = await sandboxNs(d, 'lonely');
        expect((await ipJson<Array<{ ifname: string }>>(ns, ['link', 'show'])).map((l) => l.ifname)).toEqual(['lo']);
      });

      it('runs a process in the none sandbox and removes it with its namespace', async () => {
        const r = await attempt('run', '--name', 'lonely-once', '--network', 'none', '--', 'ip', '-o', 'link', 'show');
        expect(r.code).toBe(0);
        expect(r.stdout.trim().split('\n').map((l) => l.split(':')[1].trim())).toEqual(['lo']);
        const ps = await cli('ps', '-a');
        expect(ps).toMatch(/lonely-once/);
        const id = (await inspect('lonely')).Id as string;
        await cli('rm', '-f', 'lonely', 'lonely-once');
        expect(await ourNamespaces()).not.toContain(`${d.instance}-${id.slice(0, 12)}`);
        expect((await attempt('inspect', 'lonely')).code).not.toBe(0);
        await cli('rm', '-f', 'bridged');
        await cli('network', 'rm', 'side');
      });
    });

    describe('/etc/hosts across network connect and disconnect', () => {
      it('writes one line per connected network and keeps it in step (moby TestEtcHostsDisconnect)', async () => {
        await cli('network', 'create', '--subnet', '10.31.0.0/24', 'hosts-a');
        await cli('network', 'create', '--subnet', '10.32.0.0/24', 'hosts-b');
        await cli('run', '-d', '--name', 'multi', '--hostname', 'multi', '--network', 'hosts-a', '--ip', '10.31.0.5', '--add-host', 'db:10.0.0.9');
        const hosts = () => cli('exec', 'multi', 'cat', '/etc/hosts');
        expect(await hosts()).toBe(hostsFile('10.0.0.9\tdb', '10.31.0.5\tmulti'));
        await cli('network', 'connect', '--ip', '10.32.0.7', 'hosts-b', 'multi');
        expect(await hosts()).toBe(hostsFile('10.0.0.9\tdb', '10.31.0.5\tmulti', '10.32.0.7\tmulti'));
        await cli('network', 'disconnect', 'hosts-a', 'multi');
        expect(await hosts()).toBe(hostsFile('10.0.0.9\tdb', '10.32.0.7\tmulti'));
        await cli('network', 'connect', '--ip', '10.31.0.5', 'hosts-a', 'multi');
        expect(await hosts()).toBe(hostsFile('10.0.0.9\tdb', '10.32.0.7\tmulti', '10.31.0.5\tmulti'));
        await cli('network', 'disconnect', 'hosts-b', 'multi');
        await cli('network', 'disconnect', 'hosts-a', 'multi');
        expect(await hosts()).toBe(hostsFile('10.0.0.9\tdb'));
      });

      it('lists a dotted hostname with its short name, on every network', async () => {
        await cli('run', '-d', '--name', 'dotted', '--hostname', 'web.example.test', '--network', 'hosts-a', '--ip', '10.31.0.6');
        await cli('network', 'connect', '--ip', '10.32.0.6', 'hosts-b', 'dotted');
        expect(await cli('exec', 'dotted', 'cat', '/etc/hosts')).toBe(hostsFile('10.31.0.6\tweb.example.test web', '10.32.0.6\tweb.example.test web'));
        await cli('rm', '-f', 'dotted', 'multi');
      });
    });

    describe('com.docker.network.bridge.name', () => {
      const create = (name: string, bridge: string) =>
        api(d.socket, 'POST', '/networks/create', { Name: name, Options: { 'com.docker.network.bridge.name': bridge } });

      it('refuses an existing interface that is not a bridge, and leaves it alone', async () => {
        await ip(lab.host, ['link', 'add', 'name', 'taken0', 'type', 'veth', 'peer', 'name', 'taken1']);
        const r = await create('grabby', 'taken0');
        expect({ status: r.status, message: r.json?.message }).toEqual({ status: 409, message: 'existing interface taken0 is not a bridge' });
        expect((await link(lab.host, 'taken0'))?.ifname).toBe('taken0');
        expect((await attempt('network', 'inspect', 'grabby')).code).not.toBe(0);
        const ls = await api(d.socket, 'GET', '/networks');
        expect(ls.json.map((n: { Name: string }) => n.Name)).not.toContain('grabby');
      });

      it('refuses a bridge that bpfnet did not make, and leaves it alone', async () => {
        await ip(lab.host, ['link', 'add', 'name', 'userbr0', 'type', 'bridge']);
        const r = await create('grabby', 'userbr0');
        expect({ status: r.status, message: r.json?.message }).toEqual({ status: 409, message: 'existing interface userbr0 is a bridge that bpfnet did not create' });
        const cliTry = await attempt('network', 'create', '-o', 'com.docker.network.bridge.name=userbr0', 'grabby');
        expect({ code: cliTry.code, stderr: cliTry.stderr }).toEqual({
          code: 1,
          stderr: 'Error response from daemon: existing interface userbr0 is a bridge that bpfnet did not create\n',
        });
        await cli('network', 'create', 'bystander');
        await cli('network', 'rm', 'bystander'); // unrelated removals never touch it either
        expect((await link(lab.host, 'userbr0'))?.ifname).toBe('userbr0');
      });

      it('keeps its own bridge, and host and none sandboxes, across a restart; network rm deletes the bridge', async () => {
        await cli('network', 'create', '--subnet', '10.43.0.0/24', '-o', 'com.docker.network.bridge.name=ownbr0', 'own');
        await cli('run', '-d', '--name', 'host-keep', '--network', 'host', '--', 'sleep', '600');
        await cli('run', '-d', '--name', 'none-keep', '--network', 'none');
        const noneNs = (await sandboxNs(d, 'none-keep')).path;
        await d.restart();
        expect((await inspect('host-keep')).State.Running).toBe(true);
        expect(await cli('exec', 'host-keep', 'readlink', '/proc/self/ns/net')).toBe(await lab.exec(lab.host, 'readlink', ['/proc/self/ns/net']));
        expect((await sandboxNs(d, 'none-keep')).path).toBe(noneNs);
        expect((await ipJson<Array<{ ifname: string }>>(await sandboxNs(d, 'none-keep'), ['link', 'show'])).map((l) => l.ifname)).toEqual(['lo']);
        await cli('rm', '-f', 'host-keep', 'none-keep');
        await cli('run', '-d', '--name', 'owned', '--network', 'own');
        expect(await ping(lab, await sandboxNs(d, 'owned'), '10.43.0.1')).toBe(true);
        expect((await link(lab.host, 'ownbr0'))?.ifname).toBe('ownbr0');
        const again = await create('own2', 'ownbr0');
        expect({ status: again.status, message: again.json?.message }).toEqual({ status: 409, message: 'bridge name ownbr0 is already used by network own' });
        await cli('rm', '-f', 'owned');
        await cli('network', 'rm', 'own');
        expect(await link(lab.host, 'ownbr0')).toBeUndefined();
        // The name is free again for a new network, which gets a bridge of its own.
        const fresh = await create('own3', 'ownbr0');
        expect(fresh.status).toBe(201);
        await cli('network', 'rm', 'own3');
        expect(await link(lab.host, 'ownbr0')).toBeUndefined();
      });

      it('takes over a bridge left behind by this daemon (it carries the daemon\'s marker)', async () => {
        // As an interrupted operation can leave one: made by this instance for a network it no longer has.
        await ip(lab.host, ['link', 'add', 'name', 'leftbr0', 'type', 'bridge']);
        await ip(lab.host, ['link', 'set', 'dev', 'leftbr0', 'alias', `bpfnet:${d.instance}:0123456789abcdef`]);
        const r = await api(d.socket, 'POST', '/networks/create', {
          Name: 'heir',
          IPAM: { Config: [{ Subnet: '10.44.0.0/24' }] },
          Options: { 'com.docker.network.bridge.name': 'leftbr0' },
        });
        expect(r.status).toBe(201);
        const dev = (await ipJson<Array<{ ifalias?: string }>>(lab.host, ['link', 'show', 'dev', 'leftbr0']))[0];
        expect(dev.ifalias).toBe(`bpfnet:${d.instance}:${r.json.Id}`);
        await cli('run', '-d', '--name', 'heir1', '--network', 'heir');
        expect(await ping(lab, await sandboxNs(d, 'heir1'), '10.44.0.1')).toBe(true);
        // A marker of another daemon instance is not ours.
        await ip(lab.host, ['link', 'add', 'name', 'otherbr0', 'type', 'bridge']);
        await ip(lab.host, ['link', 'set', 'dev', 'otherbr0', 'alias', `bpfnet:${d.instance}x:0123456789abcdef`]);
        const other = await create('heir2', 'otherbr0');
        expect({ status: other.status, message: other.json?.message }).toEqual({ status: 409, message: 'existing interface otherbr0 is a bridge that bpfnet did not create' });
        await cli('rm', '-f', 'heir1');
        await cli('network', 'rm', 'heir');
        expect(await link(lab.host, 'leftbr0')).toBeUndefined();
        expect((await link(lab.host, 'otherbr0'))?.ifname).toBe('otherbr0');
      });
    });
  });
}
