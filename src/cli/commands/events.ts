/**
 * `bpfnet events`: the daemon's network events as they happen (docker events' options and
 * line format: `TIME network ACTION ID (key=value, ...)`), or --format json / a template.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { writeChunk } from '../io.js';
import { Template } from '../template.js';

interface EventMessage {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  time: number;
  timeNano: number;
}

/** docker's default line: local time with nanoseconds, type, action, id, sorted attributes. */
export function formatEvent(e: EventMessage): string {
  const t = new Date(Math.floor(e.timeNano / 1e6));
  const ns = String(e.timeNano % 1e9).padStart(9, '0');
  const attrs = Object.keys(e.Actor.Attributes)
    .sort()
    .map((k) => `${k}=${e.Actor.Attributes[k]}`)
    .join(', ');
  return `${t.toISOString().replace(/\.\d{3}Z$/, `.${ns}Z`)} ${e.Type} ${e.Action} ${e.Actor.ID}${attrs ? ` (${attrs})` : ''}`;
}

function collect(value: string, previous: readonly string[]): string[] {
  return [...previous, value];
}

/** `--filter key=value` (repeatable) -> the API's filters JSON. */
export function eventFilters(filters: readonly string[]): string | undefined {
  if (filters.length === 0) return undefined;
  const out: Record<string, Record<string, boolean>> = {};
  for (const f of filters) {
    const i = f.indexOf('=');
    if (i <= 0) throw new Error(`bad format of filter (expected name=value): ${f}`);
    (out[f.slice(0, i)] ??= {})[f.slice(i + 1)] = true;
  }
  return JSON.stringify(out);
}

export function registerEventsCommand(program: Command, cli: CliContext): void {
  program
    .command('events')
    .description('Get real time network events from the daemon')
    .option('-f, --filter <filter>', 'Filter output based on conditions provided (type, event, network, container, driver)', collect, [])
    .option('--since <time>', 'Show events created since this Unix timestamp or RFC 3339 time')
    .option('--until <time>', 'Stream events until this Unix timestamp or RFC 3339 time')
    .option('--format <format>', "Format each event: 'json' or a Go-like template such as '{{.Action}}'")
    .action(async (flags: { filter: string[]; since?: string; until?: string; format?: string }) => {
      const template = flags.format ? Template.parse(flags.format === 'json' ? '{{json .}}' : flags.format) : undefined;
      const controller = new AbortController();
      const stopListening = cli.io.onInterrupt(() => controller.abort());
      try {
        await cli.client().stream(
          'GET',
          '/events',
          { signal: controller.signal, query: { filters: eventFilters(flags.filter), since: flags.since, until: flags.until } },
          async (value) => {
            const e = value as EventMessage;
            await writeChunk(cli.io.stdout, `${template ? template.execute(e) : formatEvent(e)}\n`);
          },
        );
      } finally {
        stopListening();
      }
    });
}
