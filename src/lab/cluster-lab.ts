/**
 * A lab of N simulated hosts around one real etcd: every host is a network namespace with
 * its own uplink (`up0`, 10.99.0.i/24) on a shared underlay — a Linux bridge in the lab's
 * own namespace, which also runs etcd at 10.99.0.254 — and its own bpfnet daemon
 * (--cluster-store etcd://10.99.0.254:2379 --advertise-addr 10.99.0.i). The underlay is
 * dual-stack (hosts fd99::i/64, the bridge fd99::fe, each host's IPv6 default route through it),
 * so the bridge's namespace plays "the outside" for both families. Tests, the demo and
 * the benchmark of the overlay use it. Hosts can leave (daemon stopped, namespace removed)
 * and join again; destroy() removes all of it with the lab.
 */
import { ensureAddress, ensureNetns, ensureVeth, ip, removeNetns, setUp, type Netns } from '../system/ip.js';
import { writeSysctl } from '../system/sysctl.js';
import { LabDaemon } from './daemon.js';
import { LabEtcd } from './etcd.js';
import { Lab } from './lab.js';

export const UNDERLAY = {
  bridge: 'ul0',
  /** 10.99.0.0/24: hosts are .1-.N, etcd and the bridge .254. */
  net: '10.99.0',
  prefixLength: 24,
  etcdAddress: '10.99.0.254',
  /** fd99::/64: hosts are fd99::I, the bridge fd99::fe. */
  net6: 'fd99::',
  address6: 'fd99::fe',
  hostUplink: 'up0',
} as const;

export interface ClusterHost {
  /** 1-based. */
  readonly index: number;
  /** Namespace name: PREFIX-hI. */
  readonly ns: Netns;
  /** Underlay address (the VTEP). */
  readonly address: string;
  daemon?: LabDaemon;
}

export interface ClusterLabOptions {
  /** Number of hosts (default 5). */
  hosts?: number;
  datapath?: 'ebpf' | 'iptables';
  /** --cluster-lease-ttl of every daemon (default 10 s). */
  leaseTtl?: number;
  /** etcd's --auto-compaction-retention in revisions. */
  compactionRetention?: number;
  /** Start a daemon on every host (default true). */
  daemons?: boolean;
  /** Extra daemon flags / environment for every host. */
  daemonArgs?: string[];
  env?: Record<string, string>;
  /** Per-host extra environment and flags at the first start (a failpoint armed on one host). */
  perHost?: (index: number) => { env?: Record<string, string>; args?: string[] };
}

export class ClusterLab {
  readonly lab: Lab;
  readonly etcd: LabEtcd;
  readonly hosts: ClusterHost[];
  readonly #opts: ClusterLabOptions;

  private constructor(lab: Lab, etcd: LabEtcd, hosts: ClusterHost[], opts: ClusterLabOptions) {
    this.lab = lab;
    this.etcd = etcd;
    this.hosts = hosts;
    this.#opts = opts;
  }

  /** The namespace holding the underlay bridge and etcd. */
  get underlay(): Netns {
    return this.lab.host;
  }

