/**
 * node dist/bench/flowlog-cost.js [--reps N] [--base-objects DIR]
 *
 * What the opt-in flow log costs: the bench's keep-alive and new-connection workloads on the
 * ebpf setup's conntracked paths (published port: DNAT; egress: masquerade), each run with no
 * flow-log listener and with one `GET /events/flows` client reading everything, interleaved
 * (off/on, then on/off) within each repetition. Prints medians and the on/off ratio. The
 * machine is shared: read the ratios, not the absolute numbers. With --base-objects DIR (the
 * lxc/uplink/host objects built from a commit without the flow log), a second setup runs those
 * objects, interleaved too, for the cost of the flow log's hooks when nobody listens.
 */
import { request } from 'node:http';
import { join } from 'node:path';
import { BpfMap } from '../src/datapath/libbpf/bpf.js';
import { u32 } from '../src/datapath/libbpf/codec.js';
import { DP_F_FLOW_EVENTS, DatapathMaps, dpConfig } from '../src/datapath/abi.js';
import { withDatapathObjects } from './datapath-objects.js';
import { BpfnetSetup } from './setups/bpfnet.js';
import { median } from './stats.js';
import { newConnectionsWorkload } from './workloads/http.js';
import { wrkWorkload } from './workloads/wrk.js';
import type { Durations } from './workloads/workload.js';

const D: Durations = { iperf: 1, iperfOmit: 0, http: 1.5, httpWarmup: 0.3, conn: 1.5, connWarmup: 0.3 };

function flag(instance: string): boolean {
  const cfg = BpfMap.openPinned(join('/sys/fs/bpf', instance, DatapathMaps.config), u32, dpConfig);
  try {
    return (cfg.get(0)!.flags & DP_F_FLOW_EVENTS) !== 0;
  } finally {
    cfg.close();
  }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A flow-log client that reads and counts every record; resolves once the datapath flag is on. */
async function listen(socket: string, instance: string): Promise<{ records: () => number; close: () => Promise<void> }> {
  let records = 0;
  const req = request({ socketPath: socket, path: '/events/flows', headers: { Host: 'bpfnet' } });
  req.on('response', (res) => res.on('data', (b: Buffer) => (records += b.toString().split('\n').length - 1)));
  req.on('error', () => undefined);
  req.end();
  await until(() => flag(instance), 'the flow flag to turn on');
  return {
    records: () => records,
    close: async () => {
      req.destroy();
      await until(() => !flag(instance), 'the flow flag to turn off');
    },
  };
}

async function main(argv: string[]): Promise<void> {
  const repsAt = argv.indexOf('--reps');
  const reps = repsAt >= 0 ? Number(argv[repsAt + 1]) : 5;
  const workloads = [
    wrkWorkload('published', false, 'HTTP keep-alive, published port (wrk)', true),
    newConnectionsWorkload('published', 'new connections, published port', true),
    newConnectionsWorkload('egress', 'new connections, egress (masquerade)', true),
  ];
  const baseAt = argv.indexOf('--base-objects');
  const baseDir = baseAt >= 0 ? argv[baseAt + 1] : undefined;
  // The daemon loads its objects once at start: start the base setup with the base objects in
  // place, then put ours back for the other one.
  const base = baseDir ? await withDatapathObjects(baseDir, ['lxc', 'uplink', 'host'], () => BpfnetSetup.create('ebpf')) : undefined;
  const s = await BpfnetSetup.create('ebpf');
  const rows = new Map<string, { base: number[]; off: number[]; on: number[]; records: number[] }>();
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const w of workloads) {
        const row = rows.get(w.id) ?? { base: [], off: [], on: [], records: [] };
        rows.set(w.id, row);
        const modes = (['off', 'on', ...(base ? ['base'] : [])] as Array<'off' | 'on' | 'base'>);
        for (let k = 0; k < modes.length; k++) {
          const mode = modes[(k + rep) % modes.length];
          const setup = mode === 'base' ? base! : s;
          const listener = mode === 'on' ? await listen(s.daemon.socket, s.daemon.instance) : undefined;
          try {
            const r = await w.run(setup.lab, setup.targets[w.path]!, D);
            row[mode].push(r.metrics.rps);
          } finally {
            if (listener) {
              row.records.push(listener.records());
              await listener.close();
            }
          }
          process.stderr.write(`rep ${rep + 1}/${reps} ${w.id} ${mode}: ${row[mode].at(-1)?.toFixed(0)}\n`);
        }
      }
    }
  } finally {
    await s.destroy();
    await base?.destroy();
  }
  const lines = [
    `| workload |${base ? ' without flow-log code |' : ''} no listener | with listener |${base ? ' no listener / without code |' : ''} with / without listener | flow records read |`,
    `|---|${base ? '---:|' : ''}---:|---:|${base ? '---:|' : ''}---:|---:|`,
  ];
  for (const w of workloads) {
    const r = rows.get(w.id)!;
    const off = median(r.off);
    const on = median(r.on);
    const b = base ? median(r.base) : 0;
    lines.push(
      `| ${w.title} (${w.metrics[0].unit}) |${base ? ` ${b.toFixed(0)} |` : ''} ${off.toFixed(0)} | ${on.toFixed(0)} |${base ? ` ${(off / b).toFixed(2)}x |` : ''} ${(on / off).toFixed(2)}x | ${median(r.records)} |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n\nmedians of ${reps} interleaved repetitions, ${D.http} s per run; shared 2-vCPU machine: noisy\n`);
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
