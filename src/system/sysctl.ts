/** Kernel parameters of a network namespace (net.* sysctls are per namespace). */
import { runRawIn, type NetnsTarget } from './exec.js';
import { writeProcSys } from './rtnl.js';

/** A sysctl by dotted name or slash-separated path under /proc/sys (so interface names with dots stay intact); undefined if absent. */
export async function readSysctl(target: NetnsTarget, key: string): Promise<string | undefined> {
  const r = await runRawIn(target, 'sysctl', ['-n', key]);
  return r.code === 0 ? r.stdout.trim() : undefined;
}

export async function writeSysctl(target: NetnsTarget, key: string, value: string): Promise<void> {
  writeProcSys(target.netnsPath ?? null, { [key]: value });
}

/** Writes key only when it differs (avoids needless writes on every start). */
export async function ensureSysctl(target: NetnsTarget, key: string, value: string): Promise<void> {
  if ((await readSysctl(target, key)) !== value) await writeSysctl(target, key, value);
}


/** Writes several sysctls from one thread inside the namespace (no process). */
export async function writeSysctls(target: NetnsTarget, values: Record<string, string>): Promise<void> {
  writeProcSys(target.netnsPath ?? null, values);
}
