/**
 * `npm run demo:cluster`: overlay networks across five simulated hosts joined to one real etcd
 * (src/demo/cluster-walkthrough.ts), in a disposable lab of network namespaces. Nothing outside
 * the lab is touched; the lab (namespaces, daemons, etcd, pins) is removed at the end, also on
 * failure or Ctrl-C.
 */
import { ClusterLab } from '../lab/cluster-lab.js';
import { clusterWalkthrough } from './cluster-walkthrough.js';

/** Set on SIGINT/SIGTERM: Ctrl-C also reaches the lab's daemons and etcd (one process group), so what fails next is the interruption's doing. */
let interrupted = false;
let cl: ClusterLab | undefined;

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the demo builds network namespaces: run it as root');
  const started = Date.now();
  say('Building the lab: five host namespaces on one underlay bridge, one etcd, a bpfnet daemon per host (ebpf datapath)...');
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    say(`\n${sig}: removing the lab`);
    // Still being built: removed as soon as create() returns (below).
    if (cl) void cl.destroy().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  cl = await ClusterLab.create({ hosts: 5, datapath: 'ebpf' });
  if (interrupted) {
    await cl.destroy();
    process.exit(130);
  }
  say(`lab ${cl.lab.prefix} up in ${((Date.now() - started) / 1000).toFixed(1)} s; etcd at ${cl.etcd.storeUrl} in ${cl.underlay.name}\n`);
  try {
    await clusterWalkthrough(cl, say);
  } finally {
    if (!interrupted) {
      await cl.destroy();
      say(`\nlab ${cl.lab.prefix} removed (daemons, etcd, namespaces, pins); the demo took ${((Date.now() - started) / 1000).toFixed(0)} s`);
    }
  }
}

main().catch((err: unknown) => {
  // ClusterLab.create() removes a half-built lab itself when a daemon dies under the signal.
  // With the lab up, the signal handler removes it and exits.
  if (interrupted) return void (cl ? undefined : process.exit(130));
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
