/**
 * The overlay section of `npm run bench` (`--only overlay`): in one ClusterLab (five host
 * namespaces on one underlay bridge, one real etcd, a daemon per host on --cluster-store),
 * sandbox -> sandbox on two hosts over bpfnet's overlay (VXLAN from the eBPF datapath, the
 * endpoints learnt from etcd's watch), beside the same pair on one host, beside Docker's way
 * (a kernel VXLAN device enslaved to a Linux bridge on each host, bridged traffic through
 * netfilter as br_netfilter makes it) between the same two host namespaces, run in a rotated
 * order per repetition. Workloads: iperf3 with 1 and 2 TCP streams, HTTP keep-alive requests/s
 * (wrk, 50 connections), new TCP connections/s (connrate, 32 in flight); beside them the pair
 * with no overlay (the kernel routing) and the overlay's floor (bpf/overlay_floor.bpf.c: a fixed
 * stateless VXLAN encap/decap on the same hooks, the bound of any eBPF overlay); the cross-host pair's
 * request rates over IPv6 too (the network is dual-stack). Then the time for a new
 * sandbox to become reachable from every other host, by traffic (src/lab/overlay-reach.ts),
 * over 100 sandboxes spread over the five hosts (20 with --quick).
 *
 * `node dist/bench/overlay.js [--quick]` runs it alone and prints its markdown.
 */
import { ClusterLab, UNDERLAY, type ClusterHost } from '../src/lab/cluster-lab.js';
import { freeAddresses, percentile, timeToReach, tuneProber } from '../src/lab/overlay-reach.js';
import { run } from '../src/system/exec.js';
import { ensureAddress, ensureVeth, ip, netns, setUp, type Netns } from '../src/system/ip.js';
import type { Lab } from '../src/lab/lab.js';
import { BpfObject, interfaceIndex } from '../src/datapath/libbpf/bpf.js';
import { be16, be32, encode, ipv4, mac, u32 } from '../src/datapath/libbpf/codec.js';
import { DNS_FILTER_PRIORITY } from '../src/datapath/ebpf/hooks.js';
import { bpfObject } from '../src/paths.js';
import { macOf } from './setups/floor.js';
import type { OverlayResults, OverlaySetupName } from './results-model.js';
import { CONNRATE, HTTPD, SERVER_PORTS, tuneClient, waitListening } from './setups/servers.js';

const NET = { name: 'ov', subnet: '10.95.0.0/24', subnet6: 'fd95::/64', server: '10.95.0.21', remoteClient: '10.95.0.11', localClient: '10.95.0.22', server6: 'fd95::21', remoteClient6: 'fd95::11' } as const;
/** Docker's way gets its own VNI and UDP port, so its kernel VXLAN device and bpfnet's collect_md one never see each other's packets. */
const DOCKER = { vni: 4302, port: 4790, client: '10.96.0.11', server: '10.96.0.21' } as const;
/** The pair with no overlay: a subnet per host, routed across the underlay (host side .1, sandbox .2). */
const NO_OVERLAY = { subnet: (host: number) => `10.97.${host}.0/24`, gateway: (host: number) => `10.97.${host}.1`, sandbox: (host: number) => `10.97.${host}.2` } as const;
/**
 * The overlay's floor: one subnet across the two hosts (.11 on h1, .21 on h2), its own VNI and
 * UDP port (neither bpfnet's VXLAN, 4789, nor Docker's way, 4790, sees its packets), its filters
 * just before bpfnet's on the uplink (the published-port floor's place in the Docker setup).
 */
const FLOOR = { vni: 4303, port: 4791, sandbox: (host: number) => `10.98.0.${host}1`, hostVeth: 'ofv', priority: DNS_FILTER_PRIORITY - 1 } as const;

interface Plan {
  /** Seconds of each measured run (iperf3 also omits its first second). */
  seconds: number;
  reachEndpoints: number;
}
const PLANS: Record<'quick' | 'full', Plan> = { quick: { seconds: 1, reachEndpoints: 20 }, full: { seconds: 4, reachEndpoints: 100 } };

