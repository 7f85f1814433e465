/**
 * A minimal CNI runtime: runs a network configuration list's plugins as the CNI spec (1.0.0)
 * says — each plugin an executable found in CNI_PATH, the command in CNI_COMMAND, the
 * container in CNI_CONTAINERID/CNI_NETNS/CNI_IFNAME, its configuration on stdin, its result
 * on stdout — with what libcni adds for a list: the network's name and cniVersion in every
 * plugin's configuration, the previous plugin's result as prevResult, capability arguments
 * (portMappings) as runtimeConfig for the plugins that declare them, DEL in reverse order with
 * the cached ADD result. Plugins run inside the host namespace given (nsenter --net), so the
 * bridge, veths, routes and iptables rules they make stay in the lab.
 *
 * It lives in bench/ because bpfnet is not a CNI runtime: the benchmark needs one to drive the
 * reference plugins through their own protocol, as podman or containerd would.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runRaw } from '../../src/system/exec.js';

export interface CniPortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
  hostIP?: string;
}

export interface CniPlugin {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface CniNetworkList {
  cniVersion: string;
  name: string;
  plugins: CniPlugin[];
}

/** One attachment of a container to the network. */
export interface CniAttachment {
  containerId: string;
  /** Path of the container's network namespace (/run/netns/NAME). */
  netns: string;
  ifname: string;
  /** The portMappings capability argument. */
  portMappings?: readonly CniPortMapping[];
}

/** The part of a CNI result the benchmark reads. */
export interface CniResult {
  cniVersion: string;
  interfaces?: Array<{ name: string; mac?: string; sandbox?: string }>;
  ips?: Array<{ address: string; gateway?: string; interface?: number }>;
  [key: string]: unknown;
}

export class CniError extends Error {
  override readonly name = 'CniError';
  constructor(
    readonly plugin: string,
    readonly command: string,
    readonly code: number | undefined,
    message: string,
  ) {
    super(`CNI ${command} of plugin "${plugin}" failed${code === undefined ? '' : ` (code ${code})`}: ${message}`);
  }
}

/**
 * The configuration one plugin of a list receives on stdin (what libcni's buildOneConfig
 * makes): the plugin's own keys plus the list's name and cniVersion, runtimeConfig holding the
 * capability arguments the plugin declares, and prevResult when there is one.
 */
export function pluginConfig(
  list: CniNetworkList,
  plugin: CniPlugin,
  capabilityArgs: Record<string, unknown>,
  prevResult?: CniResult,
): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  const runtimeConfig: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) if (on && capabilityArgs[cap] !== undefined) runtimeConfig[cap] = capabilityArgs[cap];
  if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
  if (prevResult !== undefined) conf.prevResult = prevResult;
  return conf;
}

/** The environment of one plugin call. */
export function pluginEnv(command: 'ADD' | 'DEL' | 'CHECK', att: CniAttachment, pluginDir: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: att.containerId,
    CNI_NETNS: att.netns,
    CNI_IFNAME: att.ifname,
    CNI_PATH: pluginDir,
  };
}

export interface CniRuntimeOptions {
  /** Where the plugin executables are (CNI_PATH). */
  pluginDir: string;
  /** The namespace the plugins run in (the host's side of the network). */
  hostNetns: string;
  /** Where ADD results are kept for DEL (libcni's cache). */
  cacheDir: string;
}

export class CniRuntime {
  readonly list: CniNetworkList;
  readonly opts: CniRuntimeOptions;

  constructor(list: CniNetworkList, opts: CniRuntimeOptions) {
    this.list = list;
    this.opts = opts;
    mkdirSync(opts.cacheDir, { recursive: true });
  }

  /** ADD through every plugin in order; a failure runs DEL for what was added (as libcni does not, but a benchmark must not leak). */
  async add(att: CniAttachment): Promise<CniResult> {
    let prev: CniResult | undefined;
    const caps = this.#capabilityArgs(att);
    try {
      for (const plugin of this.list.plugins) prev = await this.#exec('ADD', plugin, att, pluginConfig(this.list, plugin, caps, prev));
    } catch (err) {
      await this.del(att).catch(() => undefined);
      throw err;
    }
    if (prev === undefined) throw new Error(`CNI network "${this.list.name}" has no plugins`);
    writeFileSync(this.#cachePath(att), JSON.stringify(prev));
    return prev;
  }

  /** DEL through every plugin in reverse order, each given the cached ADD result; every plugin runs even if one fails. */
  async del(att: CniAttachment): Promise<void> {
    let cached: CniResult | undefined;
    try {
      cached = JSON.parse(readFileSync(this.#cachePath(att), 'utf8')) as CniResult;
    } catch {
      cached = undefined;
    }
    const caps = this.#capabilityArgs(att);
    const errors: Error[] = [];
    for (const plugin of [...this.list.plugins].reverse()) {
      try {
        await this.#exec('DEL', plugin, att, pluginConfig(this.list, plugin, caps, cached));
      } catch (err) {
        errors.push(err as Error);
      }
    }
    rmSync(this.#cachePath(att), { force: true });
    if (errors.length > 0) throw errors[0];
  }

  #capabilityArgs(att: CniAttachment): Record<string, unknown> {
    return att.portMappings && att.portMappings.length > 0 ? { portMappings: att.portMappings } : {};
  }

  #cachePath(att: CniAttachment): string {
    return join(this.opts.cacheDir, `${this.list.name}-${att.containerId}-${att.ifname}.json`);
  }

  async #exec(command: 'ADD' | 'DEL', plugin: CniPlugin, att: CniAttachment, conf: Record<string, unknown>): Promise<CniResult | undefined> {
    const file = join(this.opts.pluginDir, plugin.type);
    const r = await runRaw('nsenter', [`--net=${this.opts.hostNetns}`, '--', file], {
      env: pluginEnv(command, att, this.opts.pluginDir),
      input: JSON.stringify(conf),
      timeoutMs: 600_000,
    });
    if (r.code !== 0) {
      let code: number | undefined;
      let msg = r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`;
      try {
        const e = JSON.parse(r.stdout) as { code?: number; msg?: string; details?: string };
        code = e.code;
        msg = [e.msg, e.details].filter(Boolean).join(': ') || msg;
      } catch {
        /* not a CNI error object */
      }
      throw new CniError(plugin.type, command, code, msg);
    }
    return command === 'ADD' ? (JSON.parse(r.stdout) as CniResult) : undefined;
  }
}
