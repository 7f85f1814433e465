/**
 * node dist/bench/flowlog-cost.js [--reps N]
 *
 * What the opt-in flow log costs: the bench's keep-alive and new-connection workloads on the
 * ebpf setup's conntracked paths (published port: DNAT; egress: masquerade), each run with no
 * flow-log listener and with one `GET /events/flows` client reading everything, interleaved
 * (off/on, then on/off) within each repetition. Prints medians and the on/off ratio. The
 * machine is shared: read the ratios, not the absolute numbers.
 */
import { request } from 'node:http';
import { join } from 'node:path';
import { BpfMap } from '../src/datapath/libbpf/bpf.js';
import { u32 } from '../src/datapath/libbpf/codec.js';
import { DP_F_FLOW_EVENTS, DatapathMaps, dpConfig } from '../src/datapath/abi.js';
import { BpfnetSetup } from './setups/bpfnet.js';
import { keepAliveWorkload, newConnectionsWorkload } from './workloads/http.js';
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

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(argv: string[]): Promise<void> {
  const repsAt = argv.indexOf('--reps');
  const reps = repsAt >= 0 ? Number(argv[repsAt + 1]) : 5;
  const workloads = [
    keepAliveWorkload('published', 'HTTP keep-alive, published port'),
    newConnectionsWorkload('published', 'new connections, published port', true),
    newConnectionsWorkload('egress', 'new connections, egress (masquerade)', true),
  ];
  const s = await BpfnetSetup.create('ebpf');
  const rows = new Map<string, { off: number[]; on: number[]; records: number[] }>();
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const w of workloads) {
        const target = s.targets[w.path]!;
        const row = rows.get(w.id) ?? { off: [], on: [], records: [] };
        rows.set(w.id, row);
        for (const mode of rep % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
          const listener = mode === 'on' ? await listen(s.daemon.socket, s.daemon.instance) : undefined;
          try {
            const r = await w.run(s.lab, target, D);
            row[mode].push(r.metrics.rps);
          } finally {
            if (listener) {
              row.records.push(listener.records());
              await listener.close();
            }
          }
          process.stderr.write(`rep ${rep + 1}/${reps} ${w.id} listener ${mode}: ${row[mode].at(-1)?.toFixed(0)}\n`);
        }
      }
    }
  } finally {
    await s.destroy();
  }
  const lines = [
    `| workload | no listener | with listener | with/without | flow records read |`,
    `|---|---:|---:|---:|---:|`,
  ];
  for (const w of workloads) {
    const r = rows.get(w.id)!;
    const off = median(r.off);
    const on = median(r.on);
    lines.push(`| ${w.title} (${w.metrics[0].unit}) | ${off.toFixed(0)} | ${on.toFixed(0)} | ${(on / off).toFixed(2)}x | ${median(r.records)} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n\nmedians of ${reps} interleaved repetitions, ${D.http} s per run; shared 2-vCPU machine: noisy\n`);
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
