/**
 * How a sandbox's published ports are stored: one JSON document of runs. A run
 * [protocol, hostIp, hostPort, containerPort, count] stands for `count` bindings whose host and
 * container ports both step by one, so `-p 10000-19999:10000-19999` is one short row that writes
 * and reads in microseconds instead of 10,000 tuples. A 4-element row (count 1) is what stores
 * written before runs hold, and reads the same.
 */
import type { PortRecord, PortRun } from '../networks/model.js';
import { eachPortOf } from '../util/port-runs.js';

type StoredRun = [PortRecord['protocol'], string, number, number, number] | [PortRecord['protocol'], string, number, number];

/** `ports` as the fewest runs, in their order: a run (or binding) that continues the one before joins it. */
function joinPortRuns(ports: readonly PortRun[]): PortRun[] {
  const runs: Array<PortRun & { count: number }> = [];
  let last: (PortRun & { count: number }) | undefined;
  for (let i = 0; i < ports.length; i++) {
    const p = ports[i];
    const count = p.count ?? 1;
    if (last && last.sandboxId === p.sandboxId && last.protocol === p.protocol && last.hostIp === p.hostIp && last.hostPort + last.count === p.hostPort && last.containerPort + last.count === p.containerPort)
      last.count += count;
    else runs.push((last = { sandboxId: p.sandboxId, protocol: p.protocol, hostIp: p.hostIp, hostPort: p.hostPort, containerPort: p.containerPort, count }));
  }
  return runs;
}

/** The document for `ports` (runs or single bindings), in their order. */
export function encodePortRuns(ports: readonly PortRun[]): string {
  return JSON.stringify(joinPortRuns(ports).map((r): StoredRun => (r.count === 1 ? [r.protocol, r.hostIp, r.hostPort, r.containerPort] : [r.protocol, r.hostIp, r.hostPort, r.containerPort, r.count!])));
}

/** The runs a stored document holds, in order (count only where it is more than one). */
export function decodeRunsOf(sandboxId: string, doc: string): PortRun[] {
  return (JSON.parse(doc) as StoredRun[]).map(([protocol, hostIp, hostPort, containerPort, count = 1]) =>
    count === 1 ? { sandboxId, protocol, hostIp, hostPort, containerPort } : { sandboxId, protocol, hostIp, hostPort, containerPort, count },
  );
}

/** The bindings a stored document stands for, one record per port, in order. */
export function decodePortRuns(sandboxId: string, doc: string): PortRecord[] {
  return eachPortOf(decodeRunsOf(sandboxId, doc));
}
