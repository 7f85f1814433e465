/**
 * Entry of `bpfnet daemon`: settings from the config file and the flags (flags win), start,
 * SIGHUP to reload what can change live, and a clean stop on SIGTERM/SIGINT.
 */
import { Daemon } from './daemon.js';
import { ConfigFileError, mergeFlags, readConfigFile } from './config-file.js';
import { createLogger } from './log.js';
import { resolveDaemonSettings, type DaemonFlags, type DaemonSettings } from './options.js';

/** The file's keys under the flags, resolved and checked; errors name the file when it had a say. */
export async function loadSettings(flags: DaemonFlags): Promise<{ settings: DaemonSettings; file?: string }> {
  const file = readConfigFile(flags.configFile);
  try {
    return { settings: await resolveDaemonSettings(mergeFlags(file?.flags, flags)), ...(file ? { file: file.path } : {}) };
  } catch (err) {
    if (!file) throw err;
    throw new ConfigFileError(`${(err as Error).message} (flags and config file ${file.path}; a key is the flag's name without --)`);
  }
}

export async function runDaemon(flags: DaemonFlags): Promise<void> {
  const { settings, file } = await loadSettings(flags);
  const log = createLogger(settings.logLevel, settings.logFormat);
  if (file) log.info(`configuration from ${file} and the command line`, { config_file: file });
  const daemon = new Daemon(settings, log);
  // SIGHUP's default action ends the process: take it over before the (possibly long) start;
  // a reload asked for meanwhile runs once the daemon is up.
  let started!: () => void;
  let reloading = new Promise<void>((resolve) => (started = resolve));
  process.on('SIGHUP', () => reload());
  await daemon.start();
  started();
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: stopping (sandboxes and forwarding stay in place)`, { signal });
    daemon.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error(`stop failed: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  function reload(): void {
    reloading = reloading.then(async () => {
      try {
        const { settings: next } = await loadSettings(flags);
        const { applied, needRestart } = daemon.reload(next, log);
        log.info(
          `SIGHUP: reloaded: ${applied.length > 0 ? `applied ${applied.join(' ')}` : 'nothing to apply'}` +
            (needRestart.length > 0 ? `; cannot change while running (restart to apply): ${needRestart.join(', ')}` : ''),
          { signal: 'SIGHUP', applied: applied.join(' '), not_applied: needRestart.join(',') },
        );
      } catch (err) {
        log.error(`SIGHUP: configuration refused, keeping the running one: ${(err as Error).message}`, { signal: 'SIGHUP' });
      }
    });
  }
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
