/** `bpfnet ps`, `inspect`, `rm` and `rename`: docker's container listing, inspection, removal and renaming, for sandboxes. */
import type { Command } from 'commander';
import type { SandboxSummary } from '../../api/types.js';
import type { EndpointView } from '../../api/routes/endpoints.js';
import { ApiError, segment } from '../client.js';
import type { CliContext } from '../context.js';
import { ExitStatus } from '../errors.js';
import {
  displayablePorts,
  ellipsis,
  goQuote,
  goTimeString,
  renderList,
  row,
  timeAgo,
  truncateId,
  type ListSpec,
} from '../format.js';
import { printInspect } from '../inspect.js';
import { collectFilter, type Filters } from '../options.js';

export function registerSandboxCommands(program: Command, cli: CliContext): void {
  registerPs(program, cli);
  registerInspect(program, cli);
  registerRm(program, cli);
  registerRename(program, cli);
}

// ---------- ps ----------

export function sandboxList(now: number): ListSpec<SandboxSummary> {
  return {
    table: 'table {{.ID}}\t{{.Name}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Networks}}',
    headers: {
      ID: 'SANDBOX ID',
      Name: 'NAME',
      Names: 'NAMES',
      Command: 'COMMAND',
      CreatedAt: 'CREATED AT',
      RunningFor: 'CREATED',
      Status: 'STATUS',
      State: 'STATE',
      Ports: 'PORTS',
      Networks: 'NETWORKS',
    },
    row(s, trunc) {
      const command = s.Command ?? '';
      return row({
        ID: trunc ? truncateId(s.Id ?? '') : (s.Id ?? ''),
        Name: s.Name ?? '',
        Names: s.Name ?? '',
        Command: goQuote(trunc ? ellipsis(command, 20) : command),
        // docker's Created is whole seconds: so is this column.
        CreatedAt: goTimeString(s.Created?.replace(/\.\d+/, '')),
        RunningFor: timeAgo(s.Created ?? '', now),
        Status: s.Status ?? '',
        State: s.State ?? '',
        Ports: displayablePorts(s.Ports ?? []),
        Networks: [...(s.Networks ?? [])].sort().join(','),
      });
    },
  };
}

interface PsFlags {
  all?: boolean;
  quiet?: boolean;
  format?: string;
  trunc: boolean;
  filter?: Filters;
}

function registerPs(program: Command, cli: CliContext): void {
  program
    .command('ps')
    .description('List sandboxes')
    .option('-a, --all', 'Show all sandboxes (default hides exited ones)')
    .option('-f, --filter <filter>', 'Filter output based on conditions provided (e.g. "name=web")', collectFilter)
    .option('--format <format>', "Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'")
    .option('--no-trunc', "Don't truncate output")
    .option('-q, --quiet', 'Only display sandbox IDs')
    .action(async (flags: PsFlags) => {
      const all = await cli
        .client()
        .json<SandboxSummary[]>('GET', '/sandboxes', { query: { filters: flags.filter?.toQuery() } });
      // A sandbox without a process stays "created" while its namespace is up: only exited ones
      // are hidden by default, unlike docker, which also hides created containers.
      const shown = (all ?? []).filter((s) => flags.all || s.State !== 'exited');
      const newestFirst = shown
        .map((s, i) => ({ s, i, at: Date.parse(s.Created ?? '') || 0 }))
        .sort((a, b) => b.at - a.at || a.i - b.i)
        .map(({ s }) => s);
      cli.print(renderList(newestFirst, sandboxList(cli.io.now()), { format: flags.format, quiet: flags.quiet, trunc: flags.trunc }));
      // Containers of other engines (dockerd on the plugin, CNI) follow in their own table: docker ps cannot show their ports.
      if (flags.format || flags.quiet) return;
      const foreign = await cli
        .client()
        .json<EndpointView[]>('GET', '/endpoints')
        .catch(() => [] as EndpointView[]);
      if (foreign && foreign.length > 0) cli.print('\n' + renderList(foreign, foreignList, { trunc: flags.trunc }));
    });
}

/** The endpoints of other engines' containers (Docker's on the plugin), with their published ports. */
const foreignList: ListSpec<EndpointView> = {
  table: 'table {{.ID}}\t{{.Client}}\t{{.ClientID}}\t{{.Network}}\t{{.IPv4}}\t{{.Ports}}',
  headers: { ID: 'ENDPOINT ID', Client: 'ENGINE', ClientID: 'ENGINE ENDPOINT', Network: 'NETWORK', IPv4: 'IPV4', Ports: 'PORTS' },
  row(e, trunc) {
    return row({
      ID: trunc ? truncateId(e.Id) : e.Id,
      Client: e.Client || '-',
      ClientID: trunc && e.Client === 'docker' ? truncateId(e.Key) : e.Key,
      Network: e.Network,
      IPv4: e.IPv4Address,
      Ports: displayablePorts(e.Ports.map((p) => ({ IP: p.HostIp || '0.0.0.0', PrivatePort: p.ContainerPort, PublicPort: p.HostPort, Type: p.Protocol }))),
    });
  },
};

// ---------- inspect ----------

function registerInspect(program: Command, cli: CliContext): void {
  program
    .command('inspect')
    .description('Display detailed information on one or more sandboxes')
    .argument('<sandbox...>')
    .option('-f, --format <format>', "Format output using a custom template: 'json', or a Go-like template")
    .action(async (refs: string[], flags: { format?: string }) => {
      const client = cli.client();
      // Not a sandbox: an endpoint of another engine's container (by bpfnet's or Docker's endpoint id).
      await printInspect(cli, refs, flags.format, (ref) =>
        client.text('GET', `/sandboxes/${segment(ref)}`).catch((err: unknown) => {
          if (!(err instanceof ApiError) || err.status !== 404) throw err;
          return client.text('GET', `/endpoints/${segment(ref)}`).catch(() => {
            throw err;
          });
        }),
      );
    });
}

// ---------- rm ----------

function registerRm(program: Command, cli: CliContext): void {
  program
    .command('rm')
    .description('Remove one or more sandboxes')
    .argument('<sandbox...>')
    .option('-f, --force', 'Kill the process of a running sandbox and remove it; no error if it does not exist')
    .action(async (refs: string[], flags: { force?: boolean }) => {
      const client = cli.client();
      const errors: string[] = [];
      for (const ref of refs) {
        try {
          await client.send('DELETE', `/sandboxes/${segment(ref)}`, { query: { force: flags.force ? 1 : undefined } });
          cli.print(`${ref}\n`);
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          if (flags.force && err.status === 404) continue;
          errors.push(err.display);
        }
      }
      if (errors.length > 0) throw new ExitStatus(1, errors.join('\n'));
    });
}

// ---------- rename ----------

function registerRename(program: Command, cli: CliContext): void {
  program
    .command('rename')
    .description('Rename a sandbox (its DNS name changes at once)')
    .argument('<sandbox>')
    .argument('<new-name>')
    .action(async (ref: string, name: string) => {
      await cli.client().send('POST', `/sandboxes/${segment(ref)}/rename`, { query: { name } });
    });
}
