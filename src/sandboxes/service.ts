/**
 * The sandbox service: a sandbox is a named network namespace (or the host's, or a bare one
 * for "none"), its /etc files, an optional process inside it, and its endpoints and published
 * ports. Creation is stored as 'creating' first and completed after the kernel work, removal as
 * 'removing' first: a daemon killed at any point finds and finishes or undoes the operation.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { conflict, forbidden, invalid } from '../errors.js';
import { isIPv4 } from '../ipam/ipv4.js';
import { Attachments, type AttachOptions } from '../networks/attachments.js';
import { sandboxNetnsName, type EngineConfig } from '../networks/config.js';
import type { NetworkRecord, PortRecord, PortRun, SandboxRecord } from '../networks/model.js';
import { validateHostname, validateName } from '../networks/names.js';
import { describeForeign } from '../networks/endpoints.js';
import { BindingIndex, expandPortRequest, parsePortSpec, PortCursor } from '../networks/ports.js';
import { eachPortOf } from '../util/port-runs.js';
import { DEFAULT_NETWORK, type NetworkService } from '../networks/service.js';
import type { Store } from '../store/store.js';
import { createNetns, removeNetns } from '../system/ip.js';
import { newId, nowRfc3339Nano } from '../util/ids.js';
import { failpoint, failpointSync } from '../util/failpoint.js';
import type { Mutex } from '../util/mutex.js';
import { parseResolvConf, removeSandboxFiles, writeSandboxFiles, type HostsEntry } from './files.js';
import { execIn, isRunning, killAllIn, killMain, readExitCode, startMain, type Entry } from './processes.js';

export interface CreateSandboxRequest {
  name: string;
  network?: string;
  ipv4?: string;
  ipv6?: string;
  aliases?: string[];
  publish?: string[];
  hostname?: string;
  extraHosts?: string[];
  dns?: string[];
  dnsSearch?: string[];
  cmd?: string[];
  start?: boolean;
}

/**
 * Decides a sandbox's resolv.conf nameservers and options (set by dns/: the embedded DNS's
 * address on user-defined networks, the host's resolvers elsewhere); undefined: the host's.
 */
export type ResolverFor = (sb: SandboxRecord, primaryNetwork: NetworkRecord | undefined) => { nameservers: string[]; options: string[] } | undefined;

/** Published ports per sandbox: every host port once per protocol. */
const MAX_PORTS = 2 * 65535;
/** Published ports on the host, all sandboxes together: PORTS_MAX of bpf/lib/maps.h. */
const PORT_TABLE = 131072;

export class SandboxService {
  readonly #store: Store;
  readonly #networks: NetworkService;
  readonly #attachments: Attachments;
  readonly #cfg: EngineConfig;
  readonly #mutex: Mutex;
  readonly #children = new Map<string, ChildProcess>();
  resolverFor: ResolverFor = () => undefined;