  static async create(opts: ClusterLabOptions = {}): Promise<ClusterLab> {
    const n = opts.hosts ?? 5;
    if (n < 1 || n > 200) throw new Error(`a cluster lab has 1 to 200 hosts, not ${n}`);
    const lab = await Lab.create({ uplink: false });
    try {
      const u = lab.host;
      await ip(u, ['link', 'add', 'name', UNDERLAY.bridge, 'type', 'bridge']);
      await ensureAddress(u, UNDERLAY.bridge, `${UNDERLAY.etcdAddress}/${UNDERLAY.prefixLength}`);
      await ip(u, ['-6', 'addr', 'replace', `${UNDERLAY.address6}/64`, 'dev', UNDERLAY.bridge, 'nodad']);
      await setUp(u, UNDERLAY.bridge);
      // No netfilter on the underlay: it is a switch, not a firewall.
      await writeSysctl({ netnsPath: u.path }, 'net.bridge.bridge-nf-call-iptables', '0').catch(() => undefined);
      const etcd = await LabEtcd.start(lab, { ns: u, ip: UNDERLAY.etcdAddress, ...(opts.compactionRetention ? { compactionRetention: opts.compactionRetention } : {}) });
      const hosts = Array.from({ length: n }, (_, i) => ({ index: i + 1, ns: { name: lab.name(`h${i + 1}`), path: `/run/netns/${lab.name(`h${i + 1}`)}` }, address: `${UNDERLAY.net}.${i + 1}` }));
      const cl = new ClusterLab(lab, etcd, hosts, opts);
      for (const h of hosts) await cl.#wireHost(h);
      if (opts.daemons !== false) await Promise.all(hosts.map((h) => cl.startDaemon(h, opts.perHost?.(h.index))));
      return cl;
    } catch (err) {
      await lab.destroy();
      throw err;
    }
  }

  /** The host's namespace and its uplink on the underlay bridge (idempotent). */
  async #wireHost(h: ClusterHost): Promise<void> {
    await ensureNetns(h.ns.name);
    const port = `h${h.index}`;
    await ensureVeth(h.ns, UNDERLAY.hostUplink, this.underlay, port);
    await ip(this.underlay, ['link', 'set', port, 'master', UNDERLAY.bridge]);
    await setUp(this.underlay, port);
    await ensureAddress(h.ns, UNDERLAY.hostUplink, `${h.address}/${UNDERLAY.prefixLength}`);
    await ip(h.ns, ['-6', 'addr', 'replace', `${UNDERLAY.net6}${h.index}/64`, 'dev', UNDERLAY.hostUplink, 'nodad']);
    await setUp(h.ns, UNDERLAY.hostUplink);
    await setUp(h.ns, 'lo');
    await ip(h.ns, ['route', 'replace', 'default', 'via', UNDERLAY.etcdAddress]);
    await ip(h.ns, ['-6', 'route', 'replace', 'default', 'via', UNDERLAY.address6, 'dev', UNDERLAY.hostUplink]);
    await writeSysctl({ netnsPath: h.ns.path }, 'net.ipv4.ip_forward', '1');
  }

  /** Starts (or starts again) the host's daemon, joined to the lab's etcd. */
  async startDaemon(h: ClusterHost, extra: { env?: Record<string, string>; args?: string[] } = {}): Promise<LabDaemon> {
    const d = new LabDaemon(this.lab, {
      datapath: this.#opts.datapath ?? 'ebpf',
      name: `h${h.index}`,
      host: h.ns,
      uplink: UNDERLAY.hostUplink,
      startTimeoutMs: 90_000,
      extraArgs: [
        '--cluster-store',
        this.etcd.storeUrl,
        '--advertise-addr',
        h.address,
        '--cluster-lease-ttl',
        String(this.#opts.leaseTtl ?? 10),
        ...(this.#opts.daemonArgs ?? []),
        ...(extra.args ?? []),
      ],
      env: { ...(this.#opts.env ?? {}), ...(extra.env ?? {}) },
    });
    h.daemon = d;
    await d.start();
    return d;
  }

  /** A host leaving: its daemon stopped (or killed) and its namespace removed with everything in it. */
  async removeHost(h: ClusterHost, how: 'stop' | 'kill' = 'stop'): Promise<void> {
    if (how === 'kill') await h.daemon?.kill();
    else await h.daemon?.stop();
    await removeNetns(h.ns.name).catch(() => undefined);
  }

  /** The host joining again: a fresh namespace and uplink, and its daemon on its kept root (same host id). */
  async addHost(h: ClusterHost): Promise<LabDaemon> {
    await this.#wireHost(h);
    return this.startDaemon(h);
  }

  async destroy(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.daemon?.kill()));
    await this.lab.destroy();
  }
}
