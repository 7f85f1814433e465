/** The command line of npm run bench. */
import { SETUP_NAMES, type SetupName } from './setups/setup.js';

export const ALL_SETUPS: readonly SetupName[] = SETUP_NAMES;

/** Repetitions by default: the targets are medians of at least five paired ratios. */
export const DEFAULT_REPS = 5;
export const DEFAULT_QUICK_REPS = 3;

export interface Options {
  quick: boolean;
  reps: number;
  /** Seed of the setup order (random when not given; recorded in the results). */
  seed?: number;
  /** Whether to write the README's generated block (default: full runs that write to bench/results). */
  readme: boolean;
  only?: string[];
  setups: SetupName[];
  out?: string;
  help: boolean;
  /** Print the plan's step count and estimated duration, and stop. */
  plan: boolean;
  /** The scale section's sandbox count (--scale: 4,000; never in the default run, it takes ~10-15 min). */
  scale?: number;
}

export const USAGE = `usage: npm run bench -- [--quick] [--reps N] [--seed N] [--only LIST] [--setups LIST] [--out DIR] [--plan] [--no-readme]
  --quick         short runs, fewer workloads, ${DEFAULT_QUICK_REPS} repetitions unless --reps is given
  --reps N        repetitions (default ${DEFAULT_REPS})
  --seed N        seed of the rotated setup order (default: random, recorded in the results)
  --only LIST     comma-separated: workload ids or id prefixes (tcp, http, conn, tcp-published-1, ...),
                  and/or the sections sweep, publish (10,000 ports timed 10 times), control, dns,
                  cli, xdp (TC vs TC + XDP on the uplink), overlay (five hosts + etcd: cross-host
                  vs same host vs Docker's way, and a new sandbox's time to be reachable)
  --setups LIST   comma-separated subset of ${ALL_SETUPS.join(',')}
  --out DIR       where results go (default bench/results, bench/results/quick with --quick)
  --scale [N]     also run the scale section (bench/scale.ts): N sandboxes on one network (default
                  4000; minutes) with attach latency, keep-alive req/s, RSS, inspect/ps latency;
                  --only scale runs it alone
  --plan          print how many steps and about how long the run would take, and run nothing
  --no-readme     do not write README.md's generated Performance block (a full run without --out
                  and without --only/--setups writes it)`;

/** Parses the arguments after `npm run bench --`; throws with the usage on a bad one. */
export function parseArgs(argv: readonly string[]): Options {
  const o: Options = { quick: false, reps: NaN, setups: [...ALL_SETUPS], help: false, readme: true, plan: false };
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
    } else if (a === '--seed') {
      o.seed = Number(value());
      if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed >= 2 ** 32) throw new Error(`--seed must be an integer from 0 to 2^32-1\n${USAGE}`);
    } else if (a === '--no-readme') o.readme = false;
    else if (a === '--plan') o.plan = true;
    else if (a === '--scale') {
      const n = Number(argv[i + 1]);
      o.scale = Number.isInteger(n) && n > 2 ? (i++, n) : 4000;
    }
    else if (a === '--only') o.only = value().split(',').filter(Boolean);
    else if (a === '--setups') {
      const s = value().split(',').filter(Boolean);
      const bad = s.filter((x) => !ALL_SETUPS.includes(x as SetupName));
      if (bad.length) throw new Error(`unknown setup ${bad.join(', ')}\n${USAGE}`);
      o.setups = s as SetupName[];
    } else if (a === '--out') o.out = value();
    else if (a === '--help' || a === '-h') o.help = true;
    else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  if (o.only?.includes('scale') && o.scale === undefined) o.scale = 4000;
  if (Number.isNaN(o.reps)) o.reps = o.quick ? DEFAULT_QUICK_REPS : DEFAULT_REPS;
  // Only a complete, full run may replace the README's numbers.
  o.readme = o.readme && !o.quick && o.out === undefined && o.only === undefined && o.setups.length === ALL_SETUPS.length;
  return o;
}


/** Whether a workload id or a section (sweep, control, dns) is selected: --only takes ids and id prefixes ending at a dash. */
export function selected(o: Options, id: string): boolean {
  return !o.only || o.only.some((x) => id === x || id.startsWith(`${x}-`));
}
