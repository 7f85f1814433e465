// A bpfnet daemon (dist/, as `bpfnet daemon` runs it) started from the settings JSON in argv[2],
// driven by a test through its service layer: one JSON request per stdin line ({seq, op, args}),
// one JSON answer per stdout line ({seq, ok, result} or {seq, ok: false, kind, message}). The
// daemon also serves its socket, so the same test can use the CLI. `serveDaemon(opsOf)` takes
// a function from the started daemon to its table of ops.
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'dist', 'src');

export async function serveDaemon(opsOf) {
  const { Daemon } = await import(join(dist, 'daemon', 'daemon.js'));
  const { resolveDaemonSettings } = await import(join(dist, 'daemon', 'options.js'));
  const { createLogger } = await import(join(dist, 'daemon', 'log.js'));

  const settings = await resolveDaemonSettings(JSON.parse(process.argv[2]));
  const daemon = new Daemon(settings, createLogger('info'));
  await daemon.start();
  const ops = opsOf(daemon);

  const stop = () => daemon.stop().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  const lines = createInterface({ input: process.stdin });
  lines.on('line', async (line) => {
    const req = JSON.parse(line);
    try {
      const result = await ops[req.op](req.args);
      process.stdout.write(JSON.stringify({ seq: req.seq, ok: true, result: result ?? null }) + '\n');
    } catch (err) {
      process.stdout.write(JSON.stringify({ seq: req.seq, ok: false, kind: err.kind ?? 'error', message: err.message }) + '\n');
    }
  });
  lines.on('close', stop);
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
}
