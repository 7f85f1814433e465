/**
 * `bpfnet network ...`: the docker CLI's network commands, sending the requests docker 28
 * sends (see reference/engine-api-networks.md) and printing what it prints.
 */
import type { Command } from 'commander';
import type { NetworkCreateResponse, NetworkInspectJson, NetworkPruneResponse } from '../../api/types.js';
import { ApiError, segment } from '../client.js';
import type { CliCommand } from '../command.js';
import type { CliContext } from '../context.js';
import { ExitStatus } from '../errors.js';
import { goTimeString, naturalCompare, renderList, row, truncateId, type ListSpec } from '../format.js';
import { printInspect } from '../inspect.js';
import { readLine } from '../io.js';
import { ipamConfig } from '../network-ipam.js';
import { collect, collectCsv, collectFilter, collectValid, Filters, keyValueMap, parseInteger, validateLabel } from '../options.js';

export function registerNetworkCommands(program: Command, cli: CliContext): void {
  const network = program.command('network').description('Manage networks');
  registerCreate(network, cli);
  registerLs(network, cli);
  registerInspect(network, cli);
  registerRm(network, cli);
  registerConnect(network, cli);
  registerDisconnect(network, cli);
  registerPrune(network, cli);
}

// ---------- create ----------

interface CreateFlags {
  driver: string;
  opt: string[];
  label: string[];
  internal?: boolean;
  attachable?: boolean;
  ingress?: boolean;
  ipv4?: boolean;
  ipv6?: boolean;
  scope: string;
  configOnly?: boolean;
  configFrom?: string;
  ipamDriver: string;
  ipamOpt: string[];
  subnet: string[];
  ipRange: string[];
  gateway: string[];
  auxAddress: string[];
}

function registerCreate(network: Command, cli: CliContext): void {
  network
    .command('create')
    .description('Create a network')
    .argument('<network>')
    .option('-d, --driver <driver>', 'Driver to manage the Network', 'bridge')
    .option('-o, --opt <key=value>', 'Set driver specific options', collect, [])
    .option('--label <label>', 'Set metadata on a network', collectValid(validateLabel), [])
    .option('--internal', 'Restrict external access to the network')
    .option('--attachable', 'Enable manual container attachment')
    .option('--ingress', 'Create swarm routing-mesh network')
    .option('--ipv4', 'Enable IPv4 address assignment (the default)')
    .option('--no-ipv4', 'Disable IPv4 address assignment')
    .option('--ipv6', 'Enable IPv6 address assignment')
    .option('--no-ipv6', 'Disable IPv6 address assignment')
    .option('--scope <scope>', "Control the network's scope", '')
    .option('--config-only', 'Create a configuration only network')
    .option('--config-from <network>', 'The network from which to copy the configuration')
    .option('--ipam-driver <driver>', 'IP Address Management Driver', 'default')
    .option('--ipam-opt <key=value>', 'Set IPAM driver specific options', collect, [])
    .option('--subnet <cidr>', 'Subnet in CIDR format that represents a network segment', collectCsv, [])
    .option('--ip-range <cidr>', 'Allocate container ip from a sub-range', collectCsv, [])
    .option('--gateway <ip>', 'IPv4 or IPv6 Gateway for the master subnet', collectCsv, [])
    .option('--aux-address <name=ip>', 'Auxiliary IPv4 or IPv6 addresses used by Network driver', collect, [])
    .action(async (name: string, flags: CreateFlags) => {
      const body = networkCreateBody(name, flags);
      const reply = await cli.client().json<NetworkCreateResponse>('POST', '/networks/create', { body });
      // docker prints the Id only; the Warning field stays unprinted.
      cli.print(`${reply.Id}\n`);
    });
}

