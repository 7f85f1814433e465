/**
 * node dist/bench/sysctl-walk.js [N]
 *
 * What one sysctl write in a new namespace costs as namespaces accumulate (the scale section's
 * "Where the growth is"): N named namespaces (default 4,000) are made in batches of 250, and in each
 * new one the two keys an IPv4-only sandbox gets are written the way the daemon writes them
 * (one lookup of /proc/sys/net, `writeProcSys`). Every namespace's
 * /proc/sys/net dentry hangs in one dcache hash chain, and each lookup walks it, so the write
 * grows with the namespaces present. Prints the p50 per 500 and the first 100 against the last
 * 100. The namespaces are made and removed as the daemon makes and removes a sandbox's
 * (createNetns, removeNetns), carry a unique prefix and are removed at the end, on failure and
 * on a signal; nothing else is made or changed.
 */
import { createNetns, removeNetns, type Netns } from '../src/system/ip.js';
import { writeProcSys } from '../src/system/rtnl.js';
import { median } from './stats.js';

const BATCH = 250;
const KEYS = { 'net.ipv6.conf.all.disable_ipv6': '1', 'net.ipv6.conf.default.disable_ipv6': '1' };

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 4000);
  if (!Number.isInteger(n) || n < 100) throw new Error(`usage: sysctl-walk [N >= 100], got ${process.argv[2]}`);
  const prefix = `bnlsw${process.pid}-`;
  const made: string[] = [];
  const remove = async () => {
    for (const name of made.splice(0)) await removeNetns(name);
  };
  const onSignal = () => void remove().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const ms: number[] = [];
  try {
    // Made in batches, then written: the writes are timed apart from the namespaces' creation.
    for (let i = 0; i < n; i += BATCH) {
      const batch: Netns[] = [];
      for (let k = i; k < Math.min(i + BATCH, n); k++) {
        made.push(`${prefix}${k}`);
        batch.push(await createNetns(`${prefix}${k}`));
      }
      for (const ns of batch) {
        const t0 = process.hrtime.bigint();
        writeProcSys(ns.path, KEYS);
        ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
  } finally {
    await remove();
  }
  for (let i = 0; i < n; i += 500) process.stdout.write(`namespaces ${i}-${Math.min(i + 500, n) - 1}: p50 ${median(ms.slice(i, i + 500)).toFixed(3)} ms\n`);
  process.stdout.write(`first 100: p50 ${median(ms.slice(0, 100)).toFixed(3)} ms; last 100: p50 ${median(ms.slice(-100)).toFixed(3)} ms\n`);
}

await main();
