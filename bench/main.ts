/**
 * npm run bench [-- --quick] [--reps N] [--seed N] [--only LIST] [--setups LIST] [--out DIR] [--no-readme]
 *
 * Builds every setup in its own lab (host networking, direct veth, routing, bpfnet ebpf with a
 * NIC-like uplink, bpfnet ebpf with the veth-only uplink shortcut, bpfnet iptables, the CNI
 * reference plugins), then runs each workload on every setup that offers its path, in each
 * repetition in a seeded shuffle rotated by one per repetition (order.ts), then the
 * published-ports sweep, publishing 10,000 ports timed alone, the control-plane timings and the
 * DNS benchmark when bench/dns.ts exists. A sample during which the client saw errors or
 * non-2xx responses is kept with the reason and left out of the statistics. Writes every raw
 * sample to bench/results/<timestamp>-<commit>.json, the tables to latest.md and SVG charts
 * beside it, and on a complete full run the README's generated Performance block.
 * Labs are destroyed at the end, on failure and on Ctrl-C.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { sweepStaleLabs } from '../src/lab/lab.js';
import { projectRoot } from '../src/paths.js';
import { run, runRaw } from '../src/system/exec.js';
import { Progress, duration } from './progress.js';
import { summarize } from './stats.js';
import { writeReport } from './report/write.js';
import { DOCKER_TARGET_WORKLOADS } from './report/analysis.js';
import { RESULTS_SCHEMA, type BenchResults, type ControlSample, type DataSample, type DnsResults, type MachineInfo, type OverlayResults, type PublishSample, type SweepSample, type UplinkXdpResults } from './results-model.js';
import { BpfnetSetup } from './setups/bpfnet.js';
import { DirectVethSetup, HostNetworkSetup, RoutingSetup } from './setups/references.js';
import { FloorSetup } from './setups/floor.js';
import { DockerRulesSetup } from './setups/docker-rules.js';
import { DockerEngineSetup } from './setups/docker-engine.js';
import { newSeed, runOrder } from './order.js';
import { dropReason } from './samples.js';
import { CniSetup, debVersion } from './setups/cni.js';
import { SETUP_NAMES, type Setup, type SetupName } from './setups/setup.js';
import { measureUplinkXdp } from './uplink-xdp.js';
import { overlayEstimate, runOverlayBenchmark } from './overlay.js';
import { WORKLOADS } from './workloads/catalog.js';
import { connrate, connrateSample } from './workloads/http.js';
import { FULL_DURATIONS, QUICK_DURATIONS, type Durations, type Workload } from './workloads/workload.js';
import { USAGE, parseArgs, selected as wanted } from './options.js';

const SWEEP_FIRST_PORT = 10000;
const PUBLISH_PORTS = 10000;

async function firstLine(file: string, args: string[]): Promise<string> {
  try {
    return (await run(file, args)).split('\n')[0].trim();
  } catch {
    return `${file}: unknown`;
  }
}

async function machineInfo(): Promise<MachineInfo> {
  const c = cpus();
  const ac = JSON.parse(readFileSync(join(projectRoot, 'node_modules', 'autocannon', 'package.json'), 'utf8')) as { version: string };
  let commit = 'unknown';
  try {
    commit = (await run('git', ['-C', projectRoot, 'rev-parse', '--short', 'HEAD'])).trim();
    // Uncommitted changes to what is measured make the hash a lie: say so (results are not counted).
    const dirty = (await run('git', ['-C', projectRoot, 'status', '--porcelain', '--untracked-files=no', '--', 'src', 'bpf', 'native', 'bench', ':!bench/results'])).trim();
    if (dirty) commit += '+dirty';
  } catch {
    /* not a checkout */
  }
  // wrk -v prints its version and exits 1.
  const wrkVersion = await runRaw('wrk', ['-v']).then((r) => (r.stdout + r.stderr).split('\n')[0].replace(/\s*Copyright.*$/, '').trim(), () => 'wrk: not installed');
  return {
    kernel: release(),
    cpus: c.length,
    cpuModel: c[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    iperf3: await firstLine('iperf3', ['--version']),
    autocannon: ac.version,
    wrk: wrkVersion,
    // --version only prints; it reads no rule and changes nothing.
    iptables: await firstLine('iptables', ['--version']),
    cniPlugins: `containernetworking-plugins ${await debVersion('containernetworking-plugins')}`,
    commit,
    loadBefore: loadavg(),
    loadAfter: [],
  };
}

