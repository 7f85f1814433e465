/**
 * Runs of published ports: `count` ports (absent: 1) whose host and container ports both step by
 * one from hostPort and containerPort. The store's records and the datapath's specs are both
 * runs; this writes either out, one entry per port, for the paths that need ports one by one.
 */
export interface PortRunShape {
  hostPort: number;
  containerPort: number;
  count?: number;
}

/** Every port of `runs`, in order: each run as copies of itself (without count) stepping by one. */
export function eachPortOf<T extends PortRunShape>(runs: readonly T[]): Array<Omit<T, 'count'>> {
  const out: Array<Omit<T, 'count'>> = [];
  for (const { count = 1, ...p } of runs) for (let i = 0; i < count; i++) out.push({ ...p, hostPort: p.hostPort + i, containerPort: p.containerPort + i });
  return out;
}
