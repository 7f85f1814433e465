/** The command line of npm run bench. */
import type { SetupName } from './setups/setup.js';

export const ALL_SETUPS: SetupName[] = ['ceiling', 'routing', 'ebpf', 'iptables', 'cni'];

export interface Options {
  quick: boolean;
  reps: number;
  only?: string[];
  setups: SetupName[];
  out?: string;
  help: boolean;
}

export const USAGE = `usage: npm run bench -- [--quick] [--reps N] [--only LIST] [--setups LIST] [--out DIR]
  --quick         short runs, fewer workloads (under 3 minutes)
  --reps N        repetitions (default 3)
  --only LIST     comma-separated: workload ids or id prefixes (tcp, http, conn, tcp-published-1, ...),
                  and/or the sections sweep, control, dns, cli, xdp (TC vs TC + XDP on the uplink)
  --setups LIST   comma-separated subset of ${ALL_SETUPS.join(',')}
  --out DIR       where results go (default bench/results, bench/results/quick with --quick)`;

/** Parses the arguments after `npm run bench --`; throws with the usage on a bad one. */
export function parseArgs(argv: readonly string[]): Options {
  const o: Options = { quick: false, reps: 3, setups: [...ALL_SETUPS], help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--reps') {
      o.reps = Number(value());
      if (!Number.isInteger(o.reps) || o.reps < 1) throw new Error(`--reps must be a positive integer\n${USAGE}`);
    } else if (a === '--only') o.only = value().split(',').filter(Boolean);
    else if (a === '--setups') {
      const s = value().split(',').filter(Boolean);
      const bad = s.filter((x) => !ALL_SETUPS.includes(x as SetupName));
      if (bad.length) throw new Error(`unknown setup ${bad.join(', ')}\n${USAGE}`);
      o.setups = s as SetupName[];
    } else if (a === '--out') o.out = value();
    else if (a === '--help' || a === '-h') o.help = true;
    else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  return o;
}


/** Whether a workload id or a section (sweep, control, dns) is selected: --only takes ids and id prefixes ending at a dash. */
export function selected(o: Options, id: string): boolean {
  return !o.only || o.only.some((x) => id === x || id.startsWith(`${x}-`));
}
