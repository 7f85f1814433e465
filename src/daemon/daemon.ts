/**
 * The daemon: opens the store, makes sure the predefined networks exist, reconciles the
 * kernel with the store, and serves the API on its unix socket.
 */
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { networkRoutes } from '../api/routes/networks.js';
import { eventRoutes } from '../api/routes/events.js';
import { flowRoutes } from '../api/routes/flows.js';
import { FlowLog, type FlowOwner } from '../observe/flow-log.js';
import { isObservable } from '../datapath/datapath.js';
import { infoRoutes, type BpfnetInfo } from '../api/routes/info.js';
import { metricsRoutes } from '../api/routes/metrics.js';
import { observeRoutes } from '../api/routes/observe.js';
import { sandboxRoutes } from '../api/routes/sandboxes.js';
import { BPFNET_VERSION, systemRoutes } from '../api/routes/system.js';
import { Router } from '../api/router.js';
import type { Datapath } from '../datapath/datapath.js';
import { createDatapath } from '../datapath/factory.js';
import { BridgeDriver } from '../drivers/bridge/bridge-driver.js';
import { HostDriver } from '../drivers/host/host-driver.js';
import { NullDriver } from '../drivers/none/null-driver.js';
import { EmbeddedDns } from '../dns/embedded-dns.js';
import { Attachments } from '../networks/attachments.js';
import { NetworkService } from '../networks/service.js';
import { SandboxService } from '../sandboxes/service.js';
import { ObservedStore } from '../store/observed-store.js';
import { SqliteStore } from '../store/sqlite-store.js';
import type { Store } from '../store/store.js';
import { Mutex } from '../util/mutex.js';
import { DatapathSnapshotReader } from '../metrics/datapath-snapshot.js';
import { EngineMetrics } from '../metrics/engine-metrics.js';
import { detectKernelFeatures, type KernelFeature } from '../observe/kernel-features.js';
import { NetworkEvents } from '../observe/network-events.js';
import { interfaceIndex } from '../datapath/libbpf/bpf.js';
import type { DaemonLogger, Logger } from './log.js';
import { applyTimeouts } from './live-timeouts.js';
import type { DaemonSettings } from './options.js';
import { defaultBridge, hostNetwork, noneNetwork } from './predefined.js';
import { reconcile } from './reconcile.js';

