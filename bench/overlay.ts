/**
 * Overlay benchmark: sandbox -> sandbox on two simulated hosts over bpfnet's overlay (VXLAN
 * from the eBPF datapath), beside the same pair on one host, beside Docker's way (a kernel
 * VXLAN device enslaved to a Linux bridge on each host, bridged traffic through netfilter as
 * br_netfilter makes it) in the same lab, interleaved round by round. Workloads: iperf3 with 1
 * and 2 TCP streams, HTTP keep-alive requests/s (wrk, 50 connections), new TCP connections/s
 * (connrate, 32 in flight). The hosts' remote endpoints are told to each daemon the way the
 * cluster state's watch would (test/support/overlay-host.mjs), as in test/e2e/overlay.test.ts.
 *
 * `node dist/bench/overlay.js [--quick]` runs it alone and prints a markdown table.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Lab } from '../src/lab/lab.js';
import { cliPath, projectRoot } from '../src/paths.js';
import { run } from '../src/system/exec.js';
import { ensureAddress, ensureVeth, ip, netns, setUp, type Netns } from '../src/system/ip.js';
import { writeSysctl } from '../src/system/sysctl.js';
import { CONNRATE, HTTPD, SERVER_PORTS, tuneClient, waitListening } from './setups/servers.js';

const HARNESS = join(projectRoot, 'test', 'support', 'overlay-host.mjs');
const OVERLAY_OPTION = 'com.docker.network.driver.overlay.vxlanid_list';
const VNI = 4301;
/** Docker's way gets its own VNI and UDP port, so its kernel VXLAN device and bpfnet's collect_md one never see each other's packets. */
const DOCKER_VNI = 4302;
const DOCKER_PORT = 4790;

interface Plan {
  rounds: number;
  seconds: number;
}
const PLANS: Record<'quick' | 'full', Plan> = { quick: { rounds: 1, seconds: 3 }, full: { rounds: 3, seconds: 8 } };

type SetupName = 'overlay (bpfnet, 2 hosts)' | 'same host (bpfnet overlay net)' | "Docker's way (kernel vxlan + bridge, 2 hosts)";
interface Target {
  setup: SetupName;
  client: Netns;
  server: string;
}

interface Row {
  setup: SetupName;
  iperf1: number[];
  iperf2: number[];
  keepAlive: number[];
  newConn: number[];
}

class BenchHost {
  child?: ChildProcess;
  log = '';
  #seq = 0;
  readonly #waiting = new Map<number, (a: { ok: boolean; message?: string }) => void>();
  readonly socket: string;
  constructor(
    readonly lab: Lab,
    readonly name: string,
    readonly ns: Netns,
    readonly vtep: string,
  ) {
    this.socket = join(lab.tmpDir(), `${name}.sock`);
  }

