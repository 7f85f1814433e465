/**
 * The daemon: opens the store, makes sure the predefined networks exist, reconciles the
 * kernel with the store, and serves the API on its unix socket.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { endpointRoutes } from '../api/routes/endpoints.js';
import { networkRoutes } from '../api/routes/networks.js';
import { observeRoutes } from '../api/routes/observe.js';
import { sandboxRoutes } from '../api/routes/sandboxes.js';
import { cliRoutes } from '../api/routes/cli.js';
import { BPFNET_VERSION, systemRoutes } from '../api/routes/system.js';
import { Router } from '../api/router.js';
import type { Datapath } from '../datapath/datapath.js';
import { KeyedEndpoints } from '../cni/keyed-endpoints.js';
import { createDatapath } from '../datapath/factory.js';
import { BridgeDriver } from '../drivers/bridge/bridge-driver.js';
import { HostDriver } from '../drivers/host/host-driver.js';
import { NullDriver } from '../drivers/none/null-driver.js';
import { OverlayDriver } from '../drivers/overlay/overlay-driver.js';
import { RemoteEndpoints } from '../drivers/overlay/remote-endpoints.js';
import { withRemoteNames } from '../drivers/overlay/remote-names.js';
import { feedRemoteEndpoints, joinedView } from '../drivers/overlay/cluster-feed.js';
import { feedGlobalNetworks } from '../drivers/overlay/network-feed.js';
import { DriverRegistry } from '../drivers/registry.js';
import { IpvlanRefusal } from '../drivers/ipvlan/ipvlan-refusal.js';
import { KernelFeatures } from '../drivers/macvlan/kernel-features.js';
import { MacvlanDriver } from '../drivers/macvlan/macvlan-driver.js';
import { EmbeddedDns } from '../dns/embedded-dns.js';
import { Attachments } from '../networks/attachments.js';
import { NetworkService } from '../networks/service.js';
import { SandboxService } from '../sandboxes/service.js';
import { ObservedStore } from '../store/observed-store.js';
import { SqliteStore } from '../store/sqlite-store.js';
import type { Store } from '../store/store.js';
import { Mutex } from '../util/mutex.js';
import type { DaemonLogger, Logger } from './log.js';
import { Operations } from './operations.js';
import type { DaemonSettings } from './options.js';
import { defaultBridge, hostNetwork, noneNetwork } from './predefined.js';
import { reconcile } from './reconcile.js';
import { claimSocketPath, releaseSocketPath } from './socket.js';
import { ClusterService } from '../cluster/cluster-service.js';
import { clusterRoutes } from '../api/routes/cluster.js';
import { DockerIpamDriver } from '../plugins/docker/ipam-driver.js';
import { DockerNetworkDriver } from '../plugins/docker/network-driver.js';
import { DockerPluginServer } from '../plugins/docker/plugin-server.js';

export class Daemon {
  #settings: DaemonSettings;
  readonly #log: Logger;
  #store?: Store;
  #datapath?: Datapath;
  #server?: Server;
  #dns?: EmbeddedDns;
  #ops?: Operations;
  #dockerPlugin?: DockerPluginServer;
  networks?: NetworkService;
  sandboxes?: SandboxService;
  /** Present with --cluster-store: the global scope (etcd). */
  cluster?: ClusterService;
  /** Overlay endpoints on other hosts, as the cluster state reports them. */
  remoteEndpoints?: RemoteEndpoints;
  /** Unsubscribes the cluster feeds. */
  readonly #unfeed: Array<() => void> = [];

  constructor(settings: DaemonSettings, log: Logger) {
    this.#settings = settings;
    this.#log = log;
  }

  async start(): Promise<void> {
    const { engine: cfg, socket } = this.#settings;
    await claimSocketPath(socket);
    // Observed: the embedded DNS rebuilds its names whenever anything was written.
    const sqlite = new SqliteStore(cfg.root);
    // A row that cannot be used is moved aside and named in the log; the daemon serves the rest.
    for (const q of sqlite.quarantineUnusable()) this.#log.error(`store: quarantined ${q.table} row ${q.id}: ${q.reason}`);
    const store = new ObservedStore(sqlite);
    this.#store = store;
    const datapath = await createDatapath(this.#settings.datapath, {
      linkPrefix: cfg.linkPrefix,
      instance: cfg.instance,
      uplink: cfg.uplink,
      root: cfg.root,
      ebpf: this.#settings.ebpf,
    });
    this.#datapath = datapath;
    this.remoteEndpoints = new RemoteEndpoints(datapath);
    const mutex = new Mutex();
    const features = new KernelFeatures();
    const drivers = new DriverRegistry([
      new BridgeDriver({ instance: cfg.instance, linkPrefix: cfg.linkPrefix, portless: datapath.portless }),
      new HostDriver(),
      new NullDriver(),
      new MacvlanDriver({ instance: cfg.instance, linkPrefix: cfg.linkPrefix, features }),
      new IpvlanRefusal(features),
      new OverlayDriver({ instance: cfg.instance, linkPrefix: cfg.linkPrefix, uplink: cfg.uplink.ifname, portless: datapath.portless }),
    ]);
    const attachments = new Attachments(store, drivers, datapath, cfg);
    const networks = new NetworkService(store, attachments, datapath, cfg, mutex);
    const sandboxes = new SandboxService(store, networks, cfg, mutex);
    this.networks = networks;
    this.sandboxes = sandboxes;
    const ops = new Operations(this.#settings, store, datapath, this.#log);
    this.#ops = ops;
    const dns = new EmbeddedDns({ store: withRemoteNames(store, this.remoteEndpoints), servers: this.#settings.dns, hostResolvConf: cfg.hostResolvConf, log: this.#log, observe: ops.observeDns, kernel: { instance: cfg.instance } });
    this.#dns = dns;
    ops.kernelDns = () => dns.kernelCounters;
    sandboxes.resolverFor = (sb) => dns.resolverFor(sb);
    networks.listeners.add(() => dns.sync());
    // Names of endpoints on other hosts: the kernel's copy follows at once (changes within a second).
    this.remoteEndpoints.listeners.add(() => void dns.sync().catch((err: Error) => this.#log.warn(`dns: ${err.message}`)));
    store.writeListeners.add((write) => dns.namesChanged(write));
    ops.watch(networks, attachments);

    this.#ensurePredefined(store, networks);
    const t0 = Date.now();
    const report = await reconcile(store, networks, sandboxes, datapath, cfg, this.#log);
    ops.observeReconcile(report);
    this.#log.info(
      `reconciled in ${Date.now() - t0} ms: ${store.networks.all().length} networks, ${store.sandboxes.all().length} sandboxes` +
        (report.undoneCreations + report.finishedRemovals + report.undoneEndpoints + report.rebuiltEndpoints > 0
          ? `; undid ${report.undoneCreations} creations and ${report.undoneEndpoints} endpoints, finished ${report.finishedRemovals} removals, rebuilt ${report.rebuiltEndpoints} endpoints`
          : '') +
        (report.strayNamespaces.length + report.strayLinks.length > 0 ? `; removed strays ${[...report.strayNamespaces, ...report.strayLinks].join(', ')}` : ''),
    );

    if (this.#settings.cluster) {
      // Joining (and reconciling this host's global endpoints) never blocks the local daemon: it retries in the background.
      const cluster = new ClusterService(store, this.#settings.cluster, this.#log);
      this.cluster = cluster;
      // Overlay networks and their endpoints' addresses are the cluster's from now on.
      networks.global = cluster;
      attachments.global = cluster;
      // Subscribed before the join: its re-list (a resync event) fills networks and remote endpoints.
      this.#unfeed.push(feedGlobalNetworks(joinedView(cluster), networks, this.#log, () => this.#withdrawOrphans(cluster, store)));
      this.#unfeed.push(feedRemoteEndpoints(joinedView(cluster), this.remoteEndpoints, this.#log));
      await cluster.start();
    }

    await dns.sync();
    this.#log.info(`embedded DNS on ${dns.listening.map((a) => `${a}:53`).join(', ') || 'no networks yet'}, upstreams ${dns.upstreams.map((u) => u.address).join(', ')}`);

    const router = new Router(`bpfnet/${BPFNET_VERSION} (linux)`);
    systemRoutes(router);
    networkRoutes(router, networks, store);
    sandboxRoutes(router, sandboxes, store, (netns) => (netns ? `/run/netns/${netns}` : cfg.hostNetnsPath));
    observeRoutes(router, datapath, sandboxes, store);
    const keyed = new KeyedEndpoints(networks, store, attachments, join(cfg.root, 'cni-endpoints.json'));
    const { adopted, forgotten } = await keyed.adopt();
    if (adopted.length + forgotten.length > 0) this.#log.info(`CNI endpoints: adopted ${adopted.length}, forgot ${forgotten.length} whose endpoint is gone (${forgotten.join(', ')})`);
    // Docker's and CNI's endpoints: one route family (bpfnet ps/inspect, bpfnet-cni).
    endpointRoutes(router, networks, keyed);
    ops.routes(router);
    if (this.cluster) clusterRoutes(router, this.cluster);
    cliRoutes(router, { socketPath: socket, url: `unix://${socket}` });
    const server = createServer((req, res) => {
      ops.countRequest(req, res);
      router.handle(req, res).catch((err: unknown) => {
        this.#log.error(`unhandled: ${(err as Error).stack ?? err}`);
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    // Requests the HTTP parser refuses (bad bytes in the path, oversized headers) still get moby's {"message"} shape.
    server.on('clientError', (err: NodeJS.ErrnoException, sock) => {
      if (!sock.writable) return sock.destroy();
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      const body = JSON.stringify({ message: `bad request: ${err.code ?? err.message}` });
      sock.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    });
    mkdirSync(dirname(socket), { recursive: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, () => resolve());
    });
    chmodSync(socket, 0o660);
    this.#server = server;
    await ops.listen();
    if (this.#settings.dockerPlugin) {
      // After reconcile: dockerd's calls find every re-adopted endpoint.
      const dockerIpam = new DockerIpamDriver({ store, pools: cfg.pools, pools6: cfg.pools6 });
      const freed = dockerIpam.releaseLost(networks.foreign.droppedAtStart);
      if (freed.length > 0) this.#log.warn(`docker plugin: freed the Docker IPAM holds of dropped endpoints: ${freed.join(', ')}`);
      const plugin = new DockerPluginServer(this.#settings.dockerPlugin.dir, new DockerNetworkDriver(networks, store), dockerIpam, this.#log);
      await plugin.listen();
      this.#dockerPlugin = plugin;
    }
    this.#log.info(`bpfnet ${BPFNET_VERSION} (${datapath.kind} datapath, instance ${cfg.instance}, uplink ${cfg.uplink.ifname} ${cfg.uplink.ipv4}) listening on ${socket}`);
  }

  /** After a (re)join: endpoints the cluster holds for this host that the local store no longer has (removed while the cluster was out of reach) are withdrawn. */
  async #withdrawOrphans(cluster: ClusterService, store: Store): Promise<void> {
    const c = cluster.cluster;
    for (const net of c.networks())
      for (const ep of c.endpoints(net.id)) {
        if (ep.hostId !== cluster.hostId || !cluster.backsLocalEndpoint(ep.endpointId) || store.endpoints.get(ep.endpointId)) continue;
        this.#log.info(`cluster: withdrawing endpoint ${ep.endpointId.slice(0, 12)} (${ep.name} on ${net.name}): this host no longer has it`);
        await cluster.disconnect(net.id, ep.endpointId).catch((err: Error) => this.#log.warn(`cluster: withdrawing ${ep.endpointId.slice(0, 12)}: ${err.message}`));
      }
  }

  /** SIGHUP: applies what can change live; returns what it applied and what needs a restart. */
  reload(next: DaemonSettings, log: DaemonLogger): { applied: string[]; needRestart: string[] } {
    if (!this.#ops) throw new Error('the daemon is not started');
    const { applied, needRestart, settings } = this.#ops.reload(this.#settings, next, log, this.#dns);
    this.#settings = settings;
    return { applied, needRestart };
  }

  #ensurePredefined(store: Store, networks: NetworkService): void {
    const byName = new Map(store.networks.all().map((n) => [n.name, n]));
    const wanted = defaultBridge(this.#settings.engine);
    const current = byName.get('bridge');
    if (current && (current.subnet !== wanted.subnet || current.subnet6 !== wanted.subnet6)) {
      if (store.endpoints.forNetwork(current.id).length > 0) {
        this.#log.warn(`--bip ${wanted.gateway} / --fixed-cidr-v6 ${wanted.subnet6 ?? '(none)'} differ from the stored default bridge ${current.subnet} ${current.subnet6 ?? ''}, which has endpoints: keeping it`);
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
    await this.#dockerPlugin?.close();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    this.#server?.closeAllConnections?.();
    await this.#ops?.close();
    for (const off of this.#unfeed.splice(0)) off();
    await this.cluster?.stop();
    await this.#dns?.stop();
    await this.#datapath?.stop();
    this.#store?.close();
    releaseSocketPath(this.#settings.socket);
  }
}
