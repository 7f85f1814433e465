/**
 * `bpfnet stats` and `bpfnet monitor`: what the datapath counted and what it dropped.
 * Neither has a docker equivalent for the numbers shown, so the layout follows docker's
 * conventions (tables, --format, humanised sizes) rather than a particular command.
 */
import type { Command } from 'commander';
import type { DropEvent, SandboxStats, SandboxSummary } from '../../api/types.js';
import type { FlowRecord } from '../../observe/flow-log.js';
import { ApiError, segment, type Client } from '../client.js';
import type { CliContext } from '../context.js';
import { ExitStatus } from '../errors.js';
import { humanSize, renderList, row, truncateId, type ListSpec } from '../format.js';
import { writeChunk } from '../io.js';
import { Template } from '../template.js';

export function registerStatsCommands(program: Command, cli: CliContext): void {
  registerStats(program, cli);
  registerMonitor(program, cli);
}

// ---------- stats ----------

type Endpoint = SandboxStats['Endpoints'][number];

interface StatsRow {
  readonly sandbox: SandboxStats;
  /** Undefined for a sandbox without endpoints (host or none network). */
  readonly endpoint?: Endpoint;
}

const statsList: ListSpec<StatsRow> = {
  table:
    'table {{.ID}}\t{{.Name}}\t{{.Network}}\t{{.Interface}}\t{{.RxPackets}}\t{{.RxBytes}}\t{{.TxPackets}}\t{{.TxBytes}}\t{{.Drops}}',
  headers: {
    ID: 'SANDBOX ID',
    Name: 'NAME',
    Network: 'NETWORK',
    Interface: 'INTERFACE',
    RxPackets: 'RX PACKETS',
    RxBytes: 'RX BYTES',
    TxPackets: 'TX PACKETS',
    TxBytes: 'TX BYTES',
    Drops: 'DROPS',
  },
  row({ sandbox, endpoint }, trunc) {
    const id = sandbox.Id ?? '';
    const dash = '--';
    return row({
      ID: trunc ? truncateId(id) : id,
      Name: sandbox.Name ?? '',
      Network: endpoint?.Network ?? dash,
      Interface: endpoint?.InterfaceName ?? dash,
      RxPackets: endpoint ? String(endpoint.RxPackets) : dash,
      RxBytes: endpoint ? humanSize(endpoint.RxBytes, 3) : dash,
      TxPackets: endpoint ? String(endpoint.TxPackets) : dash,
      TxBytes: endpoint ? humanSize(endpoint.TxBytes, 3) : dash,
      Drops: endpoint ? formatDrops(endpoint.Drops ?? {}) : dash,
    });
  },
};

/** "0", or the total and each reason: "3 (no_route=1, policy=2)". */
export function formatDrops(drops: Readonly<Record<string, number>>): string {
  const reasons = Object.entries(drops)
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (reasons.length === 0) return '0';
  const total = reasons.reduce((sum, [, n]) => sum + n, 0);
  return `${total} (${reasons.map(([reason, n]) => `${reason}=${n}`).join(', ')})`;
}

function registerStats(program: Command, cli: CliContext): void {
  program
    .command('stats')
    .description("Show the datapath's counters for sandboxes (all that are not exited by default)")
    .argument('[sandbox...]')
    .option('--format <format>', "Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'")
    .option('--no-trunc', 'Do not truncate output')
    .action(async (refs: string[], flags: { format?: string; trunc: boolean }) => {
      const client = cli.client();
      const every = refs.length === 0;
      const targets = every
        ? (await client.json<SandboxSummary[]>('GET', '/sandboxes')).filter((s) => s.State !== 'exited').map((s) => s.Id)
        : refs;
      const rows: StatsRow[] = [];
      const errors = new Set<string>();
      for (const ref of targets) {
        try {
          const sandbox = await client.json<SandboxStats>('GET', `/sandboxes/${segment(ref)}/stats`);
          const endpoints = sandbox.Endpoints ?? [];
          if (endpoints.length === 0) rows.push({ sandbox });
          for (const endpoint of endpoints) rows.push({ sandbox, endpoint });
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          // Removed between the listing and now: not an error when covering every sandbox.
          if (every && err.status === 404 && !(await stillExists(client, ref))) continue;
          errors.add(err.display);
        }
      }
      if (rows.length > 0 || errors.size === 0) cli.print(renderList(rows, statsList, { format: flags.format, trunc: flags.trunc }));
      if (errors.size > 0) throw new ExitStatus(1, [...errors].join('\n'));
    });
}