async function socketInUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class Daemon {
  #settings: DaemonSettings;
  readonly #log: Logger;
  #store?: Store;
  #datapath?: Datapath;
  #server?: Server;
  #dns?: EmbeddedDns;
  #events?: NetworkEvents;
  #flows?: FlowLog;
  #snapshots?: DatapathSnapshotReader;
  #metricsServer?: Server;
  metrics?: EngineMetrics;
  networks?: NetworkService;
  sandboxes?: SandboxService;

  constructor(settings: DaemonSettings, log: Logger) {
    this.#settings = settings;
    this.#log = log;
  }

  async start(): Promise<void> {
    const { engine: cfg, socket } = this.#settings;
    if (existsSync(socket)) {
      if (await socketInUse(socket)) throw new Error(`another daemon is already listening on ${socket}`);
      unlinkSync(socket);
    }
    // Observed: the embedded DNS rebuilds its names whenever anything was written.
    const store = new ObservedStore(new SqliteStore(cfg.root));
    this.#store = store;
    const datapath = await createDatapath(this.#settings.datapath, {
      linkPrefix: cfg.linkPrefix,
      instance: cfg.instance,
      uplink: cfg.uplink,
      root: cfg.root,
      ebpf: this.#settings.ebpf,
    });
    this.#datapath = datapath;
    const mutex = new Mutex();
    const drivers = { bridge: new BridgeDriver(), host: new HostDriver(), null: new NullDriver() };
    const attachments = new Attachments(store, drivers, datapath, cfg);
    const networks = new NetworkService(store, attachments, datapath, cfg, mutex);
    const sandboxes = new SandboxService(store, networks, cfg, mutex);
    this.networks = networks;
    this.sandboxes = sandboxes;
    const snapshots = datapath.kind === 'ebpf' ? new DatapathSnapshotReader(cfg.instance) : undefined;
    this.#snapshots = snapshots;
    const bridgeIndex = new Map<string, number>();
    const networkByBridge = () => {
      const out = new Map<number, string>();
      for (const n of store.networks.all()) {
        if (!n.device) continue;
        let ifx = bridgeIndex.get(n.device);
        if (ifx === undefined) {
          try {
            bridgeIndex.set(n.device, (ifx = interfaceIndex(null, n.device)));
          } catch {
            continue; // not built (yet)
          }
        }
        out.set(ifx, n.name);
      }
      return out;
    };
    const endpointByIfindex = () => {
      const out = new Map<number, string>();
      for (const e of store.endpoints.all()) {
        if (e.state !== 'active' || !e.hostIfname) continue;
        try {
          out.set(interfaceIndex(null, e.hostIfname), `${store.sandboxes.get(e.sandboxId)?.name ?? e.sandboxId}/${e.ifname}`);
        } catch {
          /* gone meanwhile */
        }
      }
      return out;
    };
    const counts = () => ({
      networks: store.networks.all().length,
      sandboxes: store.sandboxes.all().length,
      endpoints: store.endpoints.all().filter((e) => e.state === 'active').length,
      publishedPorts: store.ports.all().length,
    });
    const metrics = new EngineMetrics({
      ...(snapshots ? { datapath: () => snapshots.read() } : {}),
      inventory: { networkByBridge, endpointByIfindex, counts },
      datapathKind: datapath.kind,
      version: BPFNET_VERSION,
      perEndpoint: this.#settings.metrics.perEndpoint,
    });
    this.metrics = metrics;
    const dns = new EmbeddedDns({ store, servers: this.#settings.dns, hostResolvConf: cfg.hostResolvConf, log: this.#log, observe: (a, t) => metrics.observeDns(a, t) });
    this.#dns = dns;
    sandboxes.resolverFor = (sb) => dns.resolverFor(sb);
    networks.listeners.add(() => dns.sync());
    const events = new NetworkEvents(store);
    this.#events = events;
    networks.listeners.add(() => events.check());
    attachments.listeners.add(() => events.check());
    events.watch();

    this.#ensurePredefined(store, networks);
    const t0 = Date.now();
    const report = await reconcile(store, networks, sandboxes, datapath, cfg, this.#log);
    metrics.observeReconcile({
      undoneCreations: report.undoneCreations,
      finishedRemovals: report.finishedRemovals,
      undoneEndpoints: report.undoneEndpoints,
      rebuiltEndpoints: report.rebuiltEndpoints,
      strays: report.strayNamespaces.length + report.strayLinks.length,
    });
    events.check();
    this.#log.info(
      `reconciled in ${Date.now() - t0} ms: ${store.networks.all().length} networks, ${store.sandboxes.all().length} sandboxes` +
        (report.undoneCreations + report.finishedRemovals + report.undoneEndpoints + report.rebuiltEndpoints > 0
          ? `; undid ${report.undoneCreations} creations and ${report.undoneEndpoints} endpoints, finished ${report.finishedRemovals} removals, rebuilt ${report.rebuiltEndpoints} endpoints`
          : '') +
        (report.strayNamespaces.length + report.strayLinks.length > 0 ? `; removed strays ${[...report.strayNamespaces, ...report.strayLinks].join(', ')}` : ''),
    );

    await dns.sync();
    this.#log.info(`embedded DNS on ${dns.listening.map((a) => `${a}:53`).join(', ') || 'no networks yet'}, upstreams ${dns.upstreams.map((u) => u.address).join(', ')}`);

    const router = new Router(`bpfnet/${BPFNET_VERSION} (linux)`);
    systemRoutes(router);
    networkRoutes(router, networks, store);
    sandboxRoutes(router, sandboxes, store, (netns) => (netns ? `/run/netns/${netns}` : cfg.hostNetnsPath));
    observeRoutes(router, datapath, sandboxes, store);
    metricsRoutes(router, metrics);
    eventRoutes(router, events);
    const ownerOf = (match: (hostIfname: string) => boolean): FlowOwner | undefined => {
      const ep = store.endpoints.all().find((e) => e.state === 'active' && e.hostIfname !== undefined && match(e.hostIfname));
      const sb = ep ? store.sandboxes.get(ep.sandboxId) : undefined;
      return ep && sb ? { sandbox: sb.name, sandboxId: sb.id, network: store.networks.get(ep.networkId)?.name ?? ep.networkId } : undefined;
    };
    // ifindex -> owner, rebuilt only when the store moved: a busy flow log must not resolve names per flow.
    let owners = { version: -1, map: new Map<number, FlowOwner>() };
    const ownersByIfindex = () => {
      if (owners.version === store.version) return owners.map;
      const map = new Map<number, FlowOwner>();
      for (const e of store.endpoints.all()) {
        if (e.state !== 'active' || !e.hostIfname) continue;
        const sb = store.sandboxes.get(e.sandboxId);
        if (!sb) continue;
        try {
          map.set(interfaceIndex(null, e.hostIfname), { sandbox: sb.name, sandboxId: sb.id, network: store.networks.get(e.networkId)?.name ?? e.networkId });
        } catch {
          /* gone meanwhile */
        }
      }
      owners = { version: store.version, map };
      return map;
    };
    const flows =
      datapath.kind === 'ebpf' && isObservable(datapath)
        ? new FlowLog({
            pinRoot: join('/sys/fs/bpf', cfg.instance),
            ownerOf: (ifindex) => ownersByIfindex().get(ifindex),
            ownerOfInterface: (ifname) => ownerOf((name) => name === ifname),
            onDrop: (l) => datapath.onDrop(l),
          })
        : undefined;
    this.#flows = flows;
    flowRoutes(router, flows, datapath.kind);
    const features = detectKernelFeatures();
    infoRoutes(router, async () => this.#info(store, datapath.kind, await features));
    const server = createServer((req, res) => {
      this.#countRequest(req, res);
      router.handle(req, res).catch((err: unknown) => {
        this.#log.error(`unhandled: ${(err as Error).stack ?? err}`);
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    mkdirSync(dirname(socket), { recursive: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, () => resolve());
    });
    chmodSync(socket, 0o660);
    this.#server = server;
    const tcp = this.#settings.metrics.address;
    if (tcp) {
      // Only /metrics over TCP: the rest of the API stays on the socket its file mode guards.
      const metricsOnly = new Router(`bpfnet/${BPFNET_VERSION} (linux)`);
      metricsRoutes(metricsOnly, metrics);
      const ms = createServer((req, res) => {
        this.#countRequest(req, res);
        metricsOnly.handle(req, res).catch(() => res.destroy());
      });
      await new Promise<void>((resolve, reject) => {
        ms.once('error', (err) => reject(new Error(`--metrics-addr ${tcp.host}:${tcp.port}: ${err.message}`)));
        ms.listen(tcp.port, tcp.host, () => resolve());
      });
      this.#metricsServer = ms;
      this.#log.info(`metrics on http://${tcp.host}:${tcp.port}/metrics`);
    }
    this.#log.info(`bpfnet ${BPFNET_VERSION} (${datapath.kind} datapath, instance ${cfg.instance}, uplink ${cfg.uplink.ifname} ${cfg.uplink.ipv4}) listening on ${socket}`);
  }

  #countRequest(req: IncomingMessage, res: ServerResponse): void {
    const started = process.hrtime.bigint();
    // The raw path, cut at '?': routeLabel bounds it; parsing it as a URL could throw on hostile input.
    const path = (req.url ?? '/').split('?', 1)[0];
    const done = () => this.metrics?.observeRequest(req.method ?? 'GET', path, res.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
    // Streams (events, drops) are counted when they end, like any other response.
    let counted = false;
    const once = () => {
      if (!counted) {
        counted = true;
        done();
      }
    };
    res.once('finish', once);
    res.once('close', once);
  }

  async #info(store: Store, kind: string, features: KernelFeature[]): Promise<BpfnetInfo> {
    const cfg = this.#settings.engine;
    const snap = (() => {
      try {
        return this.#snapshots?.read();
      } catch {
        return undefined;
      }
    })();
    const sandboxes = store.sandboxes.all();
    return {
      Version: BPFNET_VERSION,
      Datapath: kind,
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

  /**
   * SIGHUP: applies what can change live (log level, DNS upstreams, connection-table timeouts)
   * and returns the settings that changed but need a restart.
   */
  reload(next: DaemonSettings, log: DaemonLogger): { applied: string[]; needRestart: string[] } {
    const cur = this.#settings;
    const applied: string[] = [];
    const needRestart: string[] = [];
    if (next.logLevel !== cur.logLevel) {
      log.setLevel(next.logLevel);
      applied.push(`log-level=${next.logLevel}`);
    }
    if (JSON.stringify(next.dns) !== JSON.stringify(cur.dns)) {
      this.#dns?.setServers(next.dns);
      applied.push(`dns=${next.dns.join(',') || '(host resolvers)'}`);
    }
    if (JSON.stringify(next.ebpf.timeouts ?? {}) !== JSON.stringify(cur.ebpf.timeouts ?? {})) {
      if (this.#datapath?.kind === 'ebpf') {
        applyTimeouts(join('/sys/fs/bpf', cur.engine.instance), next.ebpf.timeouts ?? {});
        applied.push(`ebpf-timeouts=${Object.entries(next.ebpf.timeouts ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '(defaults)'}`);
      } else needRestart.push('ebpf-timeouts (iptables datapath)');
    }
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
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
    ];
    for (const [name, a, b] of fixed) if (!same(a, b)) needRestart.push(name);
    // What was applied is the new baseline; what needs a restart keeps reporting until then.
    this.#settings = { ...cur, logLevel: next.logLevel, dns: next.dns, ebpf: { ...cur.ebpf, timeouts: next.ebpf.timeouts } };
    return { applied, needRestart };
  }

  #ensurePredefined(store: Store, networks: NetworkService): void {
    const byName = new Map(store.networks.all().map((n) => [n.name, n]));
    const wanted = defaultBridge(this.#settings.engine);
    const current = byName.get('bridge');
    if (current && current.subnet !== wanted.subnet) {
      if (store.endpoints.forNetwork(current.id).length > 0) {
        this.#log.warn(`--bip ${wanted.gateway} differs from the stored default bridge ${current.subnet}, which has endpoints: keeping ${current.subnet}`);
      } else {
        store.transaction(() => {
          store.networks.delete(current.id);
          store.ipam.dropPool(current.id);
        });
        byName.delete('bridge');
      }
    }
    if (!byName.has('bridge')) networks.insert(wanted);
    if (!byName.has('host')) networks.insert(hostNetwork());
    if (!byName.has('none')) networks.insert(noneNetwork());
  }

  /** Stops serving; the kernel state (namespaces, forwarding) stays as it is. */
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    this.#server?.closeAllConnections?.();
    await new Promise<void>((resolve) => (this.#metricsServer ? this.#metricsServer.close(() => resolve()) : resolve()));
    this.#metricsServer?.closeAllConnections?.();
    this.#events?.close();
    this.#flows?.close();
    this.#snapshots?.close();
    await this.#dns?.stop();
    await this.#datapath?.stop();
    this.#store?.close();
    if (existsSync(this.#settings.socket)) unlinkSync(this.#settings.socket);
  }
}
