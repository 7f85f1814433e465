/**
 * The embedded DNS benchmark: bpfnet's resolver against dnsmasq (Debian's, the known peer)
 * serving the same names to the same client on the same machine, side by side.
 *
 * One lab: a bpfnet daemon (ebpf datapath) with a user-defined network and N sandboxes on it;
 * their names are what bpfnet answers on the gateway's port 53. dnsmasq runs in the same host
 * namespace on the same gateway address, port 5353, answering the same names with the same
 * addresses from an addn-hosts file (no upstream: --no-resolv). The load generator is dnsperf
 * in a client sandbox on that network, so both servers see the same path, the same client and
 * the same queries (A for every name, in turn). The network is dual-stack: each server is asked
 * over IPv4 (its IPv4 gateway) and over IPv6 (its IPv6 gateway), the same A queries, as four
 * setups. Per repetition, each setup in turn:
 *   - queries/s: dnsperf at saturation (100 queries outstanding) for a few seconds;
 *   - latency: dnsperf at a fixed rate well below both capacities, each query's latency
 *     recorded (-v), p50 and p99 — the unloaded latency a sandbox sees.
 * Exported for `npm run bench` (bench/main.ts); `node dist/bench/dns.js [--quick]` runs it alone.
 */
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DnsMaps, DnsStat } from '../src/datapath/abi.js';
import { PerCpuMap } from '../src/datapath/libbpf/bpf.js';
import { u32, u64 } from '../src/datapath/libbpf/codec.js';
import { LabDaemon } from '../src/lab/daemon.js';
import { Lab, UPLINK } from '../src/lab/lab.js';
import { runRaw } from '../src/system/exec.js';
import { netns, type Netns } from '../src/system/ip.js';

export interface DnsBenchResult {
  setups: Array<{ name: string; qps: number[]; p50Ms: number[]; p99Ms: number[] }>;
  notes: string[];
}

interface Plan {
  names: number;
  reps: number;
  saturateSeconds: number;
  latencySeconds: number;
  latencyRate: number;
}

const PLANS: Record<'quick' | 'full', Plan> = {
  quick: { names: 20, reps: 3, saturateSeconds: 2, latencySeconds: 1, latencyRate: 1000 },
  full: { names: 50, reps: 5, saturateSeconds: 3, latencySeconds: 2, latencyRate: 1000 },
};

const DNSMASQ_PORT = 5353;

