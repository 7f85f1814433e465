/**
 * node dist/bench/macvlan.js [--reps N] [--only iperf,wrk,conn] [--rows 1,2,3]
 *
 * macvlan against a bridge network, and eBPF-tagged VLANs against untagged macvlan, in one lab
 * and one daemon (eBPF datapath): a simulated LAN (a switch namespace) with a server host `cl`
 * (10.77.0.100) and a VLAN-50 server host `v50` (10.50.0.1, whose trunk port pops and pushes
 * tags with the same programs as the daemon's side). Sandboxes: `sm` on an untagged macvlan
 * network of the uplink, `s50` on a macvlan network of up0.50, `sb` on a bridge network
 * publishing 8080->80. Rows (each one client, the same parameters on both sides, interleaved
 * A/B then B/A within every repetition, medians):
 *   sandbox -> LAN server:  macvlan (direct) vs bridge (BPF masquerade through the uplink);
 *   LAN client -> sandbox:  macvlan (direct) vs bridge (published port, BPF DNAT);
 *   sandbox -> LAN server:  VLAN 50 (tagged by eBPF at both ends) vs untagged macvlan.
 * The machine is shared: read the ratios, not the absolute numbers.
 *
 * node dist/bench/macvlan.js --prog-cost: what the guard costs per packet a sandbox sends
 * (BPF_PROG_TEST_RUN, 1e6 repetitions, the least of 9 runs: the run least disturbed by the other
 * load), beside the hairpin check every frame leaving a lower device pays.
 */
import { Lab } from '../src/lab/lab.js';
import { LabDaemon } from '../src/lab/daemon.js';
import { ip, netns, type Netns } from '../src/system/ip.js';
import { VlanPrograms } from '../src/drivers/macvlan/vlan-programs.js';
import { MVG_HAS_IPV4, MVG_HAS_IPV6, mvgMac, mvgOwner } from '../src/drivers/macvlan/vlan-abi.js';
import { BpfObject } from '../src/datapath/libbpf/bpf.js';
import { bpfObject } from '../src/paths.js';
import { callApi, mustCall } from './setups/engine-api.js';
import { serverCommand, spawnServers, tuneClient, waitListening, SERVER_PORTS } from './setups/servers.js';
import { median } from './stats.js';
import { iperfWorkload } from './workloads/iperf.js';
import { newConnectionsWorkload } from './workloads/http.js';
import { wrkWorkload } from './workloads/wrk.js';
import type { Target } from './setups/setup.js';
import type { Durations, Workload } from './workloads/workload.js';

const D: Durations = { iperf: 1, iperfOmit: 0, http: 1, httpWarmup: 0.3, conn: 1, connWarmup: 0.3 };
const reps = Number(process.argv[process.argv.indexOf('--reps') + 1]) || 3;

const ALL_WORKLOADS: Array<{ id: string; name: string; make: () => Workload }> = [
  { id: 'iperf', name: 'TCP 1 stream (Gbit/s)', make: () => iperfWorkload('egress', 1, 'iperf', true) },
  { id: 'wrk', name: 'HTTP keep-alive (req/s, wrk 50 conns)', make: () => wrkWorkload('egress', false, 'wrk', true) },
  { id: 'conn', name: 'new TCP connections (conn/s, connrate 32)', make: () => newConnectionsWorkload('egress', 'connrate', true) },
];
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1].split(',') : undefined;
const WORKLOADS = ALL_WORKLOADS.filter((w) => !only || only.includes(w.id));
const rowsWanted = process.argv.includes('--rows') ? process.argv[process.argv.indexOf('--rows') + 1].split(',').map(Number) : undefined;

async function sandboxNs(socket: string, name: string): Promise<Netns> {
  const key: string = (await mustCall(socket, 'GET', `/containers/${name}/json`)).NetworkSettings.SandboxKey;
  return netns(key.slice('/run/netns/'.length));
}

/** The eBPF datapath's drop counters by reason, from the daemon's metrics. */
async function printDrops(socket: string): Promise<void> {
  const text = String((await callApi(socket, 'GET', '/metrics')).body);
  console.log(text.split('\n').filter((l) => l.startsWith('bpfnet_datapath_drops_total')).join('\n'));
}

