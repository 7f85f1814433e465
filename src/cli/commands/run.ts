/**
 * `bpfnet run` and `bpfnet exec`: start a sandbox (optionally with a process attached) and run
 * commands inside one. Both hand every word after the first operand to the process, as docker
 * does, so `bpfnet exec web ping -c 1 db` needs no `--`.
 */
import { Option, type Command } from 'commander';
import type { SandboxCreateRequest, SandboxCreateResponse } from '../../api/types.js';
import { errorText, segment } from '../client.js';
import type { CliContext } from '../context.js';
import { EXIT_USAGE, ExitStatus } from '../errors.js';
import { relayFrames } from '../frames.js';
import { collect, collectValid, expandEnv, validateExtraHost, validateIpAddress } from '../options.js';

export function registerRunCommands(program: Command, cli: CliContext): void {
  registerRun(program, cli);
  registerExec(program, cli);
}

interface RunFlags {
  detach?: boolean;
  name: string;
  network?: string;
  net?: string;
  ip?: string;
  ip6?: string;
  networkAlias: string[];
  netAlias: string[];
  publish: string[];
  hostname?: string;
  addHost: string[];
  dns: string[];
  dnsSearch: string[];
}

function registerRun(program: Command, cli: CliContext): void {
  program
    .command('run')
    .description('Create a sandbox and optionally run a process in it')
    .usage('[OPTIONS] --name NAME [COMMAND] [ARG...]')
    .argument('[command...]')
    // -h is --hostname, as in docker run.
    .helpOption('--help', 'Print usage')
    .option('-d, --detach', 'Run the process in the background and print the sandbox ID')
    .requiredOption('--name <name>', 'Assign a name to the sandbox')
    .option('--network <network>', 'Connect the sandbox to a network ("bridge", "host", "none" or a user-defined one)')
    .addOption(new Option('--net <network>').hideHelp())
    .option('--ip <address>', 'IPv4 address (e.g., 172.30.100.104)')
    .option('--ip6 <address>', 'IPv6 address (e.g., 2001:db8::33)')
    .option('--network-alias <alias>', 'Add network-scoped alias for the sandbox', collect, [])
    .addOption(new Option('--net-alias <alias>').argParser(collect).default([]).hideHelp())
    .option('-p, --publish <spec>', "Publish a sandbox's port(s) to the host", collect, [])
    .option('-h, --hostname <name>', 'Sandbox host name')
    .option('--add-host <host:ip>', 'Add a custom host-to-IP mapping (host:ip)', collectValid(validateExtraHost), [])
    .option('--dns <ip>', 'Set custom DNS servers', collectValid(validateIpAddress), [])
    .option('--dns-search <domain>', 'Set custom DNS search domains', collect, [])
    .passThroughOptions()
    .action(async (command: string[], flags: RunFlags) => {
      const detach = Boolean(flags.detach) || command.length === 0;
      let status: number;
      try {
        const body = sandboxCreateBody(flags, command, detach);
        const reply = await cli.client().json<SandboxCreateResponse>('POST', '/sandboxes/create', { body });
        for (const warning of reply.Warnings ?? []) cli.printErr(`WARNING: ${warning}\n`);
        if (detach) {
          cli.print(`${reply.Id}\n`);
          return;
        }
        status = await relayFrames(cli, 'POST', `/sandboxes/${segment(reply.Id)}/start`, { query: { attach: 1 } });
      } catch (err) {
        // As docker run: 125 when run itself failed, so it never looks like the process's own status.
        if (err instanceof ExitStatus) throw err;
        throw new ExitStatus(EXIT_USAGE, errorText(err));
      }
      if (status !== 0) throw new ExitStatus(status);
    });
}

/** The create request: only what was given, so the daemon's defaults apply to the rest. */
export function sandboxCreateBody(flags: RunFlags, command: readonly string[], start: boolean): SandboxCreateRequest {
  const network = flags.network ?? flags.net;
  const aliases = [...flags.networkAlias, ...flags.netAlias];
  return {
    Name: flags.name,
    ...(network ? { Network: network } : {}),
    ...(flags.ip ? { IPv4Address: flags.ip } : {}),
    ...(flags.ip6 ? { IPv6Address: flags.ip6 } : {}),
    ...(aliases.length ? { Aliases: aliases } : {}),
    ...(flags.publish.length ? { Publish: flags.publish } : {}),
    ...(flags.hostname ? { Hostname: flags.hostname } : {}),
    ...(flags.addHost.length ? { ExtraHosts: flags.addHost } : {}),
    ...(flags.dns.length ? { Dns: flags.dns } : {}),
    ...(flags.dnsSearch.length ? { DnsSearch: flags.dnsSearch } : {}),
    ...(command.length ? { Cmd: [...command] } : {}),
    Start: start,
  };
}

function registerExec(program: Command, cli: CliContext): void {
  program
    .command('exec')
    .description('Execute a command in a sandbox')
    .usage('[OPTIONS] SANDBOX COMMAND [ARG...]')
    .argument('<sandbox>')
    .argument('<command>')
    .argument('[args...]')
    .option('-e, --env <KEY=VALUE>', 'Set environment variables', collectValid((v) => expandEnv(v, cli.io.env)), [])
    .passThroughOptions()
    .action(async (sandbox: string, command: string, args: string[], flags: { env: string[] }) => {
      const body = { Cmd: [command, ...args], ...(flags.env.length ? { Env: flags.env } : {}) };
      const status = await relayFrames(cli, 'POST', `/sandboxes/${segment(sandbox)}/exec`, { body });
      if (status !== 0) throw new ExitStatus(status);
    });
}