  async start(): Promise<void> {
    const flags = { root: join(this.lab.tmpDir(), `${this.name}-root`), socket: this.socket, datapath: 'ebpf', uplink: 'up0', instance: `${this.lab.prefix}${this.name}` };
    const child = this.lab.spawn(this.ns, process.execPath, [HARNESS, JSON.stringify(flags)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stderr?.on('data', (b: Buffer) => (this.log += b.toString()));
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const msg = JSON.parse(line) as { ready?: boolean; seq: number; ok: boolean; message?: string };
        if (msg.ready) return resolve();
        this.#waiting.get(msg.seq)?.(msg);
      });
      child.once('exit', (code) => reject(new Error(`bench host ${this.name} exited (${code}):\n${this.log}`)));
    });
  }

  async call(op: string, args: unknown): Promise<void> {
    const seq = ++this.#seq;
    const a = await new Promise<{ ok: boolean; message?: string }>((resolve) => {
      this.#waiting.set(seq, resolve);
      this.child!.stdin!.write(JSON.stringify({ seq, op, args }) + '\n');
    });
    if (!a.ok) throw new Error(`${op} on ${this.name}: ${a.message}`);
  }

  cli(...args: string[]): Promise<string> {
    return run(process.execPath, [cliPath, '-H', `unix://${this.socket}`, ...args]);
  }

  async sandbox(name: string, addr: string): Promise<{ ns: Netns; record: Record<string, unknown> }> {
    await this.cli('run', '-d', '--name', name, '--network', 'ov', '--ip', addr);
    const sb = JSON.parse(await this.cli('inspect', name))[0];
    const ep = sb.NetworkSettings.Networks.ov;
    return {
      ns: netns(sb.NetworkSettings.SandboxKey.slice('/run/netns/'.length)),
      record: { vni: VNI, ipv4: ep.IPAddress, mac: ep.MacAddress, vtep: this.vtep, sandboxId: sb.Id, name, aliases: [] },
    };
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function iperf(lab: Lab, t: Target, streams: number, seconds: number): Promise<number> {
  const out = await lab.exec(t.client, 'iperf3', ['-c', t.server, '-p', String(SERVER_PORTS.iperf), '-t', String(seconds), '-P', String(streams), '-J'], { timeoutMs: (seconds + 30) * 1000 });
  return (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
}

async function wrk(lab: Lab, t: Target, seconds: number): Promise<number> {
  const out = await lab.exec(t.client, 'wrk', ['-t', '1', '-c', '50', '-d', `${seconds}s`, `http://${t.server}:${SERVER_PORTS.http}/`], { timeoutMs: (seconds + 30) * 1000 });
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!m) throw new Error(`wrk from ${t.client.name} to ${t.server}: no rate in\n${out}`);
  return Number(m[1]);
}

async function connrate(lab: Lab, t: Target, seconds: number): Promise<number> {
  const out = await lab.exec(t.client, CONNRATE, ['-a', t.server, '-p', String(SERVER_PORTS.http), '-c', '32', '-d', String(seconds), '-w', '1', '-m', 'connect'], { timeoutMs: (seconds + 30) * 1000 });
  return (JSON.parse(out.trim().split('\n').at(-1)!) as { rate: number }).rate;
}

/** Docker's way on one host: a kernel VXLAN device (static flood entry to the other host) enslaved to a bridge, a sandbox on a veth. */
async function dockerWay(lab: Lab, host: BenchHost, other: BenchHost, sandboxAddr: string): Promise<Netns> {
  const h = host.ns;
  await ip(h, ['link', 'add', 'name', 'dkbr', 'type', 'bridge']);
  await ip(h, ['link', 'add', 'name', 'dkvx', 'type', 'vxlan', 'id', String(DOCKER_VNI), 'local', host.vtep, 'dstport', String(DOCKER_PORT), 'nolearning']);
  await ip(h, ['link', 'set', 'dev', 'dkvx', 'mtu', '1450', 'master', 'dkbr', 'up']);
  await run('nsenter', [`--net=${h.path}`, 'bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'dkvx', 'dst', other.vtep]);
  await ip(h, ['link', 'set', 'dev', 'dkbr', 'mtu', '1450', 'up']);
  const sb = await lab.addNamespace(`dk-${host.name}`);
  await ensureVeth(h, 'dkv', sb, 'eth0');
  await ip(h, ['link', 'set', 'dev', 'dkv', 'mtu', '1450', 'master', 'dkbr', 'up']);
  await ip(sb, ['link', 'set', 'dev', 'eth0', 'mtu', '1450']);
  await ensureAddress(sb, 'eth0', `${sandboxAddr}/24`);
  await setUp(sb, 'eth0');
  await setUp(sb, 'lo');
  return sb;
}

export async function runOverlayBenchmark(opts: { quick: boolean }): Promise<{ rows: Row[]; notes: string[] }> {
  const plan = PLANS[opts.quick ? 'quick' : 'full'];
  const lab = await Lab.create({ uplink: false });
  try {
    await ip(lab.host, ['link', 'add', 'name', 'ul0', 'type', 'bridge']);
    await ensureAddress(lab.host, 'ul0', '198.18.0.1/24');
    await setUp(lab.host, 'ul0');
    const hosts: BenchHost[] = [];
    for (const [i, name] of ['h1', 'h2'].entries()) {
      const hns = await lab.addNamespace(name);
      const vtep = `198.18.0.${11 + i}`;
      await ensureVeth(hns, 'up0', lab.host, `ul-${name}`);
      await ip(lab.host, ['link', 'set', 'dev', `ul-${name}`, 'master', 'ul0', 'up']);
      await ensureAddress(hns, 'up0', `${vtep}/24`);
      await setUp(hns, 'up0');
      await ip(hns, ['route', 'add', 'default', 'via', '198.18.0.1']);
      await writeSysctl({ netnsPath: hns.path }, 'net.ipv4.ip_forward', '1');
      hosts.push(new BenchHost(lab, name, hns, vtep));
    }
    const [h1, h2] = hosts;
    await Promise.all(hosts.map((h) => h.start()));
    for (const h of hosts) await h.cli('network', 'create', '-d', 'overlay', '--subnet', '10.95.0.0/24', '-o', `${OVERLAY_OPTION}=${VNI}`, 'ov');
    const server = await h2.sandbox('srv', '10.95.0.21');
    const remoteClient = await h1.sandbox('cli1', '10.95.0.11');
    const localClient = await h2.sandbox('cli2', '10.95.0.22');
    for (const [h, rec] of [[h1, server.record], [h2, remoteClient.record]] as const) await h.call('remote-add', rec);
    const dkClient = await dockerWay(lab, h1, h2, '10.96.0.11');
    const dkServer = await dockerWay(lab, h2, h1, '10.96.0.21');
    for (const ns of [server.ns, dkServer]) {
      lab.spawn(ns, HTTPD, [String(SERVER_PORTS.http)]);
      lab.spawn(ns, 'iperf3', ['-s', '-p', String(SERVER_PORTS.iperf)]);
      await waitListening(lab, ns, [SERVER_PORTS.http, SERVER_PORTS.iperf]);
    }
    for (const ns of [remoteClient.ns, localClient.ns, dkClient]) await tuneClient(ns);
    const targets: Target[] = [
      { setup: 'overlay (bpfnet, 2 hosts)', client: remoteClient.ns, server: '10.95.0.21' },
      { setup: 'same host (bpfnet overlay net)', client: localClient.ns, server: '10.95.0.21' },
      { setup: "Docker's way (kernel vxlan + bridge, 2 hosts)", client: dkClient, server: '10.96.0.21' },
    ];
    const rows: Row[] = targets.map((t) => ({ setup: t.setup, iperf1: [], iperf2: [], keepAlive: [], newConn: [] }));
    for (let round = 0; round < plan.rounds; round++) {
      // Rotated order: no setup always runs first (or last) on a shared machine.
      for (let k = 0; k < targets.length; k++) {
        const i = (k + round) % targets.length;
        const t = targets[i];
        rows[i].iperf1.push(await iperf(lab, t, 1, plan.seconds));
        rows[i].iperf2.push(await iperf(lab, t, 2, plan.seconds));
        rows[i].keepAlive.push(await wrk(lab, t, plan.seconds));
        rows[i].newConn.push(await connrate(lab, t, plan.seconds));
      }
    }
    const notes = [
      `${plan.rounds} round(s) of ${plan.seconds} s per workload, on a shared 2-vCPU machine: noisy, compare within one run only.`,
      "Docker's way here: the bridge and the kernel VXLAN device sit in each host's namespace (Docker puts them in a per-network namespace), one static flood entry per remote host, no iptables rules loaded (br_netfilter passes bridged frames through netfilter anyway).",
    ];
    return { rows, notes };
  } finally {
    await lab.destroy();
  }
}

export function renderOverlayTable(r: { rows: Row[]; notes: string[] }): string {
  const base = r.rows[0];
  const ratio = (a: number[], b: number[]) => (median(a) / median(b)).toFixed(2);
  const lines = [
    '| setup | TCP 1 stream Gb/s | TCP 2 streams Gb/s | HTTP keep-alive req/s | new conn/s |',
    '|---|---|---|---|---|',
    ...r.rows.map((x) => `| ${x.setup} | ${median(x.iperf1).toFixed(2)} | ${median(x.iperf2).toFixed(2)} | ${median(x.keepAlive).toFixed(0)} | ${median(x.newConn).toFixed(0)} |`),
    '',
    `overlay / same host: throughput ${ratio(base.iperf1, r.rows[1].iperf1)}x (1 stream), ${ratio(base.iperf2, r.rows[1].iperf2)}x (2 streams)`,
    `overlay / Docker's way: keep-alive ${ratio(base.keepAlive, r.rows[2].keepAlive)}x, new connections ${ratio(base.newConn, r.rows[2].newConn)}x, throughput ${ratio(base.iperf1, r.rows[2].iperf1)}x`,
    '',
    ...r.notes.map((n) => `- ${n}`),
  ];
  return lines.join('\n');
}

if (process.argv[1] && /overlay\.(js|ts)$/.test(process.argv[1])) {
  const r = await runOverlayBenchmark({ quick: process.argv.includes('--quick') });
  console.log(renderOverlayTable(r));
}
