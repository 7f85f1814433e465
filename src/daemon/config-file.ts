/**
 * /etc/bpfnet/daemon.json: every `bpfnet daemon` flag as a key (its long name without the
 * dashes: "log-level", "default-address-pool", ...). Flags given on the command line override
 * the file. An unknown key or a value of the wrong type is refused, naming the key and the file.
 */
import { readFileSync } from 'node:fs';
import type { DaemonFlags } from './options.js';

export const DEFAULT_CONFIG_FILE = '/etc/bpfnet/daemon.json';

type Kind = 'string' | 'strings' | 'count' | 'boolean';

/** Key -> the DaemonFlags field it sets and the JSON type it takes. */
export const CONFIG_KEYS: Record<string, { field: keyof DaemonFlags; kind: Kind; enum?: readonly string[] }> = {
  root: { field: 'root', kind: 'string' },
  socket: { field: 'socket', kind: 'string' },
  datapath: { field: 'datapath', kind: 'string', enum: ['ebpf', 'iptables'] },
  uplink: { field: 'uplink', kind: 'string' },
  bip: { field: 'bip', kind: 'string' },
  'default-address-pool': { field: 'defaultAddressPool', kind: 'strings' },
  ipv6: { field: 'ipv6', kind: 'boolean' },
  'fixed-cidr-v6': { field: 'fixedCidrV6', kind: 'string' },
  instance: { field: 'instance', kind: 'string' },
  'log-level': { field: 'logLevel', kind: 'string', enum: ['debug', 'info', 'warn', 'error'] },
  'log-format': { field: 'logFormat', kind: 'string', enum: ['logfmt', 'json'] },
  'ebpf-ct-max': { field: 'ebpfCtMax', kind: 'count' },
  'ebpf-gc-interval': { field: 'ebpfGcInterval', kind: 'count' },
  'ebpf-timeouts': { field: 'ebpfTimeouts', kind: 'string' },
  'ebpf-uplink-shortcut': { field: 'ebpfUplinkShortcut', kind: 'string', enum: ['on', 'off'] },
  dns: { field: 'dns', kind: 'strings' },
  'metrics-addr': { field: 'metricsAddr', kind: 'string' },
  'metrics-per-endpoint': { field: 'metricsPerEndpoint', kind: 'boolean' },
  'cluster-store': { field: 'clusterStore', kind: 'string' },
  'advertise-addr': { field: 'advertiseAddr', kind: 'string' },
  'cluster-lease-ttl': { field: 'clusterLeaseTtl', kind: 'count' },
  'docker-plugin': { field: 'dockerPlugin', kind: 'boolean' },
  'docker-plugin-dir': { field: 'dockerPluginDir', kind: 'string' },
};

export class ConfigFileError extends Error {}

/** Parses the text of a config file; `path` only names it in errors. */
export function parseConfigFile(text: string, path: string): DaemonFlags {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigFileError(`${path}: not valid JSON: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigFileError(`${path}: expected a JSON object of daemon flags`);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const spec = CONFIG_KEYS[key];
    if (!spec) throw new ConfigFileError(`${path}: unknown key "${key}" (keys are the daemon's flags: ${Object.keys(CONFIG_KEYS).join(', ')})`);
    const bad = (want: string) => new ConfigFileError(`${path}: "${key}" must be ${want}, not ${JSON.stringify(value)}`);
    switch (spec.kind) {
      case 'string':
        if (typeof value !== 'string' || value === '') throw bad('a non-empty string');
        if (spec.enum && !spec.enum.includes(value)) throw bad(`one of ${spec.enum.join(', ')}`);
        break;
      case 'strings':
        if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw bad('an array of strings');
        break;
      case 'count':
        if (!(typeof value === 'number' && value > 0) && !(typeof value === 'string' && /^\d+(\.\d+)?$/.test(value))) throw bad('a positive number');
        break;
      case 'boolean':
        if (typeof value !== 'boolean') throw bad('true or false');
        break;
    }
    out[spec.field] = value;
  }
  return out as DaemonFlags;
}

/**
 * Reads the config file. A path given with --config-file must exist; the default one may be
 * absent (then only flags and defaults apply).
 */
export function readConfigFile(path: string | undefined): { path: string; flags: DaemonFlags } | undefined {
  const file = path ?? DEFAULT_CONFIG_FILE;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && path === undefined) return undefined;
    throw new ConfigFileError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  return { path: file, flags: parseConfigFile(text, file) };
}

/** Flags over file: a flag typed on the command line wins over the file's key. */
export function mergeFlags(file: DaemonFlags | undefined, flags: DaemonFlags): DaemonFlags {
  const out: Record<string, unknown> = { ...(file ?? {}) };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined && !(Array.isArray(v) && v.length === 0)) out[k] = v;
  return out as DaemonFlags;
}
