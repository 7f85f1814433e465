/**
 * `bpfnet info`: the daemon's view of this host: version, datapath, uplink, counts, table use
 * and which optional kernel features are there (GET /info's Bpfnet part), or --format json.
 */
import type { Command } from 'commander';
import type { BpfnetInfo } from '../../api/routes/info.js';
import type { CliContext } from '../context.js';
import { writeChunk } from '../io.js';
import { Template } from '../template.js';

export function formatInfo(b: BpfnetInfo): string {
  const lines = [
    `Version:          ${b.Version}`,
    `Datapath:         ${b.Datapath}`,
    `Instance:         ${b.Instance}`,
    `Root:             ${b.Root}`,
    `Uplink:           ${b.Uplink.Interface} ${b.Uplink.Address}`,
    `Networks:         ${b.Counts.Networks}`,
    `Sandboxes:        ${b.Counts.Sandboxes} (${b.Counts.SandboxesRunning} running)`,
    `Endpoints:        ${b.Counts.Endpoints}`,
    `Published ports:  ${b.Counts.PublishedPorts}`,
  ];
  if (b.Tables.length > 0) {
    lines.push('Tables:');
    for (const t of b.Tables) lines.push(`  ${t.name.padEnd(16)}${t.entries}/${t.capacity} (${((100 * t.entries) / Math.max(1, t.capacity)).toFixed(1)}%)`);
  }
  lines.push('Kernel features:');
  for (const f of b.KernelFeatures) lines.push(`  ${f.name.padEnd(24)}${f.available ? 'yes' : 'no '}  ${f.note}`);
  return `${lines.join('\n')}\n`;
}

export function registerInfoCommand(program: Command, cli: CliContext): void {
  program
    .command('info')
    .description("Display bpfnet's view of this host: datapath, uplink, tables, kernel features")
    .option('--format <format>', "'json' or a Go-like template such as '{{.Datapath}}'")
    .action(async (flags: { format?: string }) => {
      const info = await cli.client().json<{ Bpfnet: BpfnetInfo }>('GET', '/info');
      const b = info.Bpfnet;
      const template = flags.format ? Template.parse(flags.format === 'json' ? '{{json .}}' : flags.format) : undefined;
      await writeChunk(cli.io.stdout, template ? `${template.execute(b)}\n` : formatInfo(b));
    });
}
