/** `bpfnet version`: client and daemon versions, laid out as `docker version` lays them out. */
import type { Command } from 'commander';
import { errorText } from '../client.js';
import type { CliContext } from '../context.js';
import { ExitStatus } from '../errors.js';
import { tabwrite } from '../format.js';
import { Template, TemplateError } from '../template.js';
import { CLI_VERSION } from '../version.js';

/** The Engine API's GET /version reply, the parts this command prints. */
interface ServerVersion {
  Platform?: { Name?: string };
  Components?: Array<{ Name: string; Version: string; Details?: Record<string, unknown> }>;
  Version?: string;
  ApiVersion?: string;
  MinAPIVersion?: string;
  GitCommit?: string;
  GoVersion?: string;
  Os?: string;
  Arch?: string;
  KernelVersion?: string;
  BuildTime?: string;
  Experimental?: boolean;
}

interface ClientVersion {
  Version: string;
  NodeVersion: string;
  Os: string;
  Arch: string;
  Host: string;
}

// Detail keys docker names in its Engine block, in its order.
const ENGINE_DETAILS: Array<[string, string]> = [
  ['GoVersion', 'Go version'],
  ['GitCommit', 'Git commit'],
  ['BuildTime', 'Built'],
  ['KernelVersion', 'Kernel version'],
  ['Experimental', 'Experimental'],
];

export function registerVersionCommand(program: Command, cli: CliContext): void {
  program
    .command('version')
    .description('Show the bpfnet version information')
    .option('-f, --format <format>', "Format output using a custom template: 'json' or a Go-like template")
    .action(async (flags: { format?: string }) => {
      const template = flags.format ? parseFormat(flags.format) : undefined;
      const client: ClientVersion = {
        Version: CLI_VERSION,
        NodeVersion: process.version,
        Os: process.platform,
        Arch: goArch(process.arch),
        Host: cli.client().address.url,
      };
      let server: ServerVersion | undefined;
      let failure: unknown;
      try {
        server = await cli.client().json<ServerVersion>('GET', '/version');
      } catch (err) {
        failure = err;
      }
      if (template) cli.print(template.execute({ Client: client, Server: server ?? null }) + '\n');
      else cli.print(renderVersion(client, server));
      if (failure !== undefined) throw new ExitStatus(1, errorText(failure));
    });
}

function parseFormat(format: string): Template {
  try {
    return Template.parse(format === 'json' ? '{{json .}}' : format);
  } catch (err) {
    if (err instanceof TemplateError) throw new ExitStatus(1, err.message);
    throw err;
  }
}

export function renderVersion(client: ClientVersion, server: ServerVersion | undefined): string {
  const lines = [
    'Client:',
    ` Version:\t${client.Version}`,
    ` Node.js version:\t${client.NodeVersion}`,
    ` OS/Arch:\t${client.Os}/${client.Arch}`,
    ` Host:\t${client.Host}`,
  ];
  if (server) {
    lines.push('', `Server:${server.Platform?.Name ? ` ${server.Platform.Name}` : ''}`);
    const components = server.Components?.length
      ? server.Components
      : [{ Name: 'Engine', Version: server.Version ?? '', Details: server as Record<string, unknown> }];
    for (const component of components) {
      lines.push(` ${component.Name}:`, `  Version:\t${component.Version}`);
      const details = component.Details ?? {};
      if (component.Name === 'Engine') {
        const api = details.ApiVersion ?? server.ApiVersion;
        const min = details.MinAPIVersion ?? server.MinAPIVersion;
        if (api !== undefined) lines.push(`  API version:\t${api}${min !== undefined ? ` (minimum version ${min})` : ''}`);
        for (const [key, label] of ENGINE_DETAILS) if (present(details[key])) lines.push(`  ${label}:\t${details[key]}`);
        if (present(details.Os)) lines.push(`  OS/Arch:\t${details.Os}/${details.Arch ?? ''}`);
      } else {
        for (const key of Object.keys(details).sort()) lines.push(`  ${key}:\t${details[key]}`);
      }
    }
  }
  return tabwrite(lines.join('\n') + '\n', { minWidth: 20, padding: 1 });
}

function present(value: unknown): boolean {
  return value !== undefined && value !== null && value !== '';
}

/** Node's architecture names, spelled as Go's GOARCH (what docker prints). */
function goArch(arch: string): string {
  return ({ x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64', ppc64: 'ppc64le' } as Record<string, string>)[arch] ?? arch;
}
