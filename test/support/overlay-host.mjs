// One simulated host of an overlay test: a bpfnet daemon (dist/, as `bpfnet daemon` runs it)
// whose view of the endpoints on other hosts the test feeds, standing in for the cluster
// state's watch: one JSON request per stdin line ({seq, op: remote-add|remote-remove|
// remote-replace, args}), one JSON answer per stdout line. The CLI talks to its socket.
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'dist', 'src');
const { Daemon } = await import(join(dist, 'daemon', 'daemon.js'));
const { resolveDaemonSettings } = await import(join(dist, 'daemon', 'options.js'));
const { createLogger } = await import(join(dist, 'daemon', 'log.js'));

const settings = await resolveDaemonSettings(JSON.parse(process.argv[2]));
const daemon = new Daemon(settings, createLogger('info'));
await daemon.start();

const ops = {
  'remote-add': (a) => daemon.remoteEndpoints.upsert(a),
  'remote-remove': (a) => daemon.remoteEndpoints.remove(a),
  'remote-replace': (a) => daemon.remoteEndpoints.replace(a),
};

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
