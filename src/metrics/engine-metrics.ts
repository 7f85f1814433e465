/**
 * Every Prometheus metric bpfnet exports, in one registry (prom-client). Datapath counters
 * are read at scrape time from one batch dump per map (datapath-snapshot.ts); the daemon's
 * own events (API requests, DNS answers, reconcile runs) are counted as they happen. Labels
 * are bounded: network names, drop reasons, protocols, route patterns; per-endpoint series
 * only with --metrics-per-endpoint.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DROP_REASONS, StatsSlot } from '../datapath/abi.js';
import type { DatapathSnapshot } from './datapath-snapshot.js';
import { routeLabel } from './route-label.js';

/** What the metrics need to know about the engine's state at scrape time. */
export interface MetricsInventory {
  /** Bridge ifindex -> network name, for the bridges the datapath knows. */
  networkByBridge(): Map<number, string>;
  /** Host veth ifindex -> "sandbox/ifname" (only read with per-endpoint series on). */
  endpointByIfindex(): Map<number, string>;
  counts(): { networks: number; sandboxes: number; endpoints: number; publishedPorts: number };
}

export interface MetricsOptions {
  /** Reads the datapath's maps; undefined for a datapath that keeps no counters (iptables). */
  readonly datapath?: () => DatapathSnapshot;
  readonly inventory: MetricsInventory;
  readonly datapathKind: string;
  readonly version: string;
  readonly perEndpoint?: boolean;
  /** Queries the in-kernel resolver answered so far (bpf/dns.bpf.c); undefined without it. */
  readonly kernelDns?: () => { answered: number } | undefined;
}

/** How a DNS query was answered, for bpfnet_dns_queries_total{answer}. */
export type DnsAnswer = 'local' | 'forwarded' | 'nxdomain' | 'servfail' | 'refused' | 'dropped' | 'other';

export interface ReconcileRepairs {
  undoneCreations: number;
  finishedRemovals: number;
  undoneEndpoints: number;
  rebuiltEndpoints: number;
  strays: number;
}

