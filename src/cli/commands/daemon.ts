/**
 * `bpfnet daemon`: parses the daemon's flags, then hands over to src/daemon/main.ts, loaded
 * only now so that every other command starts without the daemon's code (and its native
 * modules).
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { isIPv4 } from '../../ipam/ipv4.js';
import { parseIpAddressPool } from '../../ipam/pools.js';
import type { DaemonOptions, DatapathKind, LogLevel, RunDaemon } from '../daemon-options.js';
import type { CliCommand } from '../command.js';
import { ExitStatus } from '../errors.js';

/** Loads the daemon module; tests pass their own. */
export type DaemonLoader = () => Promise<unknown>;

// Resolved at run time from a variable: tsc must not need the module to compile the CLI, and the
// bundle (dist/src/cli/bundle/, as deep as this file) leaves it out and loads it from dist/src/daemon/.
const DAEMON_MODULE = new URL('../../daemon/main.js', import.meta.url).href;

export const loadDaemonModule: DaemonLoader = () => import(DAEMON_MODULE);

interface DaemonFlags {
  root: string;
  socket: string;
  datapath: DatapathKind;
  uplink?: string;
  bip: string;
  defaultAddressPool: string[];
  ipv6?: boolean;
  fixedCidrV6?: string;
  instance: string;
  logLevel: LogLevel;
  logFormat: 'logfmt' | 'json';
  ebpfCtMax?: string;
  ebpfGcInterval?: string;
  ebpfTimeouts?: string;
  ebpfUplinkShortcut?: string;
  dns: string[];
  metricsAddr?: string;
  metricsPerEndpoint?: boolean;
  configFile?: string;
  clusterStore?: string;
  advertiseAddr?: string;
  clusterLeaseTtl?: string;
  dockerPlugin?: boolean;
  dockerPluginDir?: string;
}

export function registerDaemonCommand(program: Command, load: DaemonLoader = loadDaemonModule): void {
  (program.command('daemon') as CliCommand)
    .runsLocally()
    .description('Run the bpfnet daemon (one per host)')
    .option('--config-file <path>', 'Daemon configuration file: every flag as a key (flags win over it)', '/etc/bpfnet/daemon.json')
    .option('--root <dir>', 'Root directory of persistent state', '/var/lib/bpfnet')
    .option('--socket <path>', 'Unix socket to listen on', '/run/bpfnet.sock')
    .addOption(new Option('--datapath <kind>', 'Packet datapath').choices(['ebpf', 'iptables']).default('ebpf'))
    .option('--uplink <iface>', 'Uplink interface (default: the interface of the default route)')
    .option('--bip <cidr>', "Default bridge's gateway address and prefix", '172.17.0.1/16')
    .option('--default-address-pool <base=CIDR,size=N>', 'Default address pool for user-defined networks (repeatable)', collectPool, [])
    .option('--ipv6', 'Enable IPv6 on the default bridge')
    .option('--fixed-cidr-v6 <cidr>', "The default bridge's IPv6 subnet (with --ipv6; default: one of the IPv6 pools)")
    .option('--instance <name>', 'Prefix of the kernel objects this daemon creates', 'bpfnet')
    .addOption(new Option('-l, --log-level <level>', 'Set the logging level').choices(['debug', 'info', 'warn', 'error']).default('info'))
    .addOption(new Option('--log-format <format>', 'Log lines on stderr').choices(['logfmt', 'json']).default('logfmt'))
    .option('--ebpf-ct-max <entries>', 'ebpf datapath: connection-tracking table entries')
    .option('--ebpf-gc-interval <seconds>', 'ebpf datapath: seconds between connection-table GC passes')
    .option('--ebpf-timeouts <name=seconds,...>', 'ebpf datapath: connection timeouts, e.g. udp=30,tcp-established=3600')
    .addOption(new Option('--ebpf-uplink-shortcut <on|off>', 'ebpf datapath: hand replies to a veth uplink\'s peer directly (a NIC has no peer; off measures a NIC-like uplink)').choices(['on', 'off']))
    .option('--dns <ip>', "DNS server for sandboxes and upstream of the embedded DNS (repeatable; default: the host's resolv.conf)", collectDns, [])
    .option('--metrics-addr <host:port>', 'Also serve GET /metrics over TCP at this address (default: only on the API socket)')
    .option('--metrics-per-endpoint', 'Add per-endpoint metric series (one per endpoint)')
    .option('--cluster-store <etcd://host:port,...>', 'Join a cluster: global-scope state (overlay networks, addresses, endpoints) in etcd')
    .option('--advertise-addr <ip>', 'Address other hosts reach this one at (default: the uplink address)')
    .option('--cluster-lease-ttl <seconds>', "Seconds a host's endpoints outlive its last keepalive to etcd (default 10)")
    .option('--docker-plugin', "Serve Docker's network and IPAM plugin API (docker network create -d bpfnet --ipam-driver bpfnet)")
    .option('--docker-plugin-dir <dir>', 'Directory of the plugin socket bpfnet.sock (implies --docker-plugin)', '/run/docker/plugins')
    .action(async (flags: DaemonFlags, command: Command) => {
      // Only what was typed: the daemon puts its config file between these and the defaults.
      const typed = (key: keyof DaemonFlags) => command.getOptionValueSource(key) === 'cli';
      const options: Record<string, unknown> = {};
      for (const key of Object.keys(flags) as Array<keyof DaemonFlags>) if (typed(key)) options[key] = flags[key];
      const runDaemon = await loadRunDaemon(load);
      const status = await runDaemon(options as DaemonOptions);
      if (typeof status === 'number' && status !== 0) throw new ExitStatus(status);
    });
}

async function loadRunDaemon(load: DaemonLoader): Promise<RunDaemon> {
  let mod: unknown;
  try {
    mod = await load();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('daemon/main')) {
      throw new ExitStatus(1, 'daemon not built: dist/src/daemon/main.js is missing (run scripts/bootstrap.sh)');
    }
    throw err;
  }
  const runDaemon = (mod as { runDaemon?: unknown } | null)?.runDaemon;
  if (typeof runDaemon !== 'function') throw new ExitStatus(1, 'daemon not built: src/daemon/main.js exports no runDaemon(options)');
  return runDaemon as RunDaemon;
}

/** Checked here with the daemon's own parser, so a typo fails before anything starts. */
function collectPool(value: string, previous: readonly string[]): string[] {
  try {
    parseIpAddressPool(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return [...previous, value];
}

function collectDns(value: string, previous: readonly string[]): string[] {
  if (!isIPv4(value)) throw new InvalidArgumentError(`"${value}" is not an IPv4 address`);
  return [...previous, value];
}