export const OVERLAY_SETUPS: Record<OverlaySetupName, string> = {
  'cross-host': 'bpfnet overlay, client and server on two hosts (VXLAN from the eBPF datapath)',
  'same-host': 'bpfnet overlay network, client and server on one host',
  'docker-way': "Docker's way, two hosts: kernel VXLAN device + Linux bridge per host, br_netfilter",
  'no-overlay': 'no overlay: the same two hosts, a plain namespace on each behind a veth, the kernel routing across the underlay',
  'cross-host-v6': 'bpfnet overlay over IPv6, client and server on two hosts (same pair, dual-stack network)',
  floor: 'the floor: a namespace behind a veth on each host, a fixed stateless eBPF VXLAN encap/decap on the same hooks (no map, no state, no check)',
};

interface Target {
  setup: OverlaySetupName;
  client: Netns;
  server: string;
  /** Request rates only (the IPv6 pair): no iperf3 runs. */
  ratesOnly?: boolean;
}

/** The server's address in a URL (IPv6 in brackets). */
const urlHost = (addr: string) => (addr.includes(':') ? `[${addr}]` : addr);

/** The plan's estimated seconds, for the bench's progress. */
export function overlayEstimate(quick: boolean, reps: number): number {
  const p = PLANS[quick ? 'quick' : 'full'];
  return 40 + reps * (5 * (4 * (p.seconds + 2) + 1) + 2 * (p.seconds + 2)) + p.reachEndpoints * 0.8;
}

async function iperf(lab: Lab, t: Target, streams: number, seconds: number): Promise<number> {
  const out = await lab.exec(t.client, 'iperf3', ['-c', t.server, '-p', String(SERVER_PORTS.iperf), '-t', String(seconds), '-O', '1', '-P', String(streams), '-J'], { timeoutMs: (seconds + 30) * 1000 });
  return (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
}

async function wrk(lab: Lab, t: Target, seconds: number): Promise<number> {
  const out = await lab.exec(t.client, 'wrk', ['-t', '1', '-c', '50', '-d', `${seconds}s`, `http://${urlHost(t.server)}:${SERVER_PORTS.http}/`], { timeoutMs: (seconds + 30) * 1000 });
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!m) throw new Error(`wrk from ${t.client.name} to ${t.server}: no rate in\n${out}`);
  if (/Non-2xx|Socket errors/.test(out)) throw new Error(`wrk from ${t.client.name} to ${t.server}: errors during the run\n${out}`);
  return Number(m[1]);
}

async function connrate(lab: Lab, t: Target, seconds: number): Promise<number> {
  const out = await lab.exec(t.client, CONNRATE, ['-a', t.server, '-p', String(SERVER_PORTS.http), '-c', '32', '-d', String(seconds), '-w', '1', '-m', 'connect'], { timeoutMs: (seconds + 30) * 1000 });
  return (JSON.parse(out.trim().split('\n').at(-1)!) as { rate: number }).rate;
}