/** Tells a sandbox that went away from a daemon that has no stats for it (both answer 404). */
async function stillExists(client: Client, ref: string): Promise<boolean> {
  try {
    await client.send('GET', `/sandboxes/${segment(ref)}`);
    return true;
  } catch (err) {
    return !(err instanceof ApiError && err.status === 404);
  }
}

// ---------- monitor ----------

/** One line per drop: `TIME reason=R proto SRC -> DST iface=IF`. */
export function formatDropEvent(e: DropEvent): string {
  return `${e.Time} reason=${e.Reason} ${e.Protocol} ${e.Source} -> ${e.Destination} iface=${e.Interface}`;
}

/** One line per flow-log record: `TIME EVENT PROTO SRC -> DST [KIND NAT-SRC -> NAT-DST] ...`. */
export function formatFlowRecord(r: FlowRecord): string {
  const parts = [r.Time, r.Event, r.Protocol, `${r.Source} -> ${r.Destination}`];
  if (r.Translated) parts.push(`${r.Kind ?? 'nat'} ${r.Translated.Source} -> ${r.Translated.Destination}`);
  if (r.Reason) parts.push(`reason=${r.Reason}`);
  if (r.Sandbox) parts.push(`sandbox=${r.Sandbox}`);
  if (r.Network) parts.push(`network=${r.Network}`);
  if (r.Packets && r.Bytes) parts.push(`packets=${r.Packets.Original}/${r.Packets.Reply} bytes=${r.Bytes.Original}/${r.Bytes.Reply}`);
  return parts.join(' ');
}

interface MonitorFlags {
  format?: string;
  flows?: boolean;
  sandbox?: string;
  network?: string;
  port?: string;
  verdict?: string;
}

function registerMonitor(program: Command, cli: CliContext): void {
  program
    .command('monitor')
    .description('Print the packets the datapath drops (or, with --flows, the flow log), as they happen, until interrupted')
    .option('--format <format>', "Format each event: 'json' or a Go-like template such as '{{.Reason}}'")
    .option('--flows', 'Flow log: new flows with their NAT translation, their end with byte counts, and drops')
    .option('--sandbox <name>', 'With --flows: only this sandbox (name or id)')
    .option('--network <name>', 'With --flows: only this network')
    .option('--port <port>', 'With --flows: only flows with this port on either side, before or after NAT')
    .option('--verdict <verdict>', 'With --flows: forwarded or dropped')
    .action(async (flags: MonitorFlags) => {
      const template =
        flags.format === undefined || flags.format === '' ? undefined : Template.parse(flags.format === 'json' ? '{{json .}}' : flags.format);
      if (!flags.flows && (flags.sandbox || flags.network || flags.port || flags.verdict))
        throw new ExitStatus(125, '--sandbox, --network, --port and --verdict filter the flow log: add --flows');
      const controller = new AbortController();
      const stopListening = cli.io.onInterrupt(() => controller.abort());
      try {
        if (flags.flows) {
          const query = { sandbox: flags.sandbox, network: flags.network, port: flags.port, verdict: flags.verdict };
          await cli.client().stream('GET', '/events/flows', { signal: controller.signal, query }, async (value) => {
            const r = value as FlowRecord;
            await writeChunk(cli.io.stdout, `${template ? template.execute(r) : formatFlowRecord(r)}\n`);
          });
          return;
        }
        await cli.client().stream('GET', '/events/drops', { signal: controller.signal }, async (value) => {
          const event = value as DropEvent;
          await writeChunk(cli.io.stdout, `${template ? template.execute(event) : formatDropEvent(event)}\n`);
        });
      } finally {
        stopListening();
      }
    });
}
