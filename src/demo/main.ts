/**
 * `npm run demo`: what bpfnet does, shown in a disposable lab of network namespaces.
 * Nothing outside the lab is touched, and the lab is removed at the end, also on failure.
 */
import { Lab } from '../lab/lab.js';
import { probeDemo } from './probe.js';

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the demo builds network namespaces: run it as root');
  const lab = await Lab.create();
  say(`lab ${lab.prefix}: host ${lab.host.name}, external client ${lab.external.name}`);
  const cleanup = () => void lab.destroy().finally(() => process.exit(130));
  process.once('SIGINT', cleanup);
  process.once('SIGTERM', cleanup);
  try {
    say('\n== 1. BPF programs count real packets ==');
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
