// Endpoints apart from joins (moby's CreateEndpoint/Join): the service layer creates an endpoint,
// joins it by path into a namespace the test made and bpfnet does not own (one from `ip netns
// add` under the lab prefix, one held by an `unshare --net` process, reached as /proc/PID/ns/net)
// under an interface name the caller chose; real traffic flows to and from a bpfnet sandbox on
// the same network; leave and delete leave nothing behind. Both datapaths.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { linkPrefixFor } from '../../src/daemon/options.js';
import { cliPath, projectRoot } from '../../src/paths.js';
import { run, runRaw } from '../../src/system/exec.js';
import type { Netns } from '../../src/system/ip.js';
import { ECHO_SERVER, peerIp, ping, probe, sandboxIp, waitPort } from '../support/traffic.js';
import { HarnessDaemon, type HarnessAnswer } from '../support/harness-daemon.js';

const HARNESS = join(projectRoot, 'test', 'support', 'endpoint-daemon.mjs');

/** What the harness answers for an endpoint. */
interface EndpointResult {
  id: string;
  ipv4: string;
  hostIfname: string;
  ifname: string;
  mac: string;
}

/** The harness daemon: requests over stdin, answers over stdout, and its socket for the CLI. */
class EndpointDaemon {
  private constructor(
    readonly daemon: HarnessDaemon<EndpointResult>,
    readonly instance: string,
  ) {}

  static async start(lab: Lab, datapath: string): Promise<EndpointDaemon> {
    const instance = `${lab.prefix}fe`;
    const flags = { root: join(lab.tmpDir(), 'fe-root'), socket: join(lab.tmpDir(), 'fe.sock'), datapath, uplink: UPLINK.hostIf, instance };
    return new EndpointDaemon(await HarnessDaemon.start<EndpointResult>(lab, lab.host, HARNESS, flags, 'endpoint daemon'), instance);
  }

  get socket(): string {
    return this.daemon.socket;
  }

  call(op: string, args: Record<string, unknown>): Promise<HarnessAnswer<EndpointResult>> {
    return this.daemon.call(op, args);
  }

  async ok(op: string, args: Record<string, unknown>): Promise<EndpointResult> {
    const a = await this.call(op, args);
    if (!a.ok) throw new Error(`${op} failed: ${a.message}\n${this.daemon.log}`);
    return a.result!;
  }

  cli(...args: string[]): Promise<string> {
    return this.daemon.cli(...args);
  }
}

/** `ip -j` inside ns by its path (`ip -n` takes /run/netns names only). */
const ipIn = async <T>(lab: Lab, ns: Netns, args: string[]): Promise<T> => JSON.parse(await lab.exec(ns, 'ip', ['-j', ...args])) as T;
const linkNames = async (lab: Lab, ns: Netns) => (await ipIn<Array<{ ifname: string }>>(lab, ns, ['link', 'show'])).map((l) => l.ifname).sort();
const pathNs = (path: string): Netns => ({ name: path, path });

