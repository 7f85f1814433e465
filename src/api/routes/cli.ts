/**
 * POST /bpfnet/cli: the thin client's one call (client/bpfnet.c). Body {"Args": [...], "Env":
 * ["K=V", ...]}; the reply streams the command's output as frames (src/cli/remote.ts) and ends
 * with its exit status. 409 for a command that must run in the user's own process; 503 when as
 * many commands as allowed are running already. The client answers both by running the Node CLI.
 */
import { Client, type DaemonAddress } from '../../cli/client.js';
import { sendError, type Router } from '../router.js';
import { checkBody, list, obj, opt, str } from '../validate.js';

const cliSchema = obj({
  Args: list(str({ max: 64 * 1024 }), 4096),
  Env: opt(list(str({ max: 64 * 1024 }), 4096)),
});

/** Commands in flight at once: each holds a connection back to this socket while it runs. */
const MAX_RUNNING = 32;

export function cliRoutes(router: Router, self: DaemonAddress): void {
  let running = 0;
  router.on('POST', '/bpfnet/cli', async (req, res) => {
    // Before anything is awaited: a client that leaves early still ends its command.
    const gone = new AbortController();
    res.once('close', () => gone.abort());
    const body = checkBody(cliSchema, await req.body());
    // Loaded on first use: the daemon's start-up does not pay for the CLI's commander tree.
    const remote = await import('../../cli/remote.js');
    if (remote.runsLocally(body.Args)) return sendError(res, 409, 'this command runs in the client process');
    if (running >= MAX_RUNNING) return sendError(res, 503, `${MAX_RUNNING} commands are running already`);
    // No prototype: a variable named __proto__ stays a variable.
    const env = Object.create(null) as Record<string, string>;
    for (const entry of body.Env ?? []) {
      const eq = entry.indexOf('=');
      if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    running++;
    try {
      res.writeHead(200, { 'Content-Type': 'application/vnd.bpfnet.cli-frames' });
      await remote.runForThinClient(body.Args, env, res, () => new Client(self, 'bpfnet-cli', gone.signal), gone.signal);
    } finally {
      running--;
      res.end();
    }
  });
}
