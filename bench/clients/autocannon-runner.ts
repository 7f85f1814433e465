/**
 * The keep-alive HTTP client: autocannon (the tool) run in-process inside the client
 * namespace, after a warm-up of the same load. Latency comes from autocannon's per-response
 * times (float milliseconds) rather than its histogram, which records whole milliseconds and
 * cannot tell 200 µs from 900 µs. CPU comes from /proc/stat over the measured run only.
 *
 * usage: node autocannon-runner.js '{"url":"http://A:P/","connections":50,"seconds":3,"warmupSeconds":1}'
 * prints one JSON object.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseProcStat, percentile } from '../stats.js';

interface Options {
  url: string;
  connections: number;
  seconds: number;
  warmupSeconds: number;
}

const require = createRequire(import.meta.url);
// autocannon ships no types; the little used here is checked by the output it produces.
const autocannon = require('autocannon') as (opts: Record<string, unknown>, cb: (err: Error | null, res: any) => void) => any;

function load(opts: Options, seconds: number, onResponse?: (ms: number, status: number) => void): Promise<any> {
  return new Promise((resolve, reject) => {
    const instance = autocannon({ url: opts.url, connections: opts.connections, duration: seconds, pipelining: 1 }, (err, res) => (err ? reject(err) : resolve(res)));
    if (onResponse) instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => onResponse(ms, status));
  });
}

async function main(): Promise<void> {
  const opts = JSON.parse(process.argv[2] ?? '{}') as Options;
  if (!opts.url || !(opts.seconds > 0)) throw new Error('usage: autocannon-runner \'{"url":…,"connections":…,"seconds":…,"warmupSeconds":…}\'');
  if (opts.warmupSeconds > 0) await load(opts, opts.warmupSeconds);
  let times = new Float64Array(1 << 16);
  let n = 0;
  let non2xx = 0;
  const cpu0 = parseProcStat(readFileSync('/proc/stat', 'utf8'));
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  const res = await load(opts, opts.seconds, (ms, status) => {
    if (n === times.length) {
      const grown = new Float64Array(times.length * 2);
      grown.set(times);
      times = grown;
    }
    times[n++] = ms;
    if (status < 200 || status > 299) non2xx++;
  });
  const elapsed = (performance.now() - t0) / 1000;
  const own = process.cpuUsage(own0);
  const cpu1 = parseProcStat(readFileSync('/proc/stat', 'utf8'));
  const sample = Array.from(times.subarray(0, n));
  const us = (p: number) => Math.round(percentile(sample, p) * 1000);
  process.stdout.write(
    JSON.stringify({
      requests: n,
      seconds: elapsed,
      rps: n / elapsed,
      p50Us: us(50),
      p90Us: us(90),
      p99Us: us(99),
      errors: res.errors ?? 0,
      timeouts: res.timeouts ?? 0,
      non2xx,
      clientCpuSeconds: (own.user + own.system) / 1e6,
      cpu: { busyTicks: cpu1.busy - cpu0.busy, totalTicks: cpu1.total - cpu0.total, hz: 100 },
    }) + '\n',
  );
}

main().catch((err) => {
  process.stderr.write(`autocannon-runner: ${(err as Error).message}\n`);
  process.exit(1);
});
