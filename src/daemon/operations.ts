/**
 * What an operator watches and turns, kept apart from the daemon's core: Prometheus metrics
 * (and their optional TCP listener), network events, the flow log, GET /info, and the SIGHUP
 * reload of what can change live. The daemon builds one and calls it at a few points.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { eventRoutes } from '../api/routes/events.js';
import { flowRoutes } from '../api/routes/flows.js';
import { infoRoutes, type BpfnetInfo } from '../api/routes/info.js';
import { metricsRoutes } from '../api/routes/metrics.js';
import { BPFNET_VERSION } from '../api/routes/system.js';
import { Router } from '../api/router.js';
import { isObservable, type Datapath } from '../datapath/datapath.js';
import { interfaceIndex } from '../datapath/libbpf/bpf.js';
import type { EmbeddedDns } from '../dns/embedded-dns.js';
import { DatapathSnapshotReader } from '../metrics/datapath-snapshot.js';
import { EngineMetrics } from '../metrics/engine-metrics.js';
import type { Attachments } from '../networks/attachments.js';
import type { NetworkService } from '../networks/service.js';
import { FlowLog, type FlowOwner } from '../observe/flow-log.js';
import { detectKernelFeatures, type KernelFeature } from '../observe/kernel-features.js';
import { NetworkEvents } from '../observe/network-events.js';
import type { ObservedStore } from '../store/observed-store.js';
import { applyTimeouts } from './live-timeouts.js';
import type { DaemonLogger, Logger } from './log.js';
import type { DaemonSettings } from './options.js';
import type { ReconcileReport } from './reconcile.js';

export class Operations {
  readonly metrics: EngineMetrics;
  readonly events: NetworkEvents;
  readonly flows?: FlowLog;
  readonly #settings: DaemonSettings;
  readonly #store: ObservedStore;
  readonly #datapath: Datapath;
  readonly #log: Logger;
  readonly #snapshots?: DatapathSnapshotReader;
  readonly #features: Promise<KernelFeature[]>;
  readonly #bridgeIndex = new Map<string, number>();
  #owners = { version: -1, map: new Map<number, FlowOwner>() };
  #metricsServer?: Server;

  constructor(settings: DaemonSettings, store: ObservedStore, datapath: Datapath, log: Logger) {
    this.#settings = settings;
    this.#store = store;
    this.#datapath = datapath;
    this.#log = log;
    const instance = settings.engine.instance;
    const snapshots = datapath.kind === 'ebpf' ? new DatapathSnapshotReader(instance) : undefined;
    this.#snapshots = snapshots;
    this.metrics = new EngineMetrics({
      ...(snapshots ? { datapath: () => snapshots.read() } : {}),
      inventory: {
        networkByBridge: () => this.#networkByBridge(),
        endpointByIfindex: () => new Map([...this.#ownersByIfindex()].map(([ifx, o]) => [ifx, `${o.sandbox}/${o.ifname}`])),
        counts: () => ({
          networks: store.networks.all().length,
          sandboxes: store.sandboxes.all().length,
          endpoints: store.endpoints.all().filter((e) => e.state === 'active').length,
          publishedPorts: store.ports.all().length,
        }),
      },
      datapathKind: datapath.kind,
      version: BPFNET_VERSION,
      perEndpoint: settings.metrics.perEndpoint,
      kernelDns: () => this.kernelDns?.(),
    });
    this.events = new NetworkEvents(store);
    if (datapath.kind === 'ebpf' && isObservable(datapath))
      this.flows = new FlowLog({
        pinRoot: join('/sys/fs/bpf', instance),
        ownerOf: (ifindex) => this.#ownersByIfindex().get(ifindex),
        ownerOfInterface: (ifname) => [...this.#ownersByIfindex().values()].find((o) => o.hostIfname === ifname),
        onDrop: (l) => datapath.onDrop(l),
      });
    this.#features = detectKernelFeatures();
  }

  /** The in-kernel resolver's counters, once the embedded DNS exists. */
  kernelDns?: () => { answered: number } | undefined;

  /** For the embedded DNS's `observe` option. */
  readonly observeDns = (answer: Parameters<EngineMetrics['observeDns']>[0], upstreamSeconds?: number): void => this.metrics.observeDns(answer, upstreamSeconds);

  /** Network events follow every change the services announce, and the store's version for the rest. */
  watch(networks: NetworkService, attachments: Attachments): void {
    networks.listeners.add(() => this.events.check());
    attachments.listeners.add(() => this.events.check());
    this.events.watch();
  }

  observeReconcile(report: ReconcileReport): void {
    this.metrics.observeReconcile({
      undoneCreations: report.undoneCreations,
      finishedRemovals: report.finishedRemovals,
      undoneEndpoints: report.undoneEndpoints,
      rebuiltEndpoints: report.rebuiltEndpoints,
      strays: report.strayNamespaces.length + report.strayLinks.length,
    });
    this.events.check();
  }

  /** GET /metrics, /events, /events/flows, /info. */
  routes(router: Router): void {
    metricsRoutes(router, this.metrics);
    eventRoutes(router, this.events);
    flowRoutes(router, this.flows, this.#datapath.kind);
    infoRoutes(router, async () => this.#info(await this.#features));
  }

  /** Counts one API request in the metrics when its response ends. */
  countRequest(req: IncomingMessage, res: ServerResponse): void {
    const started = process.hrtime.bigint();
    // The raw path, cut at '?': routeLabel bounds it; parsing it as a URL could throw on hostile input.
    const path = (req.url ?? '/').split('?', 1)[0];
    let counted = false;
    const once = () => {
      if (counted) return;
      counted = true;
      this.metrics.observeRequest(req.method ?? 'GET', path, res.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
    };
    res.once('finish', once);
    res.once('close', once);
  }

  /** --metrics-addr: /metrics alone over TCP (the rest of the API stays on the socket its file mode guards). */
  async listen(): Promise<void> {
    const tcp = this.#settings.metrics.address;
    if (!tcp) return;
    const router = new Router(`bpfnet/${BPFNET_VERSION} (linux)`);
    metricsRoutes(router, this.metrics);
    const server = createServer((req, res) => {
      this.countRequest(req, res);
      router.handle(req, res).catch(() => res.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`--metrics-addr ${tcp.host}:${tcp.port}: ${err.message}`)));
      server.listen(tcp.port, tcp.host, () => resolve());
    });
    this.#metricsServer = server;
    this.#log.info(`metrics on http://${tcp.host}:${tcp.port}/metrics`);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.#metricsServer ? this.#metricsServer.close(() => resolve()) : resolve()));
    this.#metricsServer?.closeAllConnections?.();
    this.events.close();
    this.flows?.close();
    this.#snapshots?.close();
  }

  /**
   * SIGHUP: applies what can change live (log level, DNS upstreams, connection-table timeouts)
   * and names the settings that changed but need a restart. Returns the settings now in force.
   */
  reload(cur: DaemonSettings, next: DaemonSettings, log: DaemonLogger, dns: EmbeddedDns | undefined): { applied: string[]; needRestart: string[]; settings: DaemonSettings } {
    const applied: string[] = [];
    const needRestart: string[] = [];
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    if (next.logLevel !== cur.logLevel) {
      log.setLevel(next.logLevel);
      applied.push(`log-level=${next.logLevel}`);
    }
    if (!same(next.dns, cur.dns)) {
      dns?.setServers(next.dns);
      applied.push(`dns=${next.dns.join(',') || '(host resolvers)'}`);
    }
    if (!same(next.ebpf.timeouts ?? {}, cur.ebpf.timeouts ?? {})) {
      if (this.#datapath.kind === 'ebpf') {
        applyTimeouts(join('/sys/fs/bpf', cur.engine.instance), next.ebpf.timeouts ?? {});
        applied.push(`ebpf-timeouts=${Object.entries(next.ebpf.timeouts ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '(defaults)'}`);
      } else needRestart.push('ebpf-timeouts (iptables datapath)');
    }
    const fixed: Array<[string, unknown, unknown]> = [
      ['socket', cur.socket, next.socket],
      ['datapath', cur.datapath, next.datapath],
      ['log-format', cur.logFormat, next.logFormat],
      ['root', cur.engine.root, next.engine.root],
      ['instance', cur.engine.instance, next.engine.instance],
      ['bip', cur.engine.bip, next.engine.bip],
      ['default-address-pool', cur.engine.pools, next.engine.pools],
      ['uplink', cur.engine.uplink, next.engine.uplink],
      ['ebpf-ct-max', cur.ebpf.ctMax, next.ebpf.ctMax],
      ['ebpf-gc-interval', cur.ebpf.gcIntervalMs, next.ebpf.gcIntervalMs],
      ['metrics-addr', cur.metrics.address, next.metrics.address],
      ['metrics-per-endpoint', cur.metrics.perEndpoint, next.metrics.perEndpoint],
      ['cluster-store/advertise-addr/cluster-lease-ttl', cur.cluster, next.cluster],
    ];
    for (const [name, a, b] of fixed) if (!same(a, b)) needRestart.push(name);
    // What was applied is the new baseline; what needs a restart keeps being reported until then.
    return { applied, needRestart, settings: { ...cur, logLevel: next.logLevel, dns: next.dns, ebpf: { ...cur.ebpf, timeouts: next.ebpf.timeouts } } };
  }

  /** Bridge ifindex -> network name (ifindexes remembered: bridges outlive daemon restarts). */
  #networkByBridge(): Map<number, string> {
    const out = new Map<number, string>();
    for (const n of this.#store.networks.all()) {
      if (!n.device) continue;
      let ifx = this.#bridgeIndex.get(n.device);
      if (ifx === undefined) {
        try {
          this.#bridgeIndex.set(n.device, (ifx = interfaceIndex(null, n.device)));
        } catch {
          continue; // not built (yet)
        }
      }
      out.set(ifx, n.name);
    }
    return out;
  }

  /** Host veth ifindex -> its sandbox and network, rebuilt only when the store moved (one lookup per endpoint). */
  #ownersByIfindex(): Map<number, FlowOwner & { ifname: string; hostIfname: string }> {
    const store = this.#store;
    if (this.#owners.version === store.version) return this.#owners.map as Map<number, FlowOwner & { ifname: string; hostIfname: string }>;
    const map = new Map<number, FlowOwner & { ifname: string; hostIfname: string }>();
    for (const e of store.endpoints.all()) {
      if (e.state !== 'active' || !e.hostIfname) continue;
      const sb = store.sandboxes.get(e.sandboxId);
      if (!sb) continue;
      try {
        map.set(interfaceIndex(null, e.hostIfname), {
          sandbox: sb.name,
          sandboxId: sb.id,
          network: store.networks.get(e.networkId)?.name ?? e.networkId,
          ifname: e.ifname,
          hostIfname: e.hostIfname,
        });
      } catch {
        /* gone meanwhile */
      }
    }
    this.#owners = { version: store.version, map };
    return map;
  }

  #info(features: KernelFeature[]): BpfnetInfo {
    const cfg = this.#settings.engine;
    const store = this.#store;
    let snap;
    try {
      snap = this.#snapshots?.read();
    } catch {
      snap = undefined;
    }
    const sandboxes = store.sandboxes.all();
    return {
      Version: BPFNET_VERSION,
      Datapath: this.#datapath.kind,
      Instance: cfg.instance,
      Uplink: { Interface: cfg.uplink.ifname, Address: cfg.uplink.ipv4 },
      Root: cfg.root,
      Counts: {
        Networks: store.networks.all().length,
        Sandboxes: sandboxes.length,
        SandboxesRunning: sandboxes.filter((s) => s.state === 'running').length,
        Endpoints: store.endpoints.all().filter((e) => e.state === 'active').length,
        PublishedPorts: store.ports.all().length,
      },
      Tables: snap
        ? [
            { name: 'conntrack', entries: snap.conntrack.entries, capacity: snap.conntrack.capacity },
            { name: 'endpoints', entries: snap.endpoints.entries, capacity: snap.endpoints.capacity },
            { name: 'published-ports', entries: snap.ports.entries, capacity: snap.ports.capacity },
          ]
        : [],
      KernelFeatures: features,
    };
  }
}

