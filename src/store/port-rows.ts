/**
 * How a sandbox's published ports are stored: one JSON document of runs. A run
 * [protocol, hostIp, hostPort, containerPort, count] stands for `count` bindings whose host and
 * container ports both step by one, so `-p 10000-19999:10000-19999` is one short row that writes
 * and reads in microseconds instead of 10,000 tuples. A 4-element row (count 1) is what stores
 * written before runs hold, and reads the same.
 */
import type { PortRecord } from '../networks/model.js';

export type PortRun = [PortRecord['protocol'], string, number, number, number] | [PortRecord['protocol'], string, number, number];

/** The document for `ports`, in their order: consecutive bindings that continue a run join it. */
export function encodePortRuns(ports: readonly PortRecord[]): string {
  const runs: Array<[PortRecord['protocol'], string, number, number, number]> = [];
  let last: [PortRecord['protocol'], string, number, number, number] | undefined;
  for (let i = 0; i < ports.length; i++) {
    const p = ports[i];
    if (last && last[0] === p.protocol && last[1] === p.hostIp && last[2] + last[4] === p.hostPort && last[3] + last[4] === p.containerPort) last[4]++;
    else runs.push((last = [p.protocol, p.hostIp, p.hostPort, p.containerPort, 1]));
  }
  return JSON.stringify(runs.map((r) => (r[4] === 1 ? r.slice(0, 4) : r)));
}

/** The bindings a stored document stands for, in order. */
export function decodePortRuns(sandboxId: string, doc: string): PortRecord[] {
  const out: PortRecord[] = [];
  for (const [protocol, hostIp, hostPort, containerPort, count = 1] of JSON.parse(doc) as PortRun[])
    for (let i = 0; i < count; i++) out.push({ sandboxId, protocol, hostIp, hostPort: hostPort + i, containerPort: containerPort + i });
  return out;
}