async function buildSetup(name: SetupName): Promise<Setup> {
  switch (name) {
    case 'host':
      return HostNetworkSetup.create();
    case 'veth':
      return DirectVethSetup.create();
    case 'routing':
      return RoutingSetup.create();
    case 'floor':
      return FloorSetup.create();
    case 'ebpf':
    case 'ebpf-shortcut':
    case 'iptables':
      return BpfnetSetup.create(name);
    case 'docker28':
      return DockerRulesSetup.create();
    case 'cni':
      return CniSetup.create();
    case 'docker':
    case 'docker+bpfnet':
    case 'docker+floor':
      return DockerEngineSetup.create(name);
  }
}

function errorText(err: unknown): string {
  return (err as Error)?.message?.split('\n').slice(0, 3).join(' ') ?? String(err);
}

export async function main(argv: readonly string[]): Promise<void> {
  const o = parseArgs(argv);
  if (o.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const d: Durations = o.quick ? QUICK_DURATIONS : FULL_DURATIONS;
  const workloads = WORKLOADS.filter((w) => (!o.quick || w.quick) && wanted(o, w.id));
  const doSweep = wanted(o, 'sweep');
  const doControl = wanted(o, 'control');
  const doXdp = wanted(o, 'xdp');
  const dnsModule = new URL('./dns.js', import.meta.url);
  const doDns = wanted(o, 'dns');
  const sweepPorts = o.quick ? [1, 1000, 10000] : [1, 100, 1000, 10000];
  // The CNI portmap plugin adds its rules with one iptables call each (quadratic: ~60 s for 1,000 ports here).
  const cniMaxPorts = o.quick ? 100 : 1000;
  const cniRepsAt = (ports: number) => (ports >= 1000 ? 1 : sectionReps);
  const controlN = o.quick ? 10 : 100;
  // --quick: the sweep and the control plane once; the data-path workloads keep every repetition.
  const sectionReps = o.quick ? 1 : o.reps;
  const doPublish = wanted(o, 'publish');
  const publishRuns = o.quick ? 3 : 10;
  const seed = o.seed ?? newSeed();
  const notes: string[] = [];

  const setupNames = SETUP_NAMES.filter((s) => o.setups.includes(s));
  const sweepSetups = setupNames.filter((s) => s === 'ebpf' || s === 'iptables' || s === 'cni');
  // Container start time of the real engines is their control-plane row.
  const controlSetups = [...sweepSetups, ...setupNames.filter((s) => s === 'docker' || s === 'docker+bpfnet')];

  // The plan, for progress: every step with its estimated seconds.
  const plan: number[] = [];
  // The overlay section builds its own five-host lab: with only it (or DNS, CLI) selected, the setups are not built.
  const needSetups = workloads.length > 0 || doXdp || doSweep || doPublish || doControl;
  if (needSetups) setupNames.forEach(() => plan.push(5));
  plan.push(2);
  // routing is the reference for egress (the masquerade target) and, in full runs, for published ports too;
  // host networking has no same-network path; the uplink shortcut only changes what crosses the uplink.
  const pathOf = (s: SetupName): string[] => {
    if (s === 'routing') return o.quick ? ['egress'] : ['published', 'egress'];
    // Host networking over IPv6 too: its IPv6 ÷ IPv4 is the bound for the datapaths' (no same-network path, as over IPv4).
    if (s === 'host') return ['published', 'egress', 'published6', 'egress6'];
    if (s === 'ebpf-shortcut') return ['published', 'egress'];
    if (s === 'floor' || s === 'docker+floor') return ['published'];
    // bpfnet's own setups also carry the IPv6 paths (their network is dual-stack).
    if (s === 'ebpf' || s === 'iptables') return ['published', 'same-network', 'egress', 'published6', 'same-network6', 'egress6'];
    return ['published', 'same-network', 'egress'];
  };
  // The floor in Docker's containers is the bound of the dockerd targets only (report/analysis.ts): their two workloads.
  const runs = (s: SetupName, w: Workload): boolean => pathOf(s).includes(w.path) && (s !== 'docker+floor' || DOCKER_TARGET_WORKLOADS.includes(w.id));
  for (let rep = 0; rep < o.reps; rep++)
    for (const w of workloads) for (const s of setupNames) if (runs(s, w)) plan.push(w.estimate(d));
  const xdpOn = doXdp && setupNames.includes('ebpf');
  if (xdpOn) for (let rep = 0; rep < o.reps; rep++) plan.push(2 * (d.iperf + d.iperfOmit + 0.4));
  if (doSweep)
    for (let rep = 0; rep < sectionReps; rep++)
      for (const ports of sweepPorts)
        for (const s of sweepSetups) {
          if (s === 'cni' && (ports > cniMaxPorts || rep >= cniRepsAt(ports))) continue;
          plan.push(d.conn + d.connWarmup + 0.5 + (s === 'cni' ? ports * ports * 0.00006 : ports * 0.0002));
        }
  const publishOn = doPublish && setupNames.includes('ebpf');
  if (publishOn) for (let i = 0; i < publishRuns; i++) plan.push(3);
  if (doControl) for (let rep = 0; rep < sectionReps; rep++) for (const s of controlSetups) plan.push(controlN * (s === 'cni' ? 0.12 : 0.08));
  const dnsPresent = doDns && existsSync(dnsModule);
  if (dnsPresent) plan.push(o.quick ? 30 : 120);
  const doCli = wanted(o, 'cli');
  if (doCli) plan.push(o.quick ? 20 : 60);
  const doOverlay = wanted(o, 'overlay');
  // The overlay section reports one step per measured run (4 setups x 4 workloads and the IPv6 pair's 2 per repetition) and one for propagation.
  if (doOverlay) for (let k = 0, n = o.reps * 18 + 1; k < n; k++) plan.push(overlayEstimate(o.quick, o.reps) / n);
  // ~0.15 s per sandbox on this shared machine, plus the req/s rounds.
  if (o.scale) plan.push(o.scale * 0.15 + 30);
  plan.push(3);
  if (o.plan) {
    process.stdout.write(`${plan.length} steps, about ${duration(plan.reduce((a, b) => a + b, 0))} by the plan's estimates (a busy machine takes longer)\n`);
    return;
  }
  const progress = new Progress(plan);

  const swept = await sweepStaleLabs();
  if (swept.length) progress.note(`removed stale labs ${swept.join(', ')}`);
  const machine = await machineInfo();
  if (machine.loadBefore[0] > 0.7 * machine.cpus)
    progress.note(`load average ${machine.loadBefore[0].toFixed(2)} on ${machine.cpus} CPUs: the machine is busy, expect noise`);
  const startedAt = new Date();
  const setups: Setup[] = [];
  /** Labs of sections that build their own (the overlay's cluster lab), removed on a signal too. */
  const ownLabs: Array<{ destroy(): Promise<void> }> = [];
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    progress.note(`${sig}: removing labs`);
    void Promise.allSettled([...setups, ...ownLabs].map((s) => s.destroy())).then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const samples: DataSample[] = [];
  const sweepSamples: SweepSample[] = [];
  const controlSamples: ControlSample[] = [];
  const publishSamples: PublishSample[] = [];
  let dns: DnsResults | undefined;
  let uplinkXdp: UplinkXdpResults | undefined;
  let overlay: OverlayResults | undefined;
  try {
    for (const name of needSetups ? setupNames : []) {
      progress.step(`build setup ${name}`);
      try {
        setups.push(await buildSetup(name));
      } catch (err) {
        notes.push(`setup ${name} could not be built: ${errorText(err)}`);
        progress.note(`setup ${name} FAILED: ${errorText(err)}`);
      }
    }
    const setupInfo = await Promise.all(setups.map(async (s) => ({ name: s.name, description: s.description, info: await s.info().catch(() => ({})) })));

    progress.step('warm-up: one short connection burst on every path');
    for (const s of setups)
      for (const target of Object.values(s.targets))
        await connrate(s.lab, target, target.httpPort, 'connect', { ...d, conn: 0.3, connWarmup: 0 }).catch(() => undefined);

    for (let rep = 0; rep < o.reps && !interrupted; rep++) {
      for (const w of workloads) {
        const order = runOrder(setupNames.filter((name) => runs(name, w)), rep, seed, w.id);
        for (const [position, name] of order.entries()) {
          progress.step(`${w.id} · ${name} · rep ${rep + 1}/${o.reps}`);
          const s = setups.find((x) => x.name === name);
          const target = s?.targets[w.path];
          if (!s || !target) continue;
          try {
            const r = await w.run(s.lab, target, d);
            const dropped = dropReason(r.metrics);
            samples.push({ workload: w.id, setup: name, rep, position, metrics: r.metrics, raw: r.raw, ...(dropped ? { dropped } : {}) });
            if (dropped) progress.note(`${w.id} on ${name} rep ${rep + 1} DROPPED: ${dropped}`);
          } catch (err) {
            samples.push({ workload: w.id, setup: name, rep, position, metrics: {}, error: errorText(err) });
            progress.note(`${w.id} on ${name} rep ${rep + 1} FAILED: ${errorText(err)}`);
          }
        }
      }
    }

    const ebpf = setups.find((x) => x.name === 'ebpf');
    if (xdpOn && ebpf) {
      const xdp: UplinkXdpResults = { tcGbps: [], tcXdpGbps: [], errors: [] };
      for (let rep = 0; rep < o.reps && !interrupted; rep++) {
        progress.step(`uplink: TC alone vs TC + no-op XDP · ebpf · rep ${rep + 1}/${o.reps}`);
        await measureUplinkXdp(ebpf, rep, d, xdp).catch((err) => {
          xdp.errors.push(errorText(err));
          progress.note(`uplink XDP rep ${rep + 1} FAILED: ${errorText(err)}`);
        });
      }
      uplinkXdp = xdp;
    }

    if (doSweep) {
      // Port counts interleave inside each repetition too, so a busy moment on the machine does
      // not land on one port count for every setup (the ratio to one port is paired per repetition).
      for (let rep = 0; rep < sectionReps && !interrupted; rep++) {
        for (const ports of sweepPorts) {
          for (const name of sweepSetups) {
            if (name === 'cni' && (ports > cniMaxPorts || rep >= cniRepsAt(ports))) continue;
            progress.step(`sweep: ${ports.toLocaleString('en-US')} published ports · ${name} · rep ${rep + 1}/${sectionReps}`);
            const s = setups.find((x) => x.name === name);
            if (!s?.publishPorts) continue;
            let createMs = NaN;
            let baselineMs = NaN;
            try {
              const sweep = await s.publishPorts(ports, SWEEP_FIRST_PORT);
              createMs = sweep.createMs;
              baselineMs = sweep.baselineMs;
              try {
                const r = connrateSample(await connrate(s.lab, sweep.target, sweep.target.httpPort, 'connect', d));
                sweepSamples.push({ setup: name, ports, rep, createMs, baselineMs, metrics: r.metrics, raw: r.raw });
              } finally {
                await sweep.remove();
              }
            } catch (err) {
              sweepSamples.push({ setup: name, ports, rep, createMs, baselineMs, metrics: {}, error: errorText(err) });
              progress.note(`sweep ${ports} on ${name} FAILED: ${errorText(err)}`);
            }
          }
        }
      }
      if (sweepSetups.includes('cni')) {
        notes.push(
          `CNI sweep: up to ${cniMaxPorts.toLocaleString('en-US')} ports, one repetition at 1,000: the portmap plugin adds each rule with its own iptables call, so publishing grows quadratically (~1 minute for 1,000 ports on this machine); 10,000 would take over an hour.`,
        );
      }
    }

    if (publishOn) {
      const s = setups.find((x) => x.name === 'ebpf');
      for (let run = 0; run < publishRuns && !interrupted && s?.publishPorts; run++) {
        progress.step(`publish ${PUBLISH_PORTS.toLocaleString('en-US')} ports, timed alone · ebpf · run ${run + 1}/${publishRuns}`);
        try {
          const sweep = await s.publishPorts(PUBLISH_PORTS, SWEEP_FIRST_PORT);
          publishSamples.push({ setup: 'ebpf', run, createMs: sweep.createMs, baselineMs: sweep.baselineMs });
          await sweep.remove();
        } catch (err) {
          publishSamples.push({ setup: 'ebpf', run, createMs: NaN, baselineMs: NaN, error: errorText(err) });
          progress.note(`publishing run ${run + 1} FAILED: ${errorText(err)}`);
        }
      }
    }

    if (doControl) {
      for (let rep = 0; rep < sectionReps && !interrupted; rep++) {
        for (const name of controlSetups) {
          progress.step(`control plane: create and attach ${controlN} sandboxes · ${name} · rep ${rep + 1}/${sectionReps}`);
          const s = setups.find((x) => x.name === name);
          if (!s?.createSandboxes) continue;
          try {
            controlSamples.push({ setup: name, rep, timesMs: await s.createSandboxes(controlN) });
          } catch (err) {
            controlSamples.push({ setup: name, rep, timesMs: [], error: errorText(err) });
            progress.note(`control plane on ${name} FAILED: ${errorText(err)}`);
          }
        }
      }
    }

    if (doDns && !dnsPresent) notes.push('DNS benchmark skipped: bench/dns.ts is not there yet.');
    if (dnsPresent && !interrupted) {
      progress.step('DNS benchmark (bench/dns.ts)');
      try {
        const mod = (await import(dnsModule.href)) as { runDnsBenchmark?: (opts: { quick: boolean }) => Promise<DnsResults> };
        if (typeof mod.runDnsBenchmark !== 'function') throw new Error('bench/dns.ts does not export runDnsBenchmark');
        dns = await mod.runDnsBenchmark({ quick: o.quick });
      } catch (err) {
        notes.push(`DNS benchmark failed: ${errorText(err)}`);
        progress.note(`DNS benchmark FAILED: ${errorText(err)}`);
      }
    }

    if (doCli && !interrupted) {
      progress.step('CLI benchmark (bench/cli.ts)');
      try {
        const { runCliBenchmark } = await import('./cli.js');
        const cli = await runCliBenchmark({ quick: o.quick });
        const rows = cli.commands.map((c) => (c.errors.length ? `${c.name}: ${c.errors.length} runs failed (${c.errors[0]})` : `${c.name} p50 ${c.p50Ms.toFixed(1)} ms, p99 ${c.p99Ms.toFixed(1)} ms`));
        notes.push(`CLI wall time (bench/cli.ts): ${rows.join('; ')}. ${cli.notes.join(' ')}`);
      } catch (err) {
        notes.push(`CLI benchmark failed: ${errorText(err)}`);
        progress.note(`CLI benchmark FAILED: ${errorText(err)}`);
      }
    }

    if (doOverlay && !interrupted) {
      try {
        overlay = await runOverlayBenchmark({ quick: o.quick, reps: o.reps, onStep: (what) => progress.step(what), interrupted: () => interrupted, onLab: (cl) => ownLabs.push(cl) });
      } catch (err) {
        notes.push(`overlay benchmark failed: ${errorText(err)}`);
        progress.note(`overlay benchmark FAILED: ${errorText(err)}`);
      }
    }

    let scale: BenchResults['scale'];
    if (o.scale && !interrupted) {
      progress.step(`scale: ${o.scale} sandboxes on one network (bench/scale.ts)`);
      try {
        const { runScaleBenchmark, scaleTable } = await import('./scale.js');
        scale = await runScaleBenchmark({ count: o.scale, rounds: o.quick ? 1 : 3, onProgress: (w) => progress.note(`scale: ${w}`) });
        notes.push(`Scale (bench/scale.ts):\n\n${scaleTable(scale)}\n`);
      } catch (err) {
        notes.push(`scale benchmark failed: ${errorText(err)}`);
        progress.note(`scale benchmark FAILED: ${errorText(err)}`);
      }
    }

    progress.step('tear down labs, write results');
    await Promise.allSettled(setups.map((s) => s.destroy()));
    setups.length = 0;

    const finishedAt = new Date();
    machine.loadAfter = loadavg();
    const loads = summarize(progress.loads);
    machine.loadDuring = { median: loads.median, max: loads.max };
    if (loads.max > 0.5 * machine.cpus)
      notes.push(`The machine was not quiet: the 1-minute load average reached ${loads.max.toFixed(1)} on ${machine.cpus} CPUs during the run (median ${loads.median.toFixed(1)}); other work shares the CPUs with client and server, so expect wider ranges.`);
    notes.push(
      'CPU cost is busy CPU-seconds of the whole machine (/proc/stat, all CPUs: client, server and kernel together) over the measured interval, divided by the work done. Client CPU % is the client process\'s own user + system time over its run (100 % = one whole CPU).',
      `Clients: iperf3 -J (-t ${d.iperf}${d.iperfOmit ? `, first ${d.iperfOmit} s omitted` : ''}); ${machine.wrk} with one thread, 50 keep-alive connections or 32 with Connection: close (${Math.max(1, Math.round(d.http))} s after a ${Math.max(1, Math.round(d.httpWarmup))} s warm-up run); autocannon ${machine.autocannon} with 50 keep-alive connections (${d.http} s after ${d.httpWarmup} s warm-up) as a cross-check; connrate (C, epoll, 32 connections in flight, ${d.conn} s after ${d.connWarmup} s warm-up). No client or server is pinned to a CPU: on 2 vCPUs pinning one to each CPU leaves the softirq work wherever the NIC-less veths put it, so every setup runs unpinned alike. Server: a single-threaded C epoll HTTP responder (2-byte body) and iperf3 -s, identical in every setup.`,
      `Setup order: every workload's setups run in a shuffle seeded with ${seed}, rotated by one position per repetition, so each setup runs in every position equally often over as many repetitions as there are setups.`,
    );
    if (machine.commit.endsWith('+dirty')) notes.push(`Measured on a work tree with uncommitted changes to src/, bpf/, native/ or bench/ (${machine.commit}).`);
    const results: BenchResults = {
      schema: RESULTS_SCHEMA,
      command: `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
      quick: o.quick,
      reps: o.reps,
      orderSeed: seed,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      machine,
      setups: setupInfo,
      workloads: workloads.map((w) => ({ id: w.id, title: w.title, path: w.path, metrics: w.metrics, client: w.client, ...(w.crossCheckOf ? { crossCheckOf: w.crossCheckOf } : {}) })),
      samples,
      sweep: { ports: doSweep ? sweepPorts : [], samples: sweepSamples },
      controlPlane: { sandboxes: controlN, samples: controlSamples },
      ...(publishSamples.length ? { publish: { ports: PUBLISH_PORTS, samples: publishSamples } } : {}),
      ...(dns ? { dns } : {}),
      ...(uplinkXdp ? { uplinkXdp } : {}),
      ...(overlay ? { overlay } : {}),
      ...(scale ? { scale } : {}),
      notes,
    };
    const outDir = o.out ?? join(projectRoot, 'bench', 'results', ...(o.quick ? ['quick'] : []));
    mkdirSync(outDir, { recursive: true });
    const stamp = startedAt.toISOString().replace(/[:]/g, '').replace(/\.\d+Z$/, 'Z');
    const jsonPath = join(outDir, `${stamp}-${machine.commit}.json`);
    writeFileSync(jsonPath, JSON.stringify(results, null, 1) + '\n');
    const { markdown, files } = await writeReport(results, jsonPath, { readme: o.readme && !interrupted });
    process.stdout.write(markdown);
    progress.note(`wrote ${[jsonPath, ...files].map((f) => relative(process.cwd(), f)).join(', ')} in ${duration((finishedAt.getTime() - startedAt.getTime()) / 1000)}`);
  } finally {
    await Promise.allSettled(setups.map((s) => s.destroy()));
  }
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