/** Docker's way on one host: a kernel VXLAN device (static flood entry to the other host) enslaved to a bridge, a sandbox on a veth. */
async function dockerWay(lab: Lab, host: ClusterHost, other: ClusterHost, sandboxAddr: string): Promise<Netns> {
  const h = host.ns;
  await ip(h, ['link', 'add', 'name', 'dkbr', 'type', 'bridge']);
  await ip(h, ['link', 'add', 'name', 'dkvx', 'type', 'vxlan', 'id', String(DOCKER.vni), 'local', host.address, 'dstport', String(DOCKER.port), 'nolearning']);
  await ip(h, ['link', 'set', 'dev', 'dkvx', 'mtu', '1450', 'master', 'dkbr', 'up']);
  await run('nsenter', [`--net=${h.path}`, 'bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'dkvx', 'dst', other.address]);
  await ip(h, ['link', 'set', 'dev', 'dkbr', 'mtu', '1450', 'up']);
  const sb = await lab.addNamespace(`dk${host.index}`);
  await ensureVeth(h, 'dkv', sb, 'eth0');
  await ip(h, ['link', 'set', 'dev', 'dkv', 'mtu', '1450', 'master', 'dkbr', 'up']);
  await ip(sb, ['link', 'set', 'dev', 'eth0', 'mtu', '1450']);
  await ensureAddress(sb, 'eth0', `${sandboxAddr}/24`);
  await setUp(sb, 'eth0');
  await setUp(sb, 'lo');
  return sb;
}

/**
 * The reference with no overlay at all: a namespace behind a veth on host, its subnet routed to
 * by the other host through the underlay, forwarded by the kernel (no encapsulation, no bridge,
 * no rules). Not a ceiling for bpfnet's path, which skips the kernel's forwarding on both hosts,
 * but what these two hosts give with no overlay: Docker's way measured against it is the cost of
 * its tunnel and bridge.
 */
async function routedPair(lab: Lab, host: ClusterHost, other: ClusterHost): Promise<Netns> {
  const h = host.ns;
  const sb = await lab.addNamespace(`rt${host.index}`);
  await ensureVeth(h, 'rtv', sb, 'eth0');
  await ensureAddress(h, 'rtv', `${NO_OVERLAY.gateway(host.index)}/24`);
  await setUp(h, 'rtv');
  await ensureAddress(sb, 'eth0', `${NO_OVERLAY.sandbox(host.index)}/24`);
  await setUp(sb, 'eth0');
  await setUp(sb, 'lo');
  await ip(sb, ['route', 'add', 'default', 'via', NO_OVERLAY.gateway(host.index)]);
  await ip(h, ['route', 'add', NO_OVERLAY.subnet(other.index), 'via', other.address]);
  return sb;
}

/** A namespace behind a veth on host, in the floor's subnet, with the tunnel's MTU (as an overlay sandbox has). */
async function floorSandbox(lab: Lab, host: ClusterHost): Promise<Netns> {
  const sb = await lab.addNamespace(`of${host.index}`);
  await ensureVeth(host.ns, FLOOR.hostVeth, sb, 'eth0');
  await ip(host.ns, ['link', 'set', 'dev', FLOOR.hostVeth, 'mtu', '1450', 'up']);
  await ip(sb, ['link', 'set', 'dev', 'eth0', 'mtu', '1450']);
  await ensureAddress(sb, 'eth0', `${FLOOR.sandbox(host.index)}/24`);
  await setUp(sb, 'eth0');
  await setUp(sb, 'lo');
  return sb;
}

/**
 * The floor's two filters on host (bpf/overlay_floor.bpf.c), its sandbox sb talking to other's:
 * encapsulation at the host veth's tc ingress, decapsulation at the uplink's before bpfnet's
 * filter. The peer's neighbour entry is static (its MAC is the host veth's: the peer's programs
 * rewrite the inner MACs anyway), so no ARP crosses and the floor carries IPv4 alone.
 */
async function attachOverlayFloor(lab: Lab, host: ClusterHost, sb: Netns, other: ClusterHost): Promise<void> {
  const vethMac = await macOf(lab, host.ns, FLOOR.hostVeth);
  await ip(sb, ['neigh', 'replace', FLOOR.sandbox(other.index), 'lladdr', vethMac, 'dev', 'eth0', 'nud', 'permanent']);
  const consts = {
    ofloor_local_vtep: encode(ipv4, host.address),
    ofloor_remote_vtep: encode(ipv4, other.address),
    ofloor_peer_addr: encode(ipv4, FLOOR.sandbox(other.index)),
    ofloor_port: encode(be16, FLOOR.port),
    ofloor_vni: encode(be32, FLOOR.vni << 8),
    ofloor_uplink_ifindex: encode(u32, interfaceIndex(host.ns.path, UNDERLAY.hostUplink)),
    ofloor_sandbox_ifindex: encode(u32, interfaceIndex(host.ns.path, FLOOR.hostVeth)),
    ofloor_uplink_mac: encode(mac, await macOf(lab, host.ns, UNDERLAY.hostUplink)),
    ofloor_remote_mac: encode(mac, await macOf(lab, other.ns, UNDERLAY.hostUplink)),
    ofloor_veth_mac: encode(mac, vethMac),
    ofloor_sandbox_mac: encode(mac, await macOf(lab, sb, 'eth0')),
  };
  // The filters hold the programs: the object's descriptors can go once they are attached.
  const obj = BpfObject.load(bpfObject('overlay_floor'), { consts });
  try {
    obj.program('ofloor_encap').attachTcFilter({ netns: host.ns.path, ifname: FLOOR.hostVeth }, 'ingress', FLOOR.priority);
    obj.program('ofloor_decap').attachTcFilter({ netns: host.ns.path, ifname: UNDERLAY.hostUplink }, 'ingress', FLOOR.priority);
  } finally {
    obj.close();
  }
}

/** The floor's pair: a sandbox on each host, then each host's filters (they need the other's MACs). */
export async function overlayFloorPair(lab: Lab, a: ClusterHost, b: ClusterHost): Promise<[Netns, Netns]> {
  const sa = await floorSandbox(lab, a);
  const sb = await floorSandbox(lab, b);
  await attachOverlayFloor(lab, a, sa, b);
  await attachOverlayFloor(lab, b, sb, a);
  return [sa, sb];
}

async function sandbox(h: ClusterHost, name: string, address: string, address6?: string): Promise<Netns> {
  await h.daemon!.bpfnet('run', '-d', '--name', name, '--network', NET.name, '--ip', address, ...(address6 ? ['--ip6', address6] : []));
  const key: string = JSON.parse(await h.daemon!.bpfnet('inspect', name))[0].NetworkSettings.SandboxKey;
  return netns(key.slice('/run/netns/'.length));
}

const errorText = (err: unknown) => (err as Error)?.message?.split('\n').slice(0, 2).join(' ') ?? String(err);

/**
 * Runs the section; `onStep` reports progress (one call per measured run). A failed run is
 * recorded as NaN with its error, so the other setups' samples of that repetition stay paired.
 */
export async function runOverlayBenchmark(opts: { quick: boolean; reps: number; onStep?: (what: string) => void; interrupted?: () => boolean; onLab?: (cl: ClusterLab) => void }): Promise<OverlayResults> {
  const plan = PLANS[opts.quick ? 'quick' : 'full'];
  const step = opts.onStep ?? (() => undefined);
  const stop = opts.interrupted ?? (() => false);
  const cl = await ClusterLab.create({ hosts: 5, datapath: 'ebpf' });
  opts.onLab?.(cl);
  try {
    const [h1, h2, h3, h4, h5] = cl.hosts as [ClusterHost, ClusterHost, ClusterHost, ClusterHost, ClusterHost];
    await h1.daemon!.bpfnet('network', 'create', '-d', 'overlay', '--ipv6', '--subnet', NET.subnet, '--subnet', NET.subnet6, NET.name);
    // The other hosts build it from etcd's watch; a run there fails until they have.
    for (const h of [h2, h3, h4, h5]) {
      for (let k = 0; (await h.daemon!.cli(['network', 'inspect', NET.name])).code !== 0; k++) {
        if (k > 300) throw new Error(`network ${NET.name} did not reach h${h.index} within 30 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const server = await sandbox(h2, 'srv', NET.server, NET.server6);
    const remoteClient = await sandbox(h1, 'cli1', NET.remoteClient, NET.remoteClient6);
    const localClient = await sandbox(h2, 'cli2', NET.localClient);
    const dkClient = await dockerWay(cl.lab, h1, h2, DOCKER.client);
    const dkServer = await dockerWay(cl.lab, h2, h1, DOCKER.server);
    const rtClient = await routedPair(cl.lab, h1, h2);
    const rtServer = await routedPair(cl.lab, h2, h1);
    const [floorClient, floorServer] = await overlayFloorPair(cl.lab, h1, h2);
    for (const ns of [server, dkServer, rtServer, floorServer]) {
      cl.lab.spawn(ns, HTTPD, [String(SERVER_PORTS.http)]);
      cl.lab.spawn(ns, 'iperf3', ['-s', '-p', String(SERVER_PORTS.iperf)]);
      await waitListening(cl.lab, ns, [SERVER_PORTS.http, SERVER_PORTS.iperf]);
    }
    for (const ns of [remoteClient, localClient, dkClient, rtClient, floorClient]) await tuneClient(ns);
    const targets: Target[] = [
      { setup: 'cross-host', client: remoteClient, server: NET.server },
      { setup: 'same-host', client: localClient, server: NET.server },
      { setup: 'docker-way', client: dkClient, server: DOCKER.server },
      { setup: 'no-overlay', client: rtClient, server: NO_OVERLAY.sandbox(h2.index) },
      { setup: 'floor', client: floorClient, server: FLOOR.sandbox(h2.index) },
      { setup: 'cross-host-v6', client: remoteClient, server: NET.server6, ratesOnly: true },
    ];
    const results: OverlayResults = {
      setups: targets.map((t) => ({ name: t.setup, description: OVERLAY_SETUPS[t.setup], iperf1Gbps: [], iperf2Gbps: [], keepAliveRps: [], newConnPerSec: [] })),
      reach: { hosts: cl.hosts.length, method: 'traffic', everyHostMs: [], perHostMs: [], createMs: [], errors: [] },
      seconds: plan.seconds,
      errors: [],
      notes: [],
    };
    const measure = async (rep: number, i: number, what: string, key: 'iperf1Gbps' | 'iperf2Gbps' | 'keepAliveRps' | 'newConnPerSec', fn: () => Promise<number>) => {
      step(`overlay: ${what} · ${targets[i]!.setup} · rep ${rep + 1}/${opts.reps}`);
      let v = NaN;
      try {
        v = await fn();
      } catch (err) {
        results.errors.push(`${what} on ${targets[i]!.setup}, rep ${rep + 1}: ${errorText(err)}`);
      }
      results.setups[i]![key][rep] = v;
    };
    for (let rep = 0; rep < opts.reps && !stop(); rep++) {
      // Rotated order: no setup always runs first (or last) on a shared machine.
      for (let k = 0; k < targets.length; k++) {
        const i = (k + rep) % targets.length;
        const t = targets[i]!;
        if (!t.ratesOnly) {
          await measure(rep, i, 'TCP 1 stream', 'iperf1Gbps', () => iperf(cl.lab, t, 1, plan.seconds));
          await measure(rep, i, 'TCP 2 streams', 'iperf2Gbps', () => iperf(cl.lab, t, 2, plan.seconds));
        }
        await measure(rep, i, 'HTTP keep-alive', 'keepAliveRps', () => wrk(cl.lab, t, plan.seconds));
        await measure(rep, i, 'new connections', 'newConnPerSec', () => connrate(cl.lab, t, plan.seconds));
      }
    }

    // Propagation: one prober sandbox per host, the new sandboxes spread over the hosts in turn.
    step(`overlay: a new sandbox reachable from every other host · ${plan.reachEndpoints} sandboxes`);
    const probers = [
      { host: h1, ns: remoteClient },
      { host: h2, ns: server },
      { host: h3, ns: await sandbox(h3, 'p3', '10.95.0.33') },
      { host: h4, ns: await sandbox(h4, 'p4', '10.95.0.44') },
      { host: h5, ns: await sandbox(h5, 'p5', '10.95.0.55') },
    ];
    for (const p of probers) await tuneProber(cl, p.ns);
    const free = await freeAddresses(h1, NET.name, Array.from({ length: 150 }, (_, k) => `10.95.0.${100 + k}`));
    for (let k = 0; k < plan.reachEndpoints && !stop(); k++) {
      const on = cl.hosts[k % cl.hosts.length]!;
      try {
        const s = await timeToReach(cl, { network: NET.name, on, name: `new${k}`, address: free[k]!, probers: probers.filter((p) => p.host !== on) });
        results.reach.everyHostMs.push(s.everyHostMs);
        results.reach.perHostMs.push(...Object.values(s.perHostMs));
        results.reach.createMs.push(s.createMs);
      } catch (err) {
        results.reach.errors.push(`new${k} on h${on.index}: ${errorText(err)}`);
      }
    }
    results.notes.push(
      `${opts.reps} repetition(s) of ${plan.seconds} s per workload (iperf3 omits one more second first), setups in an order rotated by one per repetition; ratios are medians of per-repetition ratios.`,
      'The overlay network is dual-stack; the IPv6 row is the same client and server sandboxes over their IPv6 addresses (VXLAN over the IPv4 underlay as for IPv4), request rates only.',
      'Five host namespaces on one Linux bridge (the underlay), each with its own bpfnet daemon on the cluster store, one etcd 3.4 in the lab; client on h1, server on h2 (cross-host), client and server on h2 (same host).',
      "Docker's way: the bridge and the kernel VXLAN device sit in each host's namespace (Docker puts them in a per-network namespace), one static flood entry per remote host, no iptables rules loaded (br_netfilter passes bridged frames through netfilter anyway); its packets also cross bpfnet's programs on the host's uplink, as bpfnet's do.",
      "No overlay: client and server namespaces behind a veth on h1 and h2, each host routing the other's subnet to the other's underlay address, the kernel forwarding (no encapsulation, no bridge, no rules; MTU 1500). Its ratio to Docker's way is what Docker's tunnel and bridge cost; bpfnet's path skips the kernel's forwarding on both hosts, so it is a reference, not a ceiling.",
      `The floor (bpf/overlay_floor.bpf.c): client and server namespaces behind a veth on h1 and h2 in one subnet (MTU 1450, a static neighbour entry for the peer), a fixed VXLAN encapsulation (VNI ${FLOOR.vni}, UDP ${FLOOR.port}) at the host veth's tc ingress sent out of the uplink by a plain redirect, and at the uplink's tc ingress (before bpfnet's filter) the decapsulation into the sandbox by redirect_peer: no map, no lookup, no check. Its ratio to Docker's way is what the least eBPF overlay on these hooks reaches; cross-host ÷ floor is what bpfnet's state, checks and routing cost. GSO aggregates are encapsulated and unwrapped whole (they cross the underlay bridge as up to 64 KB frames), so its throughput rows bound bpfnet's too, whose aggregates go through the collect_md VXLAN device instead.`,
      `New sandbox reachable from every other host: measured by traffic. Before each of ${plan.reachEndpoints} sandboxes is made (POST /sandboxes/create with --ip, on h1..h5 in turn), a sandbox on each of the four other hosts pings that address every 2 ms (ARP retried every 5 ms in the prober); the time is the first echo reply minus the create call's answer, the slowest host's per sandbox. Negative: the other hosts reached it before its own host answered the call. The create call itself: p50 ${percentile(results.reach.createMs, 50).toFixed(0)} ms, p99 ${percentile(results.reach.createMs, 99).toFixed(0)} ms.`,
    );
    return results;
  } finally {
    await cl.destroy();
  }
}

if (process.argv[1] && /overlay\.(js|ts)$/.test(process.argv[1])) {
  const { overlayMarkdown } = await import('./report/overlay.js');
  const quick = process.argv.includes('--quick');
  const r = await runOverlayBenchmark({ quick, reps: quick ? 1 : 3, onStep: (s) => process.stderr.write(`${s}\n`) });
  console.log(overlayMarkdown(r));
}
