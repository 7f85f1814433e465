/**
 * The CLI benchmark: how long a user waits for `bpfnet network ls` and `bpfnet ps` (the whole
 * process, start to exit), next to Node starting and doing nothing (`node -e ''`, the floor of
 * any Node CLI), the same commands through the Node CLI the thin client falls back to
 * (BPFNET_NODE_CLI=1, what bin/bpfnet ran before the thin client), and `docker network ls`
 * against the same daemon (the docker CLI, a Go binary, speaking the Engine API to bpfnet's socket).
 *
 * One lab: a bpfnet daemon (ebpf datapath), one user-defined network and a few sandboxes, so
 * the lists are not empty. Every command runs as a user would run it (bin/bpfnet, its #!/bin/sh
 * line and then the thin client), in rounds that run each command once in a rotating order, so drift
 * on a shared machine hits all alike. Wall time of each run from spawn to exit; a run that
 * fails or prints nothing is an error, and the command's samples are not reported.
 * Exported for `npm run bench` (bench/main.ts); `node dist/bench/cli.js [--quick]` runs it alone.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LabDaemon } from '../src/lab/daemon.js';
import { Lab } from '../src/lab/lab.js';
import { projectRoot } from '../src/paths.js';
import { runRaw } from '../src/system/exec.js';

export interface CliBenchResult {
  commands: Array<{ name: string; samplesMs: number[]; p50Ms: number; p99Ms: number; errors: string[] }>;
  notes: string[];
}

const PLANS = { quick: { rounds: 20, sandboxes: 5 }, full: { rounds: 60, sandboxes: 10 } } as const;

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

interface Command {
  name: string;
  file: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Output is required (a list always has its header line). */
  prints: boolean;
}

export async function runCliBenchmark(opts: { quick: boolean }): Promise<CliBenchResult> {
  const plan = PLANS[opts.quick ? 'quick' : 'full'];
  const lab = await Lab.create();
  try {
    const d = await LabDaemon.start(lab, { datapath: 'ebpf', extraArgs: [] });
    await d.bpfnet('network', 'create', 'clibench');
    for (let i = 0; i < plan.sandboxes; i++) await d.bpfnet('run', '-d', '--name', `cli${i}`, '--network', 'clibench');
    const host = `unix://${d.socket}`;
    const bin = join(projectRoot, 'bin', 'bpfnet');
    const nodeCli = { ...process.env, BPFNET_NODE_CLI: '1' };
    const commands: Command[] = [
      { name: "node -e ''", file: process.execPath, args: ['-e', ''], prints: false },
      { name: 'bpfnet network ls', file: bin, args: ['-H', host, 'network', 'ls'], prints: true },
      { name: 'bpfnet ps', file: bin, args: ['-H', host, 'ps'], prints: true },
      { name: 'bpfnet network ls (Node CLI, BPFNET_NODE_CLI=1)', file: bin, args: ['-H', host, 'network', 'ls'], env: nodeCli, prints: true },
      { name: 'bpfnet ps (Node CLI, BPFNET_NODE_CLI=1)', file: bin, args: ['-H', host, 'ps'], env: nodeCli, prints: true },
    ];
    const notes: string[] = [];
    const docker = await runRaw('docker', ['--version']).catch(() => undefined);
    if (docker && docker.code === 0) {
      commands.push({ name: 'docker network ls (against bpfnet)', file: 'docker', args: ['network', 'ls'], env: { ...process.env, DOCKER_HOST: host }, prints: true });
    } else notes.push('docker network ls not measured: no docker CLI on this machine.');

    const samples = commands.map(() => [] as number[]);
    const errors = commands.map(() => [] as string[]);
    // One unmeasured run each: the page cache and the daemon's first request are not what users wait for every time.
    for (const c of commands) spawnSync(c.file, c.args, { env: c.env ?? process.env, encoding: 'utf8' });
    for (let round = 0; round < plan.rounds; round++) {
      for (let k = 0; k < commands.length; k++) {
        const i = (k + round) % commands.length;
        const c = commands[i];
        const t0 = process.hrtime.bigint();
        const r = spawnSync(c.file, c.args, { env: c.env ?? process.env, encoding: 'utf8', timeout: 30_000 });
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (r.status !== 0 || (c.prints && !r.stdout.trim())) errors[i].push(`exit ${r.status ?? r.signal}: ${(r.stderr || r.error?.message || '').trim().slice(0, 200)}`);
        else samples[i].push(Number(ms.toFixed(2)));
      }
    }
    const load = (await runRaw('cat', ['/proc/loadavg'])).stdout.trim().split(/\s+/)[0];
    notes.unshift(
      `Wall time from spawn to exit, ${plan.rounds} rounds of every command in rotating order after one unmeasured run each; ${plan.sandboxes} sandboxes on one user-defined network; ` +
        `bpfnet through bin/bpfnet, as a user runs it: the thin client (client/bpfnet.c; the daemon runs the command with the TypeScript CLI), and with BPFNET_NODE_CLI=1 the Node CLI (the esbuild bundle) it falls back to; ${process.version}; 1-minute load average at the end ${load} (the machine is shared: expect noise).`,
    );
    return {
      commands: commands.map((c, i) => {
        const sorted = [...samples[i]].sort((a, b) => a - b);
        const failed = errors[i].length > 0;
        return { name: c.name, samplesMs: samples[i], p50Ms: failed ? NaN : percentile(sorted, 50), p99Ms: failed ? NaN : percentile(sorted, 99), errors: errors[i] };
      }),
      notes,
    };
  } finally {
    await lab.destroy();
  }
}

/** The table and notes, as `npm run bench` and the stand-alone run print them. */
export function renderCliBenchmark(r: CliBenchResult): string {
  const rows = [['command', 'p50 ms', 'p99 ms', 'runs']];
  for (const c of r.commands) rows.push([c.name, c.p50Ms.toFixed(1), c.p99Ms.toFixed(1), c.errors.length ? `${c.errors.length} failed: ${c.errors[0]}` : String(c.samplesMs.length)]);
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => row[col].length)));
  const lines = rows.map((row) => row.map((cell, col) => cell.padEnd(widths[col])).join('  ').trimEnd());
  return [...lines, '', ...r.notes.map((n) => `- ${n}`)].join('\n') + '\n';
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the CLI benchmark builds network namespaces for its daemon: run it as root');
  const r = await runCliBenchmark({ quick: process.argv.includes('--quick') });
  process.stdout.write(renderCliBenchmark(r));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`cli benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
