/** Entry of `bpfnet daemon`: settings, start, and a clean stop on SIGTERM/SIGINT. */
import { Daemon } from './daemon.js';
import { createLogger } from './log.js';
import { resolveDaemonSettings, type DaemonFlags } from './options.js';

export async function runDaemon(flags: DaemonFlags): Promise<void> {
  const settings = await resolveDaemonSettings(flags);
  const log = createLogger(settings.logLevel);
  const daemon = new Daemon(settings, log);
  await daemon.start();
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: stopping (sandboxes and forwarding stay in place)`);
    daemon.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error(`stop failed: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
