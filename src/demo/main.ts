/**
 * `npm run demo`: what bpfnet does, shown in a disposable lab of network namespaces with a
 * real daemon (ebpf datapath) in the simulated host. Nothing outside the lab is touched, and
 * the lab is removed at the end, also on failure or Ctrl-C.
 */
import { Lab } from '../lab/lab.js';
import { LabDaemon } from '../lab/daemon.js';
import { probeDemo } from './probe.js';
import { walkthrough } from './walkthrough.js';

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** Optional parts contributed by other modules (embedded DNS), loaded if present. */
async function optional<T>(path: string, name: string): Promise<T | undefined> {
  try {
    return (await import(path))[name] as T;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the demo builds network namespaces: run it as root');
  const lab = await Lab.create();
  const cleanup = () => void lab.destroy().finally(() => process.exit(130));
  process.once('SIGINT', cleanup);
  process.once('SIGTERM', cleanup);
  say(`lab ${lab.prefix}: simulated host ${lab.host.name} (uplink 198.18.0.1), external client ${lab.external.name} (198.18.0.2)`);
  try {
    const d = await LabDaemon.start(lab, { datapath: 'ebpf' });
    say(`bpfnet daemon running in the simulated host (ebpf datapath), socket ${d.socket}\n`);
    say("== 1. Docker's networking walkthrough ==");
    await walkthrough(lab, d, say);
    const dnsDemo = await optional<(lab: Lab, d: LabDaemon, say: (l?: string) => void) => Promise<void>>('./dns.js', 'dnsDemo');
    if (dnsDemo) {
      say('\n== 2. Names: the embedded DNS ==');
      await dnsDemo(lab, d, say);
    }
    say('\n== 3. What the kernel counted ==');
    const stats = await d.cli(['stats', 'web']);
    say('$ bpfnet stats web');
    say(stats.stdout.trimEnd());
    say('\n== 4. Under the hood: BPF programs loaded by the addon count real packets ==');
    await probeDemo(lab, say);
  } finally {
    await lab.destroy();
    say(`\nlab ${lab.prefix} removed`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
