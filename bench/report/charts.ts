/** SVG charts rendered headlessly with vega-lite -> vega (renderer "none": no canvas needed). */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { BenchResults } from '../results-model.js';
import { SETUP_ORDER, cells, sweepRows } from './analysis.js';

const COLORS: Record<string, string> = { host: '#424242', veth: '#9e9e9e', routing: '#757575', floor: '#a5d6a7', ebpf: '#2e7d32', 'ebpf-shortcut': '#81c784', iptables: '#c62828', docker28: '#ef9a9a', cni: '#1565c0', docker: '#ff8f00', 'docker+bpfnet': '#00838f', 'docker+floor': '#80deea' };
const colorScale = (setups: string[]) => ({ domain: setups, range: setups.map((s) => COLORS[s] ?? '#000') });

interface Bar {
  group: string;
  setup: string;
  median: number;
  min: number;
  max: number;
}

/** Bars of one metric's medians with min–max whiskers, grouped by workload, one colour per setup. */
function barRows(r: BenchResults, ids: Array<[string, string]>, metric: string): Bar[] {
  const rows: Bar[] = [];
  for (const [id, label] of ids) {
    for (const c of cells(r, id, metric)) if (c.summary.n > 0) rows.push({ group: label, setup: c.setup, median: c.summary.median, min: c.summary.min, max: c.summary.max });
  }
  return rows;
}

function groupedBars(title: string, yTitle: string, rows: Bar[], groups: string[]): TopLevelSpec {
  const setups = SETUP_ORDER.filter((s) => rows.some((x) => x.setup === s));
  // Group names carry "\n" for two-line labels.
  const x = { field: 'group', type: 'nominal' as const, sort: groups, title: null, axis: { labelAngle: 0, labelLimit: 200, labelExpr: "split(datum.label, '\\n')" } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: Math.max(480, groups.length * 110),
    height: 260,
    data: { values: rows },
    encoding: { x, xOffset: { field: 'setup', sort: setups } },
    layer: [
      {
        mark: 'bar',
        encoding: {
          // The whiskers' tops must fit: vega-lite sizes the shared axis from the bars alone.
          y: { field: 'median', type: 'quantitative', title: yTitle, scale: { domain: [0, top(rows)], nice: true } },
          color: { field: 'setup', type: 'nominal', scale: colorScale(setups), sort: setups, title: 'setup' },
        },
      },
      { mark: { type: 'rule', color: '#222' }, encoding: { y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } } },
    ],
    config: { font: 'sans-serif' },
  } as TopLevelSpec;
}

/** The largest whisker top, so the y axis covers it. */
function top(rows: ReadonlyArray<{ max: number }>): number {
  return Math.max(0, ...rows.map((r) => r.max).filter(Number.isFinite));
}

async function toSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

export async function renderCharts(r: BenchResults): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const tcp: Array<[string, string]> = [
    ['tcp-same-network-1', 'same network\n1 stream'],
    ['tcp-same-network-2', 'same network\n2 streams'],
    ['tcp-published-1', 'published port\n1 stream'],
    ['tcp-published-2', 'published port\n2 streams'],
    ['tcp-egress-1', 'egress (masq.)\n1 stream'],
    ['tcp-egress-2', 'egress (masq.)\n2 streams'],
  ];
  const tcpRows = barRows(r, tcp, 'gbps');
  out.throughput = await toSvg(groupedBars('TCP throughput (iperf3), median and min–max', 'Gb/s', tcpRows, tcp.map((t) => t[1]).filter((g) => tcpRows.some((x) => x.group === g))));

  const req: Array<[string, string]> = [
    ['http-keepalive-published', 'HTTP keep-alive\npublished port'],
    ['http-keepalive-same-network', 'HTTP keep-alive\nsame network'],
    ['http-close-published', 'HTTP conn/request\npublished port'],
    ['conn-published', 'new connections\npublished port'],
    ['conn-egress', 'new connections\negress (masq.)'],
  ];
  const reqRows = barRows(r, req, 'rps');
  out.requests = await toSvg(groupedBars('Requests and new connections per second, median and min–max', 'per second', reqRows, req.map((t) => t[1]).filter((g) => reqRows.some((x) => x.group === g))));

  const latency: TopLevelSpec[] = [];
  for (const pct of ['p50Us', 'p99Us'] as const) {
    const rows = barRows(r, req.slice(0, 3), pct);
    const groups = req.slice(0, 3).map((t) => t[1]).filter((g) => rows.some((x) => x.group === g));
    latency.push(groupedBars(`HTTP latency ${pct.slice(0, 3)} (µs), median and min–max`, `${pct.slice(0, 3)} µs`, rows, groups));
  }
  out.latency = await toSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    hconcat: latency.map((spec) => {
      const { $schema: _schema, config: _config, ...rest } = spec as unknown as Record<string, unknown>;
      return { ...rest, width: 360 };
    }),
    config: { font: 'sans-serif' },
  } as TopLevelSpec);

  const sweep = sweepRows(r).filter((x) => x.rate.n > 0);
  const setups = SETUP_ORDER.filter((s) => sweep.some((x) => x.setup === s));
  out.scaling = await toSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'New connections/s to the last published port vs number of published ports',
    width: 480,
    height: 260,
    data: { values: sweep.map((x) => ({ setup: x.setup, ports: x.ports, median: x.rate.median, min: x.rate.min, max: x.rate.max })) },
    encoding: {
      x: { field: 'ports', type: 'quantitative', scale: { type: 'log' }, title: 'published ports (log scale)', axis: { values: r.sweep.ports, format: ',' } },
      color: { field: 'setup', type: 'nominal', scale: colorScale(setups), sort: setups, title: 'setup' },
    },
    layer: [
      {
        mark: { type: 'line', point: true },
        encoding: { y: { field: 'median', type: 'quantitative', title: 'new connections/s', scale: { domain: [0, top(sweep.map((x) => ({ max: x.rate.max })))], nice: true } } },
      },
      { mark: 'rule', encoding: { y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } } },
    ],
    config: { font: 'sans-serif' },
  } as TopLevelSpec);
  return out;
}