  constructor(store: Store, networks: NetworkService, cfg: EngineConfig, mutex: Mutex) {
    this.#store = store;
    this.#networks = networks;
    this.#attachments = networks.attachments;
    this.#cfg = cfg;
    this.#mutex = mutex;
    this.#attachments.listeners.add((sb) => {
      const current = this.#store.sandboxes.get(sb.id);
      if (current && current.state !== 'creating' && current.state !== 'removing') this.#files(current);
    });
  }

  resolve(ref: string): SandboxRecord {
    return this.refresh(this.#networks.resolveSandbox(ref));
  }

  list(): SandboxRecord[] {
    return this.#store.sandboxes.all().filter((s) => s.state !== 'creating').map((s) => this.refresh(s));
  }

  /** The sandbox's state, updated if its process has ended since we last looked. */
  refresh(sb: SandboxRecord): SandboxRecord {
    if (sb.state !== 'running' || sb.pid === undefined || sb.pidStart === undefined) return sb;
    if (isRunning(sb.pid, sb.pidStart)) return sb;
    const done: SandboxRecord = { ...sb, state: 'exited', exitCode: readExitCode(this.#dir(sb)) ?? -1, finishedAt: sb.finishedAt ?? nowRfc3339Nano() };
    this.#store.sandboxes.update(done);
    return done;
  }

  #dir(sb: SandboxRecord): string {
    return join(this.#cfg.root, 'sandboxes', sb.id);
  }

  entry(sb: SandboxRecord): Entry {
    return sb.netns ? { netns: sb.netns } : { host: true };
  }

  ports(sb: SandboxRecord): PortRecord[] {
    return this.#store.ports.forSandbox(sb.id);
  }

  #validate(req: CreateSandboxRequest): void {
    validateName('sandbox', req.name ?? '');
    const taken = this.#store.sandboxes.byName(req.name);
    if (taken) throw conflict(`the sandbox name "${req.name}" is already in use by sandbox ${taken.id.slice(0, 12)}: remove it to reuse the name`);
    if (req.hostname !== undefined && req.hostname !== '') validateHostname('hostname', req.hostname);
    for (const h of req.extraHosts ?? []) {
      const colon = h.indexOf(':');
      const name = h.slice(0, colon);
      const address = h.slice(colon + 1);
      if (colon <= 0 || !isIPv4(address)) throw invalid(`invalid extra host "${h}": expected NAME:IPv4`);
      validateHostname('extra host name', name);
    }
    for (const d of req.dns ?? []) if (!isIPv4(d)) throw invalid(`invalid DNS server "${d}": expected an IPv4 address`);
    // Written into resolv.conf: a newline or a space would add lines of its own.
    for (const s of req.dnsSearch ?? []) if (s !== '.') validateHostname('DNS search domain', s);
    if (req.cmd !== undefined && (!Array.isArray(req.cmd) || req.cmd.some((a) => typeof a !== 'string'))) throw invalid('Cmd must be a list of strings');
  }

  /** Parses -p specs and picks host ports, refusing any already published (Docker's message). */
  #planPorts(sandboxId: string, specs: readonly string[]): PortRun[] {
    if (specs.length === 0) return [];
    const all = this.#store.ports.all();
    const taken = new BindingIndex<PortRecord & { holder?: string }>(all);
    // Ports of other engines' containers on bpfnet (Docker's through the plugin, CNI's portMappings) are taken too.
    let foreignPorts = 0;
    for (const fe of this.#networks.foreign.list())
      for (const p of fe.ports ?? []) {
        taken.add({ sandboxId: '', ...p, holder: describeForeign(fe) });
        foreignPorts++;
      }
    const planned: PortRun[] = [];
    let count = 0;
    const free = (protocol: PortRecord['protocol'], hostIp: string, hostPort: number) => !taken.clashAt(protocol, hostIp, hostPort);
    const cursor = new PortCursor();
    for (const [i, spec] of specs.entries()) {
      // Later specs must see this one's ports; one spec never clashes with itself (expandPortRequest
      // keeps its own choices apart), so the last (often the only: a 10,000-port range) is not indexed.
      const later = i < specs.length - 1;
      for (const run of expandPortRequest(parsePortSpec(spec), free, spec, cursor, sandboxId)) {
        // Every host port twice (tcp, udp): more would only repeat clashes, and bounds the work of one request.
        if ((count += run.count ?? 1) > MAX_PORTS) throw invalid(`too many published ports: more than ${MAX_PORTS}`);
        const clash = taken.clashInRun(run);
        if (clash) throw conflict(`Bind for ${run.hostIp || '0.0.0.0'}:${clash.port} failed: port is already allocated${clash.holder.holder ? ` (by ${clash.holder.holder})` : ''}`);
        if (later) for (const p of eachPortOf([run])) taken.add(p);
        planned.push(run);
      }
    }
    // Refused here, cleanly, rather than by a full kernel map halfway through the publishing.
    if (all.length + foreignPorts + count > PORT_TABLE)
      throw forbidden(`cannot publish ${count} ports: the host's published-port table holds ${PORT_TABLE} and ${all.length + foreignPorts} are in use`);
    return planned;
  }

  #files(sb: SandboxRecord): void {
    if (!sb.netns) return;
    const primary = this.#attachments.primary(sb.id);
    const primaryNet = primary ? this.#store.networks.get(primary.networkId) : undefined;
    const hosts: HostsEntry[] = sb.extraHosts.map((h) => ({ address: h.slice(h.indexOf(':') + 1), names: [h.slice(0, h.indexOf(':'))] }));
    // One line per connected network, in the order they were joined, as Docker writes them; a
    // dotted hostname is listed with its first label too (moby's updateHostsFile).
    const names = sb.hostname.includes('.') ? [sb.hostname, sb.hostname.slice(0, sb.hostname.indexOf('.'))] : [sb.hostname];
    const endpoints = this.#store.endpoints.forSandbox(sb.id).filter((e) => e.state === 'active');
    for (const ep of endpoints.sort((a, b) => a.seq - b.seq)) for (const address of [ep.ipv4, ep.ipv6]) if (address) hosts.push({ address, names });
    const host = parseResolvConf(this.#cfg.hostResolvConf);
    const embedded = this.resolverFor(sb, primaryNet);
    writeSandboxFiles(sb.netns, {
      hostname: sb.hostname,
      hosts,
      nameservers: sb.dns.length > 0 && !embedded ? sb.dns : (embedded?.nameservers ?? host.nameservers),
      search: sb.dnsSearch.length > 0 ? sb.dnsSearch : host.search,
      options: embedded?.options ?? host.options,
    });
  }

  /** Rewrites a sandbox's /etc files (its endpoints or the names it should see changed). */
  rewriteFiles(sb: SandboxRecord): void {
    this.#files(sb);
  }

  /** Docker's rename: the sandbox is found, and resolved by the embedded DNS, under the new name at once. */
  rename(ref: string, name: string): Promise<SandboxRecord> {
    return this.#mutex.run(async () => {
      if (!ref || !name) throw invalid('Neither old nor new names may be empty');
      const sb = this.resolve(ref);
      validateName('sandbox', name);
      if (sb.name === name) throw invalid('Renaming a sandbox with the same name as its current name');
      const taken = this.#store.sandboxes.byName(name);
      if (taken) throw conflict(`the sandbox name "${name}" is already in use by sandbox ${taken.id.slice(0, 12)}: remove or rename it to reuse the name`);
      const renamed: SandboxRecord = { ...sb, name };
      this.#store.sandboxes.update(renamed);
      return renamed;
    });
  }

  create(req: CreateSandboxRequest): Promise<{ id: string; warnings: string[] }> {
    return this.#mutex.run(async () => {
      this.#validate(req);
      const net = this.#networks.resolve(req.network && req.network !== 'default' ? req.network : DEFAULT_NETWORK);
      const id = newId();
      const warnings: string[] = [];
      let publish = req.publish ?? [];
      const caps = this.#attachments.driver(net).capabilities;
      // Without an address of its own a sandbox has nothing to publish to. moby warns in host
      // mode only; in none mode the ports are dropped without a word.
      if (!(caps.addresses && caps.datapath) && publish.length > 0) {
        if (caps.publishRefusal) warnings.push(caps.publishRefusal);
        publish = [];
      }
      const ports = this.#planPorts(id, publish);
      const sb: SandboxRecord = {
        id,
        name: req.name,
        created: nowRfc3339Nano(),
        // Docker's NetworkMode: the network as given ("default" is the default bridge).
        networkMode: !req.network || req.network === 'default' ? DEFAULT_NETWORK : req.network,
        hostname: req.hostname || id.slice(0, 12),
        extraHosts: req.extraHosts ?? [],
        dns: req.dns ?? [],
        dnsSearch: req.dnsSearch ?? [],
        command: req.cmd ?? [],
        state: 'creating',
        netns: caps.ownNamespace ? sandboxNetnsName(this.#cfg, id) : null,
      };
      const attach: AttachOptions = { ipv4: req.ipv4, ipv6: req.ipv6, aliases: req.aliases };
      this.#attachments.checkAttach(sb, net, attach, true);
      const ep = this.#store.transaction(() => {
        this.#store.sandboxes.insert(sb);
        this.#store.ports.setForSandbox(sb.id, ports);
        return this.#attachments.reserve(sb, net, attach);
      });
      await failpoint('sandbox:create:after-intent');
      try {
        if (sb.netns) await createNetns(sb.netns); // the driver's join brings loopback up
        await this.#attachments.build(sb, ep);
        this.#files(sb);
        await failpoint('sandbox:create:after-build');
      } catch (err) {
        await this.#destroy(sb).catch(() => undefined);
        throw err;
      }
      let done: SandboxRecord = { ...sb, state: 'created' };
      this.#store.sandboxes.update(done);
      if (req.start !== false && done.command.length > 0) done = this.#start(done);
      return { id, warnings };
    });
  }

  #start(sb: SandboxRecord): SandboxRecord {
    rmSync(join(this.#dir(sb), 'exit-code'), { force: true });
    const main = startMain(this.entry(sb), sb.command, this.#dir(sb));
    failpointSync('sandbox:start:after-spawn');
    this.#children.set(sb.id, main.child);
    main.child.once('exit', () => {
      this.#children.delete(sb.id);
      const current = this.#store.sandboxes.get(sb.id);
      if (current && current.pid === main.pid) this.refresh(current);
    });
    const running: SandboxRecord = { ...sb, state: 'running', pid: main.pid, pidStart: main.start, startedAt: nowRfc3339Nano(), exitCode: undefined, finishedAt: undefined };
    this.#store.sandboxes.update(running);
    return running;
  }

  /** Starts the sandbox's process; returns the child when this daemon can still follow its output. */
  start(ref: string): Promise<{ sandbox: SandboxRecord; child?: ChildProcess }> {
    return this.#mutex.run(async () => {
      const sb = this.resolve(ref);
      if (sb.state === 'running') return { sandbox: sb, child: this.#children.get(sb.id) };
      if (sb.command.length === 0) throw invalid(`sandbox ${sb.name} has no command to start`);
      const running = this.#start(sb);
      return { sandbox: running, child: this.#children.get(sb.id) };
    });
  }

  /** The main process's log file (for attach). */
  logPath(sb: SandboxRecord): string {
    return join(this.#dir(sb), 'output.log');
  }

  exec(ref: string, cmd: readonly string[], env?: readonly string[]): ChildProcess {
    const sb = this.resolve(ref);
    if (!Array.isArray(cmd) || cmd.length === 0 || cmd.some((a) => typeof a !== 'string')) throw invalid('exec needs a command: Cmd must be a non-empty list of strings');
    return execIn(this.entry(sb), cmd, env);
  }

  remove(ref: string, force: boolean): Promise<void> {
    return this.#mutex.run(async () => {
      const sb = this.resolve(ref);
      if (sb.state === 'running' && !force)
        throw conflict(`cannot remove running sandbox ${sb.name}: its process is still running; use rm -f to kill it and remove the sandbox`);
      this.#store.sandboxes.update({ ...sb, state: 'removing' });
      await failpoint('sandbox:remove:after-intent');
      await this.#destroy(sb);
    });
  }

  /** Removes everything a sandbox has, in the kernel and in the store (idempotent; used by reconcile too). */
  async #destroy(sb: SandboxRecord): Promise<void> {
    if (sb.pid !== undefined && sb.pidStart !== undefined) await killMain(sb.pid, sb.pidStart);
    await this.#attachments.unpublishAll(sb).catch(() => undefined);
    for (const ep of this.#store.endpoints.forSandbox(sb.id)) await this.#attachments.teardown(sb, ep);
    await failpoint('sandbox:remove:after-teardown');
    if (sb.netns) {
      await killAllIn(sb.netns);
      await removeNetns(sb.netns);
      removeSandboxFiles(sb.netns);
    }
    rmSync(this.#dir(sb), { recursive: true, force: true });
    this.#store.transaction(() => {
      for (const ep of this.#store.endpoints.forSandbox(sb.id)) this.#attachments.forget(ep);
      this.#store.ports.deleteForSandbox(sb.id);
      this.#store.sandboxes.delete(sb.id);
    });
  }

  /** Reconcile: finishes a removal or undoes a creation that a killed daemon left half done. */
  async finishInterrupted(sb: SandboxRecord): Promise<void> {
    await this.#destroy(sb);
  }
}