async function main(): Promise<void> {
  const lab = await Lab.create({ uplink: false });
  const far = new VlanPrograms(null);
  try {
    const lan = await lab.addLan({ hostAddress: '10.77.0.2/24', gateway: '10.77.0.1' });
    const cl = await lab.lanHost(lan, 'cl', ['10.77.0.100/24', '10.77.0.101/24']);
    const v50 = await lab.lanHost(lan, 'v50');
    await ip(v50, ['link', 'add', 'name', 'eth0.50', 'type', 'veth', 'peer', 'name', 't50']);
    for (const dev of ['eth0.50', 't50']) await ip(v50, ['link', 'set', 'dev', dev, 'up']);
    await ip(v50, ['addr', 'add', '10.50.0.1/24', 'dev', 'eth0.50']);
    far.ensureTrunkPort({ netns: v50.path, trunk: 'eth0', standIn: 'eth0.50', vid: 50 });
    spawnServers(lab, cl);
    spawnServers(lab, v50);
    await tuneClient(cl);

    // One daemon serves every row, so the bridge sandbox's connection runs (masquerade, then the
    // published port: 3 reps each, up to ~25k flows a run) all charge its conntrack quota (a
    // quarter of ct4, 32768 flows by default), and a closed flow keeps its charge until it expires
    // (tcp-closed 10 s) and the next GC (10 s): the 4th-6th runs were refused (drops
    // conntrack-quota, then "no connection completed"). A table of 512k entries gives the one
    // sandbox a 128k quota, more than the runs hold at once; the quota itself is measured elsewhere.
    const d = await LabDaemon.start(lab, { datapath: 'ebpf', extraArgs: ['--ebpf-ct-max', '524288'] });
    const s = d.socket;
    await mustCall(s, 'POST', '/networks/create', { Name: 'mv', Driver: 'macvlan', IPAM: { Config: [{ Subnet: '10.77.0.0/24', Gateway: '10.77.0.1', IPRange: '10.77.0.128/25' }] }, Options: { parent: 'up0' } });
    await mustCall(s, 'POST', '/networks/create', { Name: 'mv50', Driver: 'macvlan', IPAM: { Config: [{ Subnet: '10.50.0.0/24', Gateway: '10.50.0.1' }] }, Options: { parent: 'up0.50' } });
    await mustCall(s, 'POST', '/networks/create', { Name: 'br', Driver: 'bridge' });
    for (const [name, network, publish] of [['sm', 'mv', []], ['s50', 'mv50', []], ['sb', 'br', ['8080:80', '5201:5201']]] as const)
      await mustCall(s, 'POST', '/sandboxes/create', { Name: name, Network: network, Cmd: serverCommand(), Start: true, ...(publish.length ? { Publish: publish } : {}) });
    const sm = await sandboxNs(s, 'sm');
    const s50 = await sandboxNs(s, 's50');
    const sb = await sandboxNs(s, 'sb');
    for (const ns of [sm, s50, sb]) {
      await tuneClient(ns);
      await waitListening(lab, ns, [SERVER_PORTS.http, SERVER_PORTS.iperf]);
    }
    await waitListening(lab, cl, [SERVER_PORTS.http, SERVER_PORTS.iperf]);
    await waitListening(lab, v50, [SERVER_PORTS.http, SERVER_PORTS.iperf]);
    const smIp: string = (await mustCall(s, 'GET', '/containers/sm/json')).NetworkSettings.Networks.mv.IPAddress;
    const t = (client: Netns, address: string, httpPort = 80, iperfPort = 5201): Target => ({ client, address, httpPort, iperfPort });

    // Each comparison gets its own client source address where TIME_WAIT could collide (toolchain.md).
    const rows: Array<{ row: string; a: [string, Target]; b: [string, Target] }> = [
      { row: 'sandbox -> LAN server', a: ['macvlan', t(sm, '10.77.0.100')], b: ['bridge (masquerade)', t(sb, '10.77.0.101')] },
      { row: 'LAN client -> sandbox', a: ['macvlan', t(cl, smIp)], b: ['bridge (published port)', t(cl, '10.77.0.2', 8080, 5201)] },
      { row: 'sandbox -> LAN server', a: ['VLAN 50, eBPF-tagged', t(s50, '10.50.0.1')], b: ['untagged macvlan', t(sm, '10.77.0.100')] },
    ];
    console.log(`macvlan bench: ${reps} repetitions, interleaved; shared 2-vCPU machine (load ${(await import('node:os')).loadavg()[0].toFixed(1)}): ratios, not absolutes\n`);
    console.log('| path | workload | A | A median | B | B median | A/B |');
    console.log('|---|---|---|---|---|---|---|');
    for (const [i, r] of rows.entries()) {
      if (rowsWanted && !rowsWanted.includes(i + 1)) continue;
      for (const w of WORKLOADS) {
        const wl = w.make();
        const key = wl.metrics[0].key;
        const a: number[] = [];
        const b: number[] = [];
        for (let i = 0; i < reps; i++) {
          const order = i % 2 === 0 ? ['a', 'b'] : ['b', 'a'];
          for (const which of order) {
            const target = which === 'a' ? r.a[1] : r.b[1];
            const sample = await wl.run(lab, target, D).catch(async (err: unknown) => {
              await printDrops(s); // what the datapath refused, to tell a datapath limit from a broken path
              throw err;
            });
            (which === 'a' ? a : b).push(sample.metrics[key]);
          }
        }
        const ma = median(a);
        const mb = median(b);
        console.log(`| ${r.row} | ${w.name} | ${r.a[0]} | ${ma.toFixed(2)} | ${r.b[0]} | ${mb.toFixed(2)} | ${(ma / mb).toFixed(2)}x |`);
      }
    }
    if (process.env.BENCH_DROPS) await printDrops(s);
    await mustCall(s, 'DELETE', '/sandboxes/sm?force=1');
    await mustCall(s, 'DELETE', '/sandboxes/s50?force=1');
    await mustCall(s, 'DELETE', '/sandboxes/sb?force=1');
  } finally {
    far.close();
    await lab.destroy();
  }
}

