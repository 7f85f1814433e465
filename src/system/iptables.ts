/**
 * iptables (Debian's, on the nf_tables backend) and the bridge-port hairpin flag its
 * hairpin NAT depends on. Every call acts on the caller's
 * own network namespace, or on the one at `netnsPath` (through nsenter, which keeps /sys
 * as it is, unlike `ip netns exec`) so tests can aim it at a lab namespace.
 */
import { CommandError, runIn, runRawIn, type NetnsTarget, type RunResult } from './exec.js';

function exec(target: NetnsTarget, file: string, args: readonly string[], input?: string): Promise<string> {
  return runIn(target, file, args, input === undefined ? {} : { input });
}

function execRaw(target: NetnsTarget, file: string, args: readonly string[], input?: string): Promise<RunResult> {
  return runRawIn(target, file, args, input === undefined ? {} : { input });
}

/** Where a failed restore stopped: iptables-restore names the line ("Error occurred at line: 8", "line 8 failed"). */
export class RestoreError extends Error {
  override readonly name = 'RestoreError';
  constructor(
    message: string,
    readonly line: number | undefined,
    readonly text: string | undefined,
  ) {
    super(message);
  }
}

/** iptables (4) or ip6tables (6): the same commands, one per family. */
export type IpFamily = 4 | 6;
const tool = (family: IpFamily, name: string) => (family === 6 ? `ip6${name}` : `ip${name}`);

/** Applies iptables-restore input without flushing anything it does not name; each table commits atomically. */
export async function iptablesRestore(target: NetnsTarget, input: string, family: IpFamily = 4): Promise<void> {
  const r = await execRaw(target, tool(family, 'tables-restore'), ['-w', '--noflush'], input);
  if (r.code === 0) return;
  const stderr = r.stderr.trim();
  const m = /line:? (\d+)/.exec(stderr);
  const line = m ? Number(m[1]) : undefined;
  const text = line !== undefined ? input.split('\n')[line - 1] : undefined;
  throw new RestoreError(`${tool(family, 'tables-restore')}: ${stderr || `exit ${r.code}`}${text !== undefined ? ` (line ${line}: ${text})` : ''}`, line, text);
}

/** iptables-save of every table, or of one. */
export function iptablesSave(target: NetnsTarget, table?: string, family: IpFamily = 4): Promise<string> {
  return exec(target, tool(family, 'tables-save'), table ? ['-t', table] : []);
}

/** `iptables -t TABLE -S CHAIN`: the chain's rules as iptables-save writes them; undefined when the chain does not exist. */
export async function iptablesListChain(target: NetnsTarget, table: string, chain: string, family: IpFamily = 4): Promise<string | undefined> {
  const r = await execRaw(target, tool(family, 'tables'), ['-w', '-t', table, '-S', chain]);
  if (r.code === 0) return r.stdout;
  // iptables-nft reports a missing chain as "chain `X' in table `t' is incompatible".
  if (/No chain|does not exist|is incompatible/i.test(r.stderr)) return undefined;
  throw new CommandError(`${tool(family, 'tables')} -t ${table} -S ${chain}`, r.code, r.stdout, r.stderr);
}

/** Turns hairpin on for bridge ports (frames may leave by the port they came in: needed for DNAT back to the sender). */
export async function setHairpin(target: NetnsTarget, ports: readonly string[]): Promise<void> {
  if (ports.length === 0) return;
  const input = ports.map((p) => `link set dev ${p} type bridge_slave hairpin on`).join('\n') + '\n';
  const r = await execRaw(target, 'ip', ['-force', '-batch', '-'], input);
  if (r.code !== 0) throw new CommandError(`ip link set type bridge_slave hairpin on (${ports.join(', ')})`, r.code, r.stdout, r.stderr);
}