function api(socket: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      { socketPath: socket, method, path, headers: { Host: 'bpfnet', ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {}) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

async function createSandbox(d: LabDaemon, name: string, network: string): Promise<{ ns: Netns; ipv4: string; gateway6: string }> {
  const created = await api(d.socket, 'POST', '/sandboxes/create', { Name: name, Network: network, Start: false });
  if (created.status !== 201) throw new Error(`creating sandbox ${name}: ${JSON.stringify(created.json)}`);
  const inspect = await api(d.socket, 'GET', `/sandboxes/${name}`);
  const key: string = inspect.json.NetworkSettings.SandboxKey;
  const ep = inspect.json.NetworkSettings.Networks[network];
  return { ns: netns(key.slice('/run/netns/'.length)), ipv4: ep.IPAddress, gateway6: ep.IPv6Gateway };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

interface PerfRun {
  qps: number;
  /** Answers with rcode NOERROR. */
  noerror: number;
  lost: number;
  sent: number;
  latenciesMs: number[];
}

/** Runs dnsperf in the client's namespace and reads its summary (and, with -v, every query's latency). */
async function dnsperf(lab: Lab, client: Netns, server: string, port: number, queries: string, seconds: number, rate?: number): Promise<PerfRun> {
  const args = ['-s', server, '-p', String(port), '-d', queries, '-l', String(seconds), '-c', '1', '-T', '1', '-q', '100', '-t', '2'];
  if (rate !== undefined) args.push('-Q', String(rate), '-v');
  const r = await lab.execRaw(client, 'dnsperf', args, { timeoutMs: (seconds + 15) * 1000 });
  if (r.code !== 0) throw new Error(`dnsperf against ${server}:${port} failed (${r.code}): ${r.stderr || r.stdout}`);
  const num = (re: RegExp) => Number(re.exec(r.stdout)?.[1] ?? NaN);
  const latenciesMs: number[] = [];
  if (rate !== undefined)
    for (const line of r.stdout.split('\n')) {
      const m = /^> NOERROR .* (\d+\.\d+)$/.exec(line);
      if (m) latenciesMs.push(Number(m[1]) * 1000);
    }
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    sent: num(/Queries sent:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    noerror: num(/NOERROR (\d+)/),
    latenciesMs: latenciesMs.sort((a, b) => a - b),
  };
}

export async function runDnsBenchmark(opts: { quick: boolean }): Promise<DnsBenchResult> {
  const plan = PLANS[opts.quick ? 'quick' : 'full'];
  const notes: string[] = [];
  const lab = await Lab.create();
  try {
    // --dns at the lab's external side: nothing in this benchmark is forwarded, and nothing could leave the lab.
    const d = await LabDaemon.start(lab, { datapath: 'ebpf', extraArgs: ['--dns', UPLINK.externalAddress] });
    await d.bpfnet('network', 'create', '--ipv6', '--subnet', 'fd00:db::/64', 'dnsbench');
    const gateway: string = JSON.parse(await d.bpfnet('network', 'inspect', 'dnsbench'))[0].IPAM.Config[0].Gateway;
    const names: Array<{ name: string; ipv4: string }> = [];
    for (let i = 0; i < plan.names; i++) {
      const name = `svc${String(i).padStart(2, '0')}`;
      names.push({ name, ipv4: (await createSandbox(d, name, 'dnsbench')).ipv4 });
    }
    const client = await createSandbox(d, 'dnsclient', 'dnsbench');

    const dir = lab.tmpDir();
    const hostsFile = join(dir, 'dnsbench.hosts');
    const queries = join(dir, 'dnsbench.queries');
    writeFileSync(hostsFile, names.map((n) => `${n.ipv4} ${n.name}\n`).join(''));
    writeFileSync(queries, names.map((n) => `${n.name} A\n`).join(''));
    const dnsmasq = lab.spawn(lab.host, 'dnsmasq', [
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--no-resolv',
      '--no-hosts',
      `--addn-hosts=${hostsFile}`,
      `--listen-address=${gateway}`,
      `--listen-address=${client.gateway6}`,
      '--bind-interfaces',
      `--port=${DNSMASQ_PORT}`,
      '--local-ttl=5',
      '--cache-size=1000',
      '--user=root',
      '--pid-file=',
    ]);
    let dnsmasqLog = '';
    dnsmasq.stderr?.on('data', (b: Buffer) => (dnsmasqLog += b.toString()));
    const version = (await runRaw('dnsmasq', ['--version'])).stdout.split('\n')[0];

    // Both must answer the same names the same way before anything is measured.
    const gateway6 = client.gateway6;
    const servers = [
      { name: 'bpfnet', address: gateway, port: 53 },
      { name: 'dnsmasq', address: gateway, port: DNSMASQ_PORT },
      { name: 'bpfnet (IPv6)', address: gateway6, port: 53 },
      { name: 'dnsmasq (IPv6)', address: gateway6, port: DNSMASQ_PORT },
    ];
    for (const s of servers.filter((x) => x.address === gateway)) {
      let ok = false;
      for (let attempt = 0; attempt < 50 && !ok; attempt++) {
        const r = await lab.execRaw(client.ns, 'busybox', ['nslookup', '-type=a', `${names[0].name}`, `${gateway}:${s.port}`], { timeoutMs: 5000 });
        ok = r.code === 0 && r.stdout.includes(names[0].ipv4);
        if (!ok) await new Promise((res) => setTimeout(res, 100));
      }
      if (!ok) throw new Error(`${s.name} does not answer ${names[0].name} on ${gateway}:${s.port}${s.name === 'dnsmasq' ? `: ${dnsmasqLog}` : ''}`);
    }
    // Over IPv6 the same servers must answer every query of a short run (busybox nslookup takes no IPv6 server with a port).
    for (const s of servers.filter((x) => x.address === gateway6)) {
      const r = await dnsperf(lab, client.ns, s.address, s.port, queries, 1);
      if (!(r.noerror > 0 && r.lost === 0)) throw new Error(`${s.name} does not answer on [${s.address}]:${s.port} (${r.noerror} answered, ${r.lost} lost)${s.name.startsWith('dnsmasq') ? `: ${dnsmasqLog}` : ''}`);
    }

    const results = servers.map((s) => ({ name: s.name, qps: [] as number[], p50Ms: [] as number[], p99Ms: [] as number[] }));
    // Warm both up (JIT, caches) with one short unmeasured run each.
    for (const s of servers) await dnsperf(lab, client.ns, s.address, s.port, queries, 1);
    for (let rep = 0; rep < plan.reps; rep++) {
      // Interleaved, and rotating which goes first, so drift on a shared machine hits all alike.
      const order = servers.map((_, k) => (k + rep) % servers.length);
      for (const i of order) {
        const s = servers[i];
        const load = await dnsperf(lab, client.ns, s.address, s.port, queries, plan.saturateSeconds);
        const lat = await dnsperf(lab, client.ns, s.address, s.port, queries, plan.latencySeconds, plan.latencyRate);
        results[i].qps.push(Math.round(load.qps));
        results[i].p50Ms.push(Number(percentile(lat.latenciesMs, 50).toFixed(3)));
        results[i].p99Ms.push(Number(percentile(lat.latenciesMs, 99).toFixed(3)));
        if (load.sent > 0 && load.lost / load.sent > 0.01) notes.push(`${s.name} rep ${rep + 1}: ${load.lost} of ${load.sent} queries lost at saturation`);
      }
    }
    // Where bpfnet's answers came from: the kernel (bpf/dns.bpf.c) or the daemon's resolver.
    const stats = PerCpuMap.openPinned(join('/sys/fs/bpf', d.instance, DnsMaps.stats), u32, u64);
    const total = (slot: number) => (stats.get(slot) ?? []).reduce((a, b) => a + b, 0);
    const answered = total(DnsStat.ANSWERED);
    const passed = total(DnsStat.PASSED);
    const answered6 = total(DnsStat.ANSWERED6);
    stats.close();
    notes.unshift(
      `${plan.names} names (A queries in turn) on one dual-stack user-defined network, from dnsperf in a sandbox on it (1 socket, 100 outstanding), over IPv4 and over IPv6; ` +
        `queries/s at saturation over ${plan.saturateSeconds} s, p50/p99 at a fixed ${plan.latencyRate} queries/s over ${plan.latencySeconds} s; ` +
        `${plan.reps} interleaved repetitions. bpfnet: embedded DNS on ${gateway}:53 and [${gateway6}]:53 (ebpf datapath): ${answered} queries answered in the kernel (bpf/dns.bpf.c), ${answered6} of them over IPv6, ${passed} handed to the daemon's resolver; ` +
        `dnsmasq: ${version.replace(/\s+Copyright.*$/, '')}, addn-hosts, same address, port ${DNSMASQ_PORT}.`,
    );
    return { setups: results, notes };
  } finally {
    await lab.destroy();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the DNS benchmark builds network namespaces: run it as root');
  const quick = process.argv.includes('--quick');
  const r = await runDnsBenchmark({ quick });
  const rows = [['setup', 'queries/s (median)', 'p50 ms', 'p99 ms', 'queries/s per rep']];
  for (const s of r.setups) rows.push([s.name, String(median(s.qps)), median(s.p50Ms).toFixed(3), median(s.p99Ms).toFixed(3), s.qps.join(' ')]);
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  for (const row of rows) process.stdout.write(`${row.map((cell, c) => cell.padEnd(widths[c])).join('  ')}\n`);
  for (const [a, b] of [r.setups.slice(0, 2), r.setups.slice(2, 4)])
    if (a && b) process.stdout.write(`\n${a.name} / ${b.name} queries/s: ${(median(a.qps) / median(b.qps)).toFixed(2)}`);
  process.stdout.write('\n');
  for (const n of r.notes) process.stdout.write(`- ${n}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`dns benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