/** The body docker's `network create` sends, keys in its order. */
export function networkCreateBody(name: string, flags: CreateFlags): Record<string, unknown> {
  const config = ipamConfig(flags.subnet, flags.ipRange, flags.gateway, flags.auxAddress);
  return {
    Driver: flags.driver,
    Scope: flags.scope,
    ...(flags.ipv4 === undefined ? {} : { EnableIPv4: flags.ipv4 }),
    ...(flags.ipv6 === undefined ? {} : { EnableIPv6: flags.ipv6 }),
    IPAM: { Driver: flags.ipamDriver, Options: keyValueMap(flags.ipamOpt), Config: config },
    Internal: Boolean(flags.internal),
    Attachable: Boolean(flags.attachable),
    Ingress: Boolean(flags.ingress),
    ConfigOnly: Boolean(flags.configOnly),
    ConfigFrom: flags.configFrom ? { Network: flags.configFrom } : null,
    Options: keyValueMap(flags.opt),
    Labels: keyValueMap(flags.label),
    Name: name,
  };
}

// ---------- ls ----------

const networkList: ListSpec<NetworkInspectJson> = {
  table: 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}',
  headers: {
    ID: 'NETWORK ID',
    Name: 'NAME',
    Driver: 'DRIVER',
    Scope: 'SCOPE',
    IPv4: 'IPV4',
    IPv6: 'IPV6',
    Internal: 'INTERNAL',
    Labels: 'LABELS',
    CreatedAt: 'CREATED AT',
  },
  row(n, trunc) {
    const labels = n.Labels ?? {};
    return row(
      {
        ID: trunc ? truncateId(n.Id ?? '') : (n.Id ?? ''),
        Name: n.Name ?? '',
        Driver: n.Driver ?? '',
        Scope: n.Scope ?? '',
        IPv4: String(Boolean(n.EnableIPv4)),
        IPv6: String(Boolean(n.EnableIPv6)),
        Internal: String(Boolean(n.Internal)),
        Labels: Object.entries(labels)
          .map(([k, v]) => `${k}=${v}`)
          .sort()
          .join(','),
        CreatedAt: goTimeString(n.Created),
      },
      { Label: (key) => labels[String(key)] ?? '' },
    );
  },
};

interface LsFlags {
  filter?: Filters;
  format?: string;
  trunc: boolean;
  quiet?: boolean;
}

function registerLs(network: Command, cli: CliContext): void {
  network
    .command('ls')
    .alias('list')
    .description('List networks')
    .option('-f, --filter <filter>', 'Provide filter values (e.g. "driver=bridge")', collectFilter)
    .option('--format <format>', "Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'")
    .option('--no-trunc', 'Do not truncate the output')
    .option('-q, --quiet', 'Only display network IDs')
    .action(async (flags: LsFlags) => {
      const networks = await cli
        .client()
        .json<NetworkInspectJson[]>('GET', '/networks', { query: { filters: flags.filter?.toQuery() } });
      const sorted = [...(networks ?? [])].sort((a, b) => naturalCompare(a.Name ?? '', b.Name ?? ''));
      cli.print(renderList(sorted, networkList, { format: flags.format, quiet: flags.quiet, trunc: flags.trunc }));
    });
}

// ---------- inspect ----------

function registerInspect(network: Command, cli: CliContext): void {
  network
    .command('inspect')
    .description('Display detailed information on one or more networks')
    .argument('<network...>')
    .option('-f, --format <format>', "Format output using a custom template: 'json', or a Go-like template")
    .option('-v, --verbose', 'Verbose output for diagnostics')
    .action(async (refs: string[], flags: { format?: string; verbose?: boolean }) => {
      const client = cli.client();
      await printInspect(cli, refs, flags.format, (ref) =>
        client.text('GET', `/networks/${segment(ref)}`, { query: { verbose: flags.verbose ? 'true' : undefined } }),
      );
    });
}

// ---------- rm ----------

function registerRm(network: Command, cli: CliContext): void {
  network
    .command('rm')
    .alias('remove')
    .description('Remove one or more networks')
    .argument('<network...>')
    .option('-f, --force', 'Do not error if the network does not exist')
    .action(async (refs: string[], flags: { force?: boolean }) => {
      const client = cli.client();
      let failed = false;
      for (const ref of refs) {
        try {
          await client.send('DELETE', `/networks/${segment(ref)}`);
          cli.print(`${ref}\n`);
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          if (flags.force && err.status === 404) continue;
          cli.printErr(`${err.display}\n`);
          failed = true;
        }
      }
      // docker ends a partly failed rm with this line too.
      if (failed) throw new ExitStatus(1, 'exit status 1');
    });
}