for (const datapath of ['ebpf', 'iptables'] as const) {
  describe(`endpoints joined by path on the ${datapath} datapath`, () => {
    let lab: Lab;
    let d: EndpointDaemon;
    let serverIp: string;
    let prefix: string;

    beforeAll(async () => {
      lab = await Lab.create();
      d = await EndpointDaemon.start(lab, datapath);
      prefix = linkPrefixFor(d.instance);
      await d.cli('network', 'create', '--subnet', '10.77.0.0/24', 'fe-net');
      await d.cli('run', '-d', '--name', 'srv', '--network', 'fe-net', '--', process.execPath, ECHO_SERVER, 'tcp', '7200');
      serverIp = await sandboxIp({ bpfnet: (...a: string[]) => d.cli(...a) } as never, 'srv', 'fe-net');
    });

    afterAll(async () => {
      await lab?.destroy();
    });

    /** Creates, joins, talks, leaves and deletes through the service layer; returns nothing it made. */
    async function roundTrip(ns: Netns, ifname: string, ipv4?: string): Promise<void> {
      const hostBefore = await linkNames(lab, lab.host);
      const ep = await d.ok('create', { network: 'fe-net', ...(ipv4 ? { ipv4 } : {}) });
      if (ipv4) expect(ep.ipv4).toBe(ipv4);
      expect(ep.hostIfname.startsWith(prefix)).toBe(true);
      // Created, not joined: both ends wait in the daemon's namespace; the caller's namespace is untouched.
      const parked = (await linkNames(lab, lab.host)).filter((n) => !hostBefore.includes(n));
      expect(parked).toHaveLength(2);
      expect(await linkNames(lab, ns)).toEqual(['lo']);

      const joined = await d.ok('join', { id: ep.id, netnsPath: ns.path, ifname });
      expect(joined.ifname).toBe(ifname);
      expect(await linkNames(lab, ns)).toEqual([ifname, 'lo'].sort());
      const addrs = await ipIn<Array<{ addr_info: Array<{ family: string; local: string; prefixlen: number }> }>>(lab, ns, ['addr', 'show', 'dev', ifname]);
      expect(addrs[0].addr_info.filter((a) => a.family === 'inet')).toEqual([expect.objectContaining({ local: ep.ipv4, prefixlen: 24 })]);

      // Real packets both ways with the bpfnet sandbox, no translation on the same network.
      await waitPort(lab, ns, serverIp, 7200);
      expect(peerIp(await probe(lab, ns, 'tcp', serverIp, 7200))).toBe(ep.ipv4);
      const srvNs = pathNs(JSON.parse(await d.cli('inspect', 'srv'))[0].NetworkSettings.SandboxKey);
      expect(await ping(lab, srvNs, ep.ipv4)).toBe(true);
      // A second join of a joined endpoint is refused.
      expect((await d.call('join', { id: ep.id, netnsPath: ns.path, ifname: 'other0' })).message).toMatch(/already joined/);

      await d.ok('leave', { id: ep.id });
      expect(await linkNames(lab, ns)).toEqual(['lo']);
      expect(await ping(lab, srvNs, ep.ipv4)).toBe(false);
      await d.ok('delete', { id: ep.id });
      expect(await linkNames(lab, lab.host)).toEqual(hostBefore);
    }

    it('joins an `ip netns add` namespace by /run/netns path as net7, and undoes exactly that', async () => {
      const ns = await lab.addNamespace('foreign');
      await roundTrip(ns, 'net7', '10.77.0.77');
      // The address went back to IPAM: the same static address is free again.
      const again = await d.ok('create', { network: 'fe-net', ipv4: '10.77.0.77' });
      await d.ok('delete', { id: again.id });
    });

    it('joins the namespace of an unshare process by /proc/PID/ns/net as ext0', async () => {
      const holder = lab.spawn(lab.host, 'unshare', ['--net', 'sleep', '600']);
      const path = `/proc/${holder.pid}/ns/net`;
      // unshare execs sleep once its namespace is made: wait for the pid's namespace to differ.
      const hostNs = (await run('readlink', [`/proc/self/ns/net`])).trim();
      for (let i = 0; i < 100 && (await run('readlink', [path]).catch(() => hostNs)).trim() === hostNs; i++) await new Promise((r) => setTimeout(r, 20));
      try {
        await roundTrip(pathNs(path), 'ext0');
      } finally {
        holder.kill('SIGKILL');
      }
    });

    it('refuses unknown drivers, predefined-only drivers and bad bridge options over the API, as moby words them', async () => {
      const create = (...args: string[]) => runRaw(process.execPath, [cliPath, '-H', `unix://${d.socket}`, 'network', 'create', ...args]);
      expect((await create('-d', 'weave', 'mv')).stderr).toBe('Error response from daemon: plugin "weave" not found\n');
      expect((await create('-d', 'host', 'h2')).stderr).toBe('Error response from daemon: only one instance of "host" network is allowed\n');
      const icc = await create('-o', 'com.docker.network.bridge.enable_icc=maybe', 'bad-icc');
      expect({ code: icc.code, stderr: icc.stderr }).toEqual({ code: 1, stderr: 'Error response from daemon: invalid value "maybe" for option com.docker.network.bridge.enable_icc: expected true or false\n' });
    });

    it('refuses bad joins with errors naming the object', async () => {
      const ep = await d.ok('create', { network: 'fe-net' });
      expect(await d.call('join', { id: ep.id, netnsPath: '/run/netns/no-such-ns', ifname: 'eth0' })).toMatchObject({ ok: false, kind: 'not-found', message: 'network namespace /run/netns/no-such-ns not found' });
      expect(await d.call('join', { id: ep.id, netnsPath: '/run/netns/x', ifname: 'eth0 up' })).toMatchObject({ ok: false, kind: 'invalid' });
      expect(await d.call('join', { id: ep.id, netnsPath: 'relative', ifname: 'eth0' })).toMatchObject({ ok: false, kind: 'invalid' });
      // A network with a foreign endpoint on it is in use, as with a sandbox's.
      const rm = await runRaw(process.execPath, [cliPath, '-H', `unix://${d.socket}`, 'network', 'rm', 'fe-net']);
      expect({ code: rm.code, stderr: rm.stderr }).toMatchObject({ code: 1, stderr: expect.stringContaining('network fe-net has active endpoints') });
      expect(await d.call('create', { network: 'host' })).toMatchObject({ ok: false, kind: 'invalid', message: 'network host (driver "host") does not make endpoints for other namespaces' });
      await d.ok('delete', { id: ep.id });
    });
  });
}
