/**
 * The bpfnet command line: the commander tree, and the mapping of how a command ended to the
 * exit status and stderr docker would give (1 for daemon errors, 125 for usage errors).
 */
import { CommanderError } from 'commander';
import { errorText, type Client } from './client.js';
import { CliCommand } from './command.js';
import { registerDaemonCommand, type DaemonLoader } from './commands/daemon.js';
import { registerEventsCommand } from './commands/events.js';
import { registerInfoCommand } from './commands/info.js';
import { registerNetworkCommands } from './commands/network.js';
import { registerRunCommands } from './commands/run.js';
import { registerSandboxCommands } from './commands/sandboxes.js';
import { registerStatsCommands } from './commands/stats.js';
import { registerVersionCommand } from './commands/version.js';
import { CliContext } from './context.js';
import { EXIT_USAGE, ExitStatus, UsageError } from './errors.js';
import type { Io } from './io.js';
import { CLI_VERSION } from './version.js';

export interface CliDeps {
  /** Loads src/daemon/main.js for `bpfnet daemon`. */
  readonly loadDaemon?: DaemonLoader;
  /** Makes the client for the daemon from the -H value (default: resolveHost with the environment). */
  readonly connect?: (host: string | undefined) => Client;
}

export function buildProgram(io: Io, deps: CliDeps = {}): CliCommand {
  const program = new CliCommand('bpfnet');
  const cli = new CliContext(io, () => program.opts<{ host?: string }>().host, deps.connect);
  program
    .description('A Docker-compatible container network engine on an eBPF datapath')
    .usage('[OPTIONS] COMMAND')
    .version(`bpfnet version ${CLI_VERSION}`, '-v, --version', 'Print version information and quit')
    .option('-H, --host <unix:///path>', 'Daemon socket to connect to (default $BPFNET_HOST or unix:///run/bpfnet.sock)')
    // Global flags come before the command, as with docker; run/exec need this to pass flags through.
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });

  registerNetworkCommands(program, cli);
  registerRunCommands(program, cli);
  registerSandboxCommands(program, cli);
  registerStatsCommands(program, cli);
  registerVersionCommand(program, cli);
  registerEventsCommand(program, cli);
  registerInfoCommand(program, cli);
  registerDaemonCommand(program, deps.loadDaemon);

  for (const command of walk(program)) command.showHelpAfterError(`See '${fullName(command)} --help'.`);
  return program;
}

/** Runs one command line (without node and script) and returns the exit status. */
export async function runCli(argv: readonly string[], io: Io, deps: CliDeps = {}): Promise<number> {
  const program = buildProgram(io, deps);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    return report(err, io);
  }
}

function report(err: unknown, io: Io): number {
  if (err instanceof CommanderError) {
    // commander has printed the message (or the help) already.
    const informational = ['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(err.code);
    return informational ? 0 : EXIT_USAGE;
  }
  if (err instanceof ExitStatus) {
    if (err.message) io.stderr.write(`${err.message}\n`);
    return err.code;
  }
  io.stderr.write(`${errorText(err)}\n`);
  return err instanceof UsageError ? EXIT_USAGE : 1;
}

/**
 * The command a command line names, found as commander would (global options and their values
 * skipped, subcommands by name or alias), without running it; the root for none.
 */
export function commandOf(program: CliCommand, argv: readonly string[]): CliCommand {
  let command = program;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') break;
    if (arg.startsWith('-') && arg.length > 1) {
      const flag = arg.startsWith('--') ? arg.split('=')[0] : arg.slice(0, 2);
      const option = command.options.find((o) => o.long === flag || o.short === flag);
      // A value in the same word (--host=x, -Hx) or the next one.
      const inline = arg.startsWith('--') ? arg.includes('=') : arg.length > 2;
      if (option && (option.required || option.optional) && !inline) i++;
      continue;
    }
    const sub = command.commands.find((c) => c.name() === arg || c.aliases().includes(arg)) as CliCommand | undefined;
    if (!sub) break;
    command = sub;
  }
  return command;
}

function* walk(command: CliCommand): Generator<CliCommand> {
  yield command;
  for (const sub of command.commands) yield* walk(sub as CliCommand);
}

function fullName(command: CliCommand): string {
  const names: string[] = [];
  for (let c: CliCommand | null = command; c; c = c.parent as CliCommand | null) names.unshift(c.name());
  return names.join(' ');
}
