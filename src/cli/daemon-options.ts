/**
 * What `bpfnet daemon` hands to `runDaemon(options)` of src/daemon/main.ts: the flags typed on
 * the command line, and only those, so the daemon can tell them from its config file's keys
 * (flags win over the file, the file over the defaults). Values stay as typed (strings): the
 * daemon resolves and checks them, so the rules live in one place (src/daemon/options.ts); the
 * CLI only refuses what it can tell is malformed without looking at the host.
 */

export type DatapathKind = 'ebpf' | 'iptables';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface DaemonOptions {
  /** State directory (the SQLite store and per-sandbox files). */
  readonly root?: string;
  /** Path of the unix socket to listen on. */
  readonly socket?: string;
  readonly datapath?: DatapathKind;
  /** Interface for masquerade and published ports; undefined: the default route's. */
  readonly uplink?: string;
  /** The default bridge's gateway address and prefix, e.g. 172.17.0.1/16. */
  readonly bip?: string;
  /** `base=CIDR,size=N` entries, each already parsed once; empty: Docker's default pools. */
  readonly defaultAddressPool?: string[];
  /** IPv6 on the default bridge, and its subnet (else one of the IPv6 pools). */
  readonly ipv6?: boolean;
  readonly fixedCidrV6?: string;
  /** Prefix of every kernel object this daemon creates, so several daemons can share a host. */
  readonly instance?: string;
  readonly logLevel?: LogLevel;
  /** ebpf datapath tuning, as typed (src/daemon/options.ts checks them): connection-table entries. */
  readonly ebpfCtMax?: string;
  /** Seconds between connection-table GC passes. */
  readonly ebpfGcInterval?: string;
  /** Per-state timeouts in seconds: "udp=30,tcp-established=3600". */
  readonly ebpfTimeouts?: string;
  /** "on" or "off": whether replies to a veth uplink enter its peer directly (bpf_redirect_peer). */
  readonly ebpfUplinkShortcut?: string;
  /** Default upstream DNS servers (--dns, repeatable), as typed; empty: the host's resolv.conf. */
  readonly dns?: string[];
  /** logfmt or json lines. */
  readonly logFormat?: 'logfmt' | 'json';
  /** HOST:PORT: also serve GET /metrics over TCP there. */
  readonly metricsAddr?: string;
  /** Per-endpoint metric series. */
  readonly metricsPerEndpoint?: boolean;
  /** Serve Docker's network and IPAM plugin protocol. */
  readonly dockerPlugin?: boolean;
  /** The plugin socket's directory (default /run/docker/plugins). */
  readonly dockerPluginDir?: string;
  /** Config file (default /etc/bpfnet/daemon.json, which may be absent). */
  readonly configFile?: string;
  /** etcd://HOST:PORT[,HOST:PORT...]: join a cluster. */
  readonly clusterStore?: string;
  /** The address other hosts reach this one at (default: the uplink's). */
  readonly advertiseAddr?: string;
  /** Seconds, as typed. */
  readonly clusterLeaseTtl?: string;
}

/** The daemon's entry point: resolves once it is serving (or, with a number, when it has stopped with that status). */
export type RunDaemon = (options: DaemonOptions) => Promise<void | number>;
