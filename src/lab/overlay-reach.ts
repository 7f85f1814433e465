/**
 * How long a new overlay endpoint takes to become reachable from every other host of a
 * cluster lab, measured by traffic: before the sandbox is made, one `ping` per other host runs in a
 * sandbox there, aimed at the address the new endpoint will get (reserved with --ip), sending
 * every 2 ms and ended at its first reply (`-D` stamps it). The sandbox is made by a direct
 * API call (POST /sandboxes/create, what `bpfnet run -d` sends) so its answer is timed without a
 * CLI's start-up; each host's time is its first reply minus that answer, and the endpoint's time
 * is the slowest host's. Nothing but the real path answers: the asking host's eBPF program answers ARP only
 * once the watch has put the endpoint into its map, and the echo reply comes back through the
 * new host's VXLAN. The demo and the benchmark use it.
 */
import type { ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import type { Netns } from '../system/ip.js';
import type { ClusterHost, ClusterLab } from './cluster-lab.js';

/** Sandboxes re-ask ARP this often while a neighbour is unresolved (the kernel's default is 1 s, which would hide the propagation under ARP back-off). */
const ARP_RETRY_MS = 5;

export interface ReachProber {
  host: ClusterHost;
  /** A sandbox on that host on the network (its namespace). */
  ns: Netns;
}

export interface ReachSample {
  /** The new endpoint's sandbox and address. */
  name: string;
  address: string;
  /** Wall time of the create call (request sent -> answer), ms. */
  createMs: number;
  /** Per prober host index: first echo reply minus the create call's answer, ms (negative: reachable before the answer). */
  perHostMs: Record<number, number>;
  /** The slowest host's time: reachable from every other host. */
  everyHostMs: number;
}

/** Engine API call on a daemon's unix socket; resolves with status and body. */
export function apiCall(socket: string, method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath: socket, method, path, headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path} on ${socket}: no answer within 30 s`)));
    req.on('error', reject);
    req.end(data);
  });
}

/**
 * Milliseconds since the epoch: the wall clock ping -D stamps its replies with, read at the
 * moment (1 ms resolution). Not performance.timeOrigin + performance.now(): that is the wall
 * clock at the process's start carried forward on the monotonic clock, so any step of the wall
 * clock during a long run shifts every sample (the full run at 58c3b05 reported all 100 sandboxes
 * reachable 11.25 s "after" their create calls, to within 6 ms of each other).
 */
const nowMs = (): number => Date.now();

/** Lowers the ARP retry interval on every interface of a prober sandbox (a lab namespace, never the root one). */
export async function tuneProber(cl: ClusterLab, ns: Netns): Promise<void> {
  await cl.lab.exec(ns, 'sh', ['-c', `for f in /proc/sys/net/ipv4/neigh/*/retrans_time_ms; do case $f in */lo/*|*/default/*) ;; *) echo ${ARP_RETRY_MS} > $f;; esac; done`]);
}

/** A ping that has started (printed its header) and resolves with the epoch ms of its first reply. */
async function startPinger(cl: ClusterLab, ns: Netns, address: string, deadlineS: number): Promise<{ child: ChildProcess; reply: Promise<number> }> {
  // Neither -c nor -w: iputils' ping stops at the first "Destination Host Unreachable" (ARP not answered yet) with either; the deadline is ours.
  const child = cl.lab.spawn(ns, 'ping', ['-n', '-D', '-i', '0.002', address]);
  const timer = setTimeout(() => child.kill('SIGKILL'), deadlineS * 1000);
  child.once('exit', () => clearTimeout(timer));
  let out = '';
  let started!: () => void;
  const ready = new Promise<void>((r) => (started = r));
  const reply = new Promise<number>((resolve, reject) => {
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('PING')) started();
      const m = /\[(\d+\.\d+)\] \d+ bytes from/.exec(out);
      if (m) {
        resolve(Number(m[1]) * 1000);
        child.kill('SIGKILL');
      }
    });
    child.once('exit', (code) => {
      started();
      reject(new Error(`ping ${address} from ${ns.name}: no reply within ${deadlineS} s (exit ${code}):\n${out.split('\n').slice(0, 4).join('\n')}`));
    });
  });
  reply.catch(() => undefined);
  await ready;
  return { child, reply };
}

/**
 * Runs sandbox `name` on `on`, on `network` with `address` (what `bpfnet run -d --network N --ip A`
 * sends), while every prober pings that address; resolves when every prober got its reply.
 */
export async function timeToReach(cl: ClusterLab, opts: { network: string; on: ClusterHost; name: string; address: string; probers: ReachProber[]; deadlineS?: number }): Promise<ReachSample> {
  const d = opts.on.daemon;
  if (!d) throw new Error(`host h${opts.on.index} has no daemon`);
  const pingers = await Promise.all(opts.probers.map((p) => startPinger(cl, p.ns, opts.address, opts.deadlineS ?? 10)));
  try {
    const t0 = nowMs();
    const r = await apiCall(d.socket, 'POST', '/sandboxes/create', { Name: opts.name, Network: opts.network, IPv4Address: opts.address });
    const answered = nowMs();
    if (r.status >= 300) throw new Error(`run ${opts.name} on ${opts.network} at h${opts.on.index}: ${r.status} ${r.text.trim()}`);
    const replies = await Promise.all(pingers.map((p) => p.reply));
    const perHostMs = Object.fromEntries(opts.probers.map((p, k) => [p.host.index, replies[k]! - answered]));
    return { name: opts.name, address: opts.address, createMs: answered - t0, perHostMs, everyHostMs: Math.max(...Object.values(perHostMs)) };
  } finally {
    for (const p of pingers) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  }
}

/** The candidates no endpoint of `network` holds in the cluster (as `via`'s daemon sees it), in order. */
export async function freeAddresses(via: ClusterHost, network: string, candidates: readonly string[]): Promise<string[]> {
  const r = await apiCall(via.daemon!.socket, 'GET', `/cluster/endpoints?network=${encodeURIComponent(network)}`);
  if (r.status !== 200) throw new Error(`cluster endpoints of ${network} on h${via.index}: ${r.status} ${r.text.trim()}`);
  const held = new Set((JSON.parse(r.text) as Array<{ ipv4?: string }>).map((e) => e.ipv4));
  return candidates.filter((a) => !held.has(a));
}

/** The p-th percentile (nearest rank) of xs. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