/** An Ethernet/IPv4/TCP frame from 02:42:0a:4d:00:82 (10.77.0.130) to 10.77.0.100:80. */
function frame(): Buffer {
  const b = Buffer.alloc(74);
  Buffer.from([0x02, 0x42, 0x0a, 0x4d, 0x00, 0x64, 0x02, 0x42, 0x0a, 0x4d, 0x00, 0x82]).copy(b, 0);
  b.writeUInt16BE(0x0800, 12);
  b[14] = 0x45;
  b.writeUInt16BE(60, 16);
  b[22] = 64;
  b[23] = 6;
  Buffer.from([10, 77, 0, 130, 10, 77, 0, 100]).copy(b, 26);
  b.writeUInt16BE(40000, 34);
  b.writeUInt16BE(80, 36);
  b[46] = 0x50;
  b[47] = 0x02;
  return b;
}

/** The same child (fd77::2) sending IPv6: a TCP SYN to fd77::100, or a neighbour advertisement for target. */
function frame6(kind: 'tcp' | 'na', target = 'fd77::2'): Buffer {
  const addr = (last: number) => Buffer.from([0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last]);
  const l4 = kind === 'tcp' ? Buffer.alloc(20) : Buffer.alloc(32);
  if (kind === 'tcp') {
    l4.writeUInt16BE(40000, 0);
    l4.writeUInt16BE(80, 2);
    l4[12] = 0x50;
    l4[13] = 0x02;
  } else {
    l4[0] = 136;
    l4[4] = 0x20;
    addr(Number.parseInt(target.split('::')[1], 16)).copy(l4, 8);
    Buffer.from([2, 1, 0x02, 0x42, 0x0a, 0x4d, 0x00, 0x82]).copy(l4, 24);
  }
  const b = Buffer.alloc(14 + 40 + l4.length);
  Buffer.from([0x02, 0x42, 0x0a, 0x4d, 0x00, 0x64, 0x02, 0x42, 0x0a, 0x4d, 0x00, 0x82]).copy(b, 0);
  b.writeUInt16BE(0x86dd, 12);
  b[14] = 0x60;
  b.writeUInt16BE(l4.length, 18);
  b[20] = kind === 'tcp' ? 6 : 58;
  b[21] = 64;
  addr(2).copy(b, 22);
  addr(0x100).copy(b, 38);
  l4.copy(b, 54);
  return b;
}

function progCost(): void {
  const obj = BpfObject.load(bpfObject('vlan'));
  try {
    const own6 = Buffer.from([0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    obj.map('mvg_owners', mvgMac, mvgOwner).set({ addr: '02:42:0a:4d:00:82' }, { flags: MVG_HAS_IPV4 | MVG_HAS_IPV6, ipv4: '10.77.0.130', ipv6: own6 });
    const data = frame();
    console.log(`| program | verdict | ns per packet (least of 9 x 1e6) |\n|---|---|---|`);
    const spoofed = Buffer.from(data);
    spoofed[29] = 150; // 10.77.0.150: not its own
    const cases: Array<[string, string, Buffer]> = [
      ['macvlan_guard', 'own address', data],
      ['macvlan_guard', 'spoofed address', spoofed],
      ['macvlan_guard', 'own IPv6 address', frame6('tcp')],
      ['macvlan_guard', 'NA for its own IPv6 address', frame6('na')],
      ['macvlan_guard', 'NA for another\'s IPv6 address', frame6('na', 'fd77::3')],
      ['macvlan_hairpin', 'not the resolver', data],
    ];
    for (const [name, what, packet] of cases) {
      const prog = obj.program(name);
      const runs = Array.from({ length: 9 }, () => prog.testRun(packet, { repeat: 1_000_000 }));
      const verdict = runs[0].retval | 0;
      console.log(`| ${name}, ${what} | ${verdict === -1 ? 'pass (-1)' : verdict === 2 ? 'drop (2)' : verdict} | ${Math.min(...runs.map((r) => r.duration))} |`);
    }
  } finally {
    obj.close();
  }
}

if (process.argv.includes('--prog-cost')) {
  progCost();
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