// ---------- connect / disconnect ----------

interface ConnectFlags {
  ip?: string;
  ip6?: string;
  alias: string[];
  link: string[];
  linkLocalIp: string[];
  driverOpt: string[];
  gwPriority: number;
}

function registerConnect(network: Command, cli: CliContext): void {
  network
    .command('connect')
    .description('Connect a sandbox to a network')
    .argument('<network>')
    .argument('<sandbox>')
    .option('--ip <ip>', 'IPv4 address (e.g., "172.30.100.104")')
    .option('--ip6 <ip>', 'IPv6 address (e.g., "2001:db8::33")')
    .option('--alias <alias>', 'Add network-scoped alias for the sandbox', collect, [])
    .option('--link <link>', 'Add link to another container', collect, [])
    .option('--link-local-ip <ip>', 'Add a link-local address for the sandbox', collect, [])
    .option('--driver-opt <key=value>', 'driver options for the network', collect, [])
    .option('--gw-priority <n>', 'Highest gw-priority provides the default gateway', parseInteger, 0)
    .action(async (net: string, sandbox: string, flags: ConnectFlags) => {
      await cli.client().send('POST', `/networks/${segment(net)}/connect`, { body: networkConnectBody(sandbox, flags) });
    });
}

/** docker's connect body: every EndpointSettings field present, the operational ones zero. */
export function networkConnectBody(sandbox: string, flags: ConnectFlags): Record<string, unknown> {
  return {
    Container: sandbox,
    EndpointConfig: {
      IPAMConfig: {
        ...(flags.ip ? { IPv4Address: flags.ip } : {}),
        ...(flags.ip6 ? { IPv6Address: flags.ip6 } : {}),
        ...(flags.linkLocalIp.length ? { LinkLocalIPs: flags.linkLocalIp } : {}),
      },
      Links: flags.link.length ? flags.link : null,
      Aliases: flags.alias,
      MacAddress: '',
      DriverOpts: keyValueMap(flags.driverOpt),
      GwPriority: flags.gwPriority,
      NetworkID: '',
      EndpointID: '',
      Gateway: '',
      IPAddress: '',
      IPPrefixLen: 0,
      IPv6Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      DNSNames: null,
    },
  };
}

function registerDisconnect(network: Command, cli: CliContext): void {
  network
    .command('disconnect')
    .description('Disconnect a sandbox from a network')
    .argument('<network>')
    .argument('<sandbox>')
    .option('-f, --force', 'Force the sandbox to disconnect from a network')
    .action(async (net: string, sandbox: string, flags: { force?: boolean }) => {
      await cli.client().send('POST', `/networks/${segment(net)}/disconnect`, {
        body: { Container: sandbox, Force: Boolean(flags.force) },
      });
    });
}

// ---------- prune ----------

const PRUNE_WARNING =
  'WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?';

function registerPrune(network: Command, cli: CliContext): void {
  (network.command('prune') as CliCommand)
    .runsLocally()
    .description('Remove all unused networks')
    .option('--filter <filter>', 'Provide filter values (e.g. "until=<timestamp>")', collectFilter)
    .option('-f, --force', 'Do not prompt for confirmation')
    .action(async (flags: { filter?: Filters; force?: boolean }) => {
      if (!flags.force && !(await confirm(cli, PRUNE_WARNING))) return;
      const reply = await cli
        .client()
        .json<NetworkPruneResponse>('POST', '/networks/prune', { query: { filters: flags.filter?.toQuery() } });
      const deleted = reply?.NetworksDeleted ?? [];
      if (deleted.length > 0) cli.print(`Deleted Networks:\n${deleted.map((n) => `${n}\n`).join('')}\n`);
    });
}

/** docker's PromptForConfirmation: only "y" (any case, surrounding space ignored) says yes. */
export async function confirm(cli: CliContext, message: string): Promise<boolean> {
  cli.print(`${message} [y/N] `);
  const answer = await readLine(cli.io.stdin);
  return answer.trim().toLowerCase() === 'y';
}
