/**
 * The daemon: opens the store, makes sure the predefined networks exist, reconciles the
 * kernel with the store, and serves the API on its unix socket.
 */
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { networkRoutes } from '../api/routes/networks.js';
import { observeRoutes } from '../api/routes/observe.js';
import { sandboxRoutes } from '../api/routes/sandboxes.js';
import { BPFNET_VERSION, systemRoutes } from '../api/routes/system.js';
import { Router } from '../api/router.js';
import type { Datapath } from '../datapath/datapath.js';
import { createDatapath } from '../datapath/factory.js';
import { BridgeDriver } from '../drivers/bridge/bridge-driver.js';
import { HostDriver } from '../drivers/host/host-driver.js';
import { NullDriver } from '../drivers/none/null-driver.js';
import { DriverRegistry } from '../drivers/registry.js';
import { EmbeddedDns } from '../dns/embedded-dns.js';
import { Attachments } from '../networks/attachments.js';
import { NetworkService } from '../networks/service.js';
import { SandboxService } from '../sandboxes/service.js';
import { ObservedStore } from '../store/observed-store.js';
import { SqliteStore } from '../store/sqlite-store.js';
import type { Store } from '../store/store.js';
import { Mutex } from '../util/mutex.js';
import type { Logger } from './log.js';
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
  readonly #settings: DaemonSettings;
  readonly #log: Logger;
  #store?: Store;
  #datapath?: Datapath;
  #server?: Server;
  #dns?: EmbeddedDns;
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
    const drivers = new DriverRegistry([new BridgeDriver({ instance: cfg.instance, linkPrefix: cfg.linkPrefix }), new HostDriver(), new NullDriver()]);
    const attachments = new Attachments(store, drivers, datapath, cfg);
    const networks = new NetworkService(store, attachments, datapath, cfg, mutex);
    const sandboxes = new SandboxService(store, networks, cfg, mutex);
    this.networks = networks;
    this.sandboxes = sandboxes;
    const dns = new EmbeddedDns({ store, servers: this.#settings.dns, hostResolvConf: cfg.hostResolvConf, log: this.#log });
    this.#dns = dns;
    sandboxes.resolverFor = (sb) => dns.resolverFor(sb);
    networks.listeners.add(() => dns.sync());

    this.#ensurePredefined(store, networks);
    const t0 = Date.now();
    const report = await reconcile(store, networks, sandboxes, datapath, cfg, this.#log);
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
    const server = createServer((req, res) => {
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
    this.#log.info(`bpfnet ${BPFNET_VERSION} (${datapath.kind} datapath, instance ${cfg.instance}, uplink ${cfg.uplink.ifname} ${cfg.uplink.ipv4}) listening on ${socket}`);
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
    await this.#dns?.stop();
    await this.#datapath?.stop();
    this.#store?.close();
    if (existsSync(this.#settings.socket)) unlinkSync(this.#settings.socket);
  }
}
