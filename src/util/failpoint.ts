/**
 * Failpoints: named places where a test can make the daemon stop still (to kill it there),
 * fail, or die. Off unless BPFNET_FAILPOINTS names them: "attach:after-join=hang,x=error".
 * Actions: hang (wait forever), error (throw), kill (SIGKILL itself, as a crash would).
 * "*=kill@N" kills the daemon at the N-th failpoint it passes, whichever it is: with N drawn
 * from a seeded PRNG, a test crashes the daemon at many different points of a workload.
 */
const configured = new Map(
  (process.env.BPFNET_FAILPOINTS ?? '')
    .split(',')
    .filter(Boolean)
    .map((kv) => {
      const [name, action = 'hang'] = kv.split('=');
      return [name, action] as const;
    }),
);

const anyKill = /^kill@(\d+)$/.exec(configured.get('*') ?? '');
let hits = 0;

function die(name: string): never {
  process.stderr.write(`failpoint ${name}: kill\n`);
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable: SIGKILL returned');
}

/** The action for name, counting this pass for "*=kill@N"; undefined when nothing is to happen. */
function actionFor(name: string): string | undefined {
  if (configured.size === 0) return undefined;
  hits++;
  if (anyKill && hits === Number(anyKill[1])) return 'kill';
  return configured.get(name);
}

export async function failpoint(name: string): Promise<void> {
  const action = actionFor(name);
  if (action === undefined) return;
  if (action === 'kill') die(name);
  process.stderr.write(`failpoint ${name}: ${action}\n`);
  if (action === 'error') throw new Error(`failpoint ${name}`);
  if (action === 'hang') await new Promise(() => undefined);
}

/** For synchronous code paths: kill and error only (a hang cannot wait here). */
export function failpointSync(name: string): void {
  const action = actionFor(name);
  if (action === undefined) return;
  if (action === 'kill') die(name);
  process.stderr.write(`failpoint ${name}: ${action}\n`);
  if (action === 'error') throw new Error(`failpoint ${name}`);
}