/** The methods the API serves; anything else is one `other` value. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE']);

export class EngineMetrics {
  readonly registry = new Registry();
  readonly #apiRequests: Counter<'route' | 'method' | 'status'>;
  readonly #apiDuration: Histogram<'route' | 'method'>;
  readonly #dnsQueries: Counter<'answer'>;
  readonly #dnsUpstream: Histogram<'outcome'>;
  readonly #reconcileRuns: Counter;
  readonly #reconcileRepairs: Counter<'what'>;
  readonly #scrapeErrors: Counter;

  constructor(opts: MetricsOptions) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'bpfnet_process_' });
    new Gauge({ name: 'bpfnet_build_info', help: 'bpfnet version and datapath (always 1)', labelNames: ['version', 'datapath'], registers: [r] }).set({ version: opts.version, datapath: opts.datapathKind }, 1);
    this.#apiRequests = new Counter({ name: 'bpfnet_api_requests_total', help: 'API requests by route pattern, method and status', labelNames: ['route', 'method', 'status'], registers: [r] });
    this.#apiDuration = new Histogram({
      name: 'bpfnet_api_request_duration_seconds',
      help: 'API request latency by route pattern (streams: their whole duration)',
      labelNames: ['route', 'method'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [r],
    });
    // Queries the kernel answered never reach the daemon: their count is read from its map at scrape time.
    let kernelSeen = 0;
    const kernelDns = opts.kernelDns;
    this.#dnsQueries = new Counter({
      name: 'bpfnet_dns_queries_total',
      help: 'Embedded DNS queries by how they were answered (kernel: by the in-kernel resolver)',
      labelNames: ['answer'],
      registers: [r],
      collect() {
        const answered = kernelDns?.()?.answered;
        if (answered === undefined || answered < kernelSeen) return;
        this.inc({ answer: 'kernel' }, answered - kernelSeen);
        kernelSeen = answered;
      },
    });
    this.#dnsUpstream = new Histogram({
      name: 'bpfnet_dns_upstream_duration_seconds',
      help: 'Time to get an answer from the upstream resolvers (all attempts of one query)',
      labelNames: ['outcome'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [r],
    });
    this.#reconcileRuns = new Counter({ name: 'bpfnet_reconcile_runs_total', help: 'Reconciliations of the kernel with the store', registers: [r] });
    this.#reconcileRepairs = new Counter({ name: 'bpfnet_reconcile_repairs_total', help: 'What reconciliations repaired, by kind', labelNames: ['what'], registers: [r] });
    this.#scrapeErrors = new Counter({ name: 'bpfnet_metrics_datapath_errors_total', help: 'Scrapes that could not read the datapath maps', registers: [r] });

    const inv = opts.inventory;
    const count = (name: string, help: string, key: keyof ReturnType<MetricsInventory['counts']>) =>
      new Gauge({ name, help, registers: [r], collect() { this.set(inv.counts()[key]); } });
    count('bpfnet_networks', 'Networks in the store (predefined included)', 'networks');
    count('bpfnet_sandboxes', 'Sandboxes in the store', 'sandboxes');
    count('bpfnet_endpoints', 'Active endpoints in the store', 'endpoints');
    count('bpfnet_published_ports', 'Published ports in the store', 'publishedPorts');
    if (opts.datapath) this.#datapathMetrics(opts.datapath, inv, opts.perEndpoint ?? false);
  }

  #datapathMetrics(read: () => DatapathSnapshot, inv: MetricsInventory, perEndpoint: boolean): void {
    const r = this.registry;
    // One dump per scrape shared by every datapath metric: collect() of the first one reads it.
    let current: { at: number; snap: DatapathSnapshot | undefined } = { at: 0, snap: undefined };
    const snapshot = (): DatapathSnapshot | undefined => {
      const now = Date.now();
      if (now - current.at < 200) return current.snap;
      let snap: DatapathSnapshot | undefined;
      try {
        snap = read();
      } catch {
        this.#scrapeErrors.inc();
      }
      current = { at: now, snap };
      return snap;
    };
    const networkOf = (s: DatapathSnapshot, names: Map<number, string>, slot: number): string => {
      if (slot === StatsSlot.UPLINK) return 'uplink';
      if (slot === StatsSlot.HOST) return 'host';
      // A bridge's own slot (bpf/bridge.bpf.c: the host's traffic into its network) is its network's.
      const bridge = s.endpointNetwork.get(slot) ?? (names.has(slot) ? slot : undefined);
      return (bridge !== undefined ? names.get(bridge) : undefined) ?? 'unknown';
    };
    // Every datapath series is rebuilt from the scrape's one snapshot: reset, then filled if the maps could be read.
    const fromSnapshot = <M extends Counter<string> | Gauge<string>>(make: (collect: (this: M) => void) => M, fill: (m: M, s: DatapathSnapshot) => void): M =>
      make(function collect(this: M) {
        const s = snapshot();
        this.reset();
        if (s) fill(this, s);
      });
    const counter = (name: string, help: string, labelNames: string[], fill: (c: Counter<string>, s: DatapathSnapshot) => void) =>
      fromSnapshot<Counter<string>>((collect) => new Counter({ name, help, labelNames, registers: [r], collect }), fill);
    const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge<string>, s: DatapathSnapshot) => void) =>
      fromSnapshot<Gauge<string>>((collect) => new Gauge({ name, help, labelNames, registers: [r], collect }), fill);
    const traffic = (field: 'Packets' | 'Bytes') =>
      counter(
        `bpfnet_datapath_${field.toLowerCase()}_total`,
        `${field} seen by the eBPF datapath, by network and direction (from_sandbox: sent by sandboxes; to_sandbox: delivered to them; on the uplink and host slots: received there)`,
        ['network', 'direction'],
        (m, s) => {
          const names = inv.networkByBridge();
          for (const [slot, c] of s.slots) {
            const network = networkOf(s, names, slot);
            const dir = slot === StatsSlot.UPLINK || slot === StatsSlot.HOST ? 'received' : 'to_sandbox';
            m.inc({ network, direction: dir }, c[`rx${field}`]);
            if (dir === 'to_sandbox') m.inc({ network, direction: 'from_sandbox' }, c[`tx${field}`]);
          }
        },
      );
    traffic('Packets');
    traffic('Bytes');
    counter('bpfnet_datapath_drops_total', 'Packets dropped by the eBPF datapath, by network (uplink, host) and reason', ['network', 'reason'], (m, s) => {
      const names = inv.networkByBridge();
      for (const [slot, c] of s.slots) {
        const network = networkOf(s, names, slot);
        c.drops.forEach((n, i) => {
          if (i > 0 && n > 0) m.inc({ network, reason: DROP_REASONS[i] }, n);
        });
      }
    });
    gauge('bpfnet_conntrack_entries', 'Connection-table entries by kind (a flow holds two)', ['kind'], (g, s) => {
      for (const [kind, n] of Object.entries(s.conntrack.byKind)) g.set({ kind }, n);
    });
    gauge('bpfnet_conntrack_capacity', 'Connection-table size (entries)', [], (g, s) => g.set(s.conntrack.capacity));
    gauge('bpfnet_nat_ports_in_use', 'Masquerade ports held by flows now', [], (g, s) => g.set(s.natPortsInUse));
    gauge('bpfnet_datapath_published_ports', 'Published-port table entries by protocol', ['protocol'], (g, s) => {
      for (const [protocol, n] of Object.entries(s.ports.byProtocol)) g.set({ protocol }, n);
    });
    gauge('bpfnet_datapath_published_ports_capacity', 'Published-port table size', [], (g, s) => g.set(s.ports.capacity));
    gauge('bpfnet_datapath_endpoints', 'Endpoint table entries', [], (g, s) => g.set(s.endpoints.entries));
    gauge('bpfnet_datapath_endpoints_capacity', 'Endpoint table size', [], (g, s) => g.set(s.endpoints.capacity));
    if (!perEndpoint) return;
    counter('bpfnet_endpoint_packets_total', 'Packets per endpoint (--metrics-per-endpoint), by direction', ['endpoint', 'direction'], (m, s) => {
      const names = inv.endpointByIfindex();
      for (const [slot, c] of s.slots) {
        const endpoint = names.get(slot);
        if (!endpoint) continue;
        m.inc({ endpoint, direction: 'from_sandbox' }, c.txPackets);
        m.inc({ endpoint, direction: 'to_sandbox' }, c.rxPackets);
      }
    });
  }

  /** Called once per API request when its response has been sent (or its headers, for streams). */
  observeRequest(rawMethod: string, path: string, status: number, seconds: number): void {
    const route = routeLabel(path);
    const method = METHODS.has(rawMethod) ? rawMethod : 'other';
    this.#apiRequests.inc({ route, method, status: String(status) });
    this.#apiDuration.observe({ route, method }, seconds);
  }

  observeDns(answer: DnsAnswer, upstreamSeconds?: number): void {
    this.#dnsQueries.inc({ answer });
    if (upstreamSeconds !== undefined) this.#dnsUpstream.observe({ outcome: answer === 'servfail' || answer === 'refused' ? 'failed' : 'answered' }, upstreamSeconds);
  }

  observeReconcile(repairs: ReconcileRepairs): void {
    this.#reconcileRuns.inc();
    for (const [what, n] of Object.entries(repairs)) this.#reconcileRepairs.inc({ what }, n);
  }

  /** The exposition text and its content type. */
  async expose(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}
