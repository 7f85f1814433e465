/**
 * The iptables datapath: Docker's forwarding policy (Docker 28.2, userland-proxy=false) on
 * the Linux bridges the bridge driver builds. It keeps the desired state in memory and, on
 * every change, renders the whole rule set (rules.ts) and applies it with one
 * `iptables-restore --noflush`: our chains are flushed and refilled atomically per table,
 * built-in chains are never flushed, and rules that are not ours are never touched, except
 * a jump into one of our chains that has to go.
 *
 * Besides rules it owns the per-namespace settings they depend on: ip_forward,
 * bridge-nf-call-iptables (icc=false and same-bridge hairpin are seen by iptables only
 * through br_netfilter), route_localnet on each bridge (DNAT of 127.0.0.1) and hairpin on
 * each bridge port (DNAT back to the sender is bridged out of the port it came in by).
 */
import { refuseOverlay } from './overlay.js';
import type { Datapath, DatapathContext, DesiredState, EndpointSpec, NetworkSpec, PortSpec } from '../datapath.js';
import { eachPortOf } from '../../util/port-runs.js';
import { applySandboxIPv6 } from '../sandbox-ipv6.js';
import {
  TABLES,
  chainNames,
  isEmptyPlan,
  ownedRules,
  parseSave,
  planHooks,
  planReconcile,
  planTeardown,
  portLabel,
  renderRules,
  restoreText,
  validate,
  type ChainNames,
  type Family,
  type RestorePlan,
  type RuleSet,
  type SavedTable,
  type Table,
} from './rules.js';
import { iptablesListChain, iptablesRestore, iptablesSave, setHairpin } from '../../system/iptables.js';
import type { NetnsTarget } from '../../system/exec.js';
import { readSysctl, writeSysctl } from '../../system/sysctl.js';

export interface IptablesDatapathOptions {
  /** Act on this namespace instead of the daemon's own (tests aim it at a lab's host). */
  netnsPath?: string;
  /** How long hooks read back in place are trusted before a change reads them again (default HOOK_RECHECK_MS). */
  hookRecheckMs?: number;
}

/** How long hooks read back in place are trusted before a change reads them again (someone may flush a built-in chain). */
export const HOOK_RECHECK_MS = 5_000;

const portKey = (p: PortSpec) => `${p.protocol}|${p.hostIp}|${p.hostPort}|${p.networkId}|${p.containerIp}|${p.containerPort}`;

interface State {
  networks: Map<string, NetworkSpec>;
  endpoints: Map<string, EndpointSpec>;
  ports: Map<string, PortSpec>;
}

export class IptablesDatapath implements Datapath {
  readonly kind = 'iptables' as const;
  readonly #ctx: DatapathContext;
  readonly #target: NetnsTarget;
  readonly #names: ChainNames;
  #state: State = { networks: new Map(), endpoints: new Map(), ports: new Map() };
  /** Per family and table, the owned chains' rules as last committed: a table that did not change is not sent again. */
  readonly #committed = new Map<string, string>();
  /** Per family, when the hooks were last read back and found (or put) in place. */
  readonly #hooksCheckedAt = new Map<Family, number>();
  readonly #hookRecheckMs: number;
  #forwardingReady = false;
  #forwarding6Ready = false;
  /** Calls run one at a time, in order: each renders and applies the state the previous one left. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(ctx: DatapathContext, opts: IptablesDatapathOptions = {}) {
    this.#ctx = ctx;
    this.#names = chainNames(ctx.linkPrefix);
    this.#target = opts.netnsPath ? { netnsPath: opts.netnsPath } : {};
    this.#hookRecheckMs = opts.hookRecheckMs ?? HOOK_RECHECK_MS;
  }

  /** The chain names this instance owns. */
  get chains(): ChainNames {
    return this.#names;
  }

  /** The rule set of one family for the current desired state (what the kernel should hold): iptables (4) or ip6tables (6). */
  render(family: Family = 4): RuleSet {
    return renderRules(this.#desired(), { linkPrefix: this.#ctx.linkPrefix }, family);
  }

  async start(desired: DesiredState): Promise<void> {
    return this.#serial(async () => {
      const state: State = {
        networks: new Map(desired.networks.map((n) => [n.id, n])),
        endpoints: new Map(desired.endpoints.map((e) => [e.id, e])),
        // One rule per port: runs are written out.
        ports: new Map(eachPortOf(desired.ports).map((p) => [portKey(p), p])),
      };
      const rs = renderRules(toDesired(state), { linkPrefix: this.#ctx.linkPrefix });
      const rs6 = renderRules(toDesired(state), { linkPrefix: this.#ctx.linkPrefix }, 6);
      this.#state = state;
      await this.#ensureForwarding(true);
      const saved = parseSave(await iptablesSave(this.#target));
      await this.#commit(rs, planReconcile(rs, saved), 4);
      const saved6 = parseSave(await iptablesSave(this.#target, undefined, 6));
      await this.#commit(rs6, planReconcile(rs6, saved6), 6);
      for (const family of [4, 6] as const) this.#hooksCheckedAt.set(family, Date.now());
      await this.#settle(
        [...state.networks.values()].map((n) => () => this.#ensureBridge(n)),
        [...state.endpoints.values()],
      );
    });
  }

  async ensureNetwork(net: NetworkSpec): Promise<void> {
    validate.network(net);
    refuseOverlay(net);
    return this.#serial(() =>
      this.#change(
        (s) => void s.networks.set(net.id, net),
        () => this.#ensureBridge(net),
      ),
    );
  }

  async removeNetwork(net: NetworkSpec): Promise<void> {
    return this.#serial(() =>
      this.#change((s) => {
        s.networks.delete(net.id);
        for (const [id, ep] of s.endpoints) if (ep.networkId === net.id) s.endpoints.delete(id);
        for (const [key, p] of s.ports) if (p.networkId === net.id) s.ports.delete(key);
      }),
    );
  }

  /** The host-side veth must already be a port of the network's bridge (hairpin is a bridge-port flag). */
  async ensureEndpoint(net: NetworkSpec, ep: EndpointSpec): Promise<void> {
    validate.network(net);
    validate.endpoint(ep);
    await applySandboxIPv6(ep);
    return this.#serial(() => {
      const known = this.#state.networks.has(net.id);
      return this.#change(
        (s) => {
          if (!known) s.networks.set(net.id, net);
          s.endpoints.set(ep.id, ep);
        },
        async () => {
          if (!known) await this.#ensureBridge(net);
          await this.#ensurePorts([ep]);
        },
      );
    });
  }

  async removeEndpoint(_net: NetworkSpec, ep: EndpointSpec): Promise<void> {
    return this.#serial(() =>
      this.#change((s) => {
        s.endpoints.delete(ep.id);
        // Docker removes an endpoint's port mappings with it: a DNAT to a gone address would blackhole the port.
        for (const [key, p] of s.ports) if (p.endpointId === ep.id) s.ports.delete(key);
      }),
    );
  }

  async publish(runs: readonly PortSpec[]): Promise<void> {
    const ports = eachPortOf(runs);
    ports.forEach(validate.port);
    return this.#serial(() => {
      for (const p of ports)
        if (!this.#state.networks.has(p.networkId))
          throw new Error(`cannot publish ${portLabel(p)}: network ${p.networkId} is not known to the iptables datapath`);
      return this.#change((s) => {
        for (const p of ports) s.ports.set(portKey(p), p);
      });
    });
  }

  async unpublish(runs: readonly PortSpec[]): Promise<void> {
    const ports = eachPortOf(runs);
    return this.#serial(() =>
      this.#change((s) => {
        for (const p of ports) s.ports.delete(portKey(p));
      }),
    );
  }

  /** Waits for calls under way; the rules stay, so forwarding continues while the daemon is down. */
  async stop(): Promise<void> {
    return this.#serial(async () => undefined);
  }

  /** Removes every chain carrying the prefix (the user's chain too) and every jump into them; forgets the state. */
  async teardown(): Promise<void> {
    return this.#serial(async () => {
      for (const family of [4, 6] as const) {
        const saved = parseSave(await iptablesSave(this.#target, undefined, family));
        const plan = planTeardown(this.#names, saved);
        if (!isEmptyPlan(plan)) await this.#restore(restoreText(this.render(family), plan), family);
      }
      this.#state = { networks: new Map(), endpoints: new Map(), ports: new Map() };
      this.#committed.clear();
      this.#hooksCheckedAt.clear();
    });
  }

  // ---- internals ----

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  #desired(): DesiredState {
    return toDesired(this.#state);
  }

  /**
   * Changes the state, applies it, then runs `after` (kernel settings). When any step fails
   * the previous state is put back, in memory and (best effort) in the kernel.
   */
  async #change(mutate: (s: State) => void, after?: () => Promise<void>): Promise<void> {
    const previous = this.#state;
    const next: State = { networks: new Map(previous.networks), endpoints: new Map(previous.endpoints), ports: new Map(previous.ports) };
    mutate(next);
    // Nothing to do (a removal of something never added, e.g. reconcile undoing a half-made endpoint before start).
    if (!after && sameState(previous, next)) return;
    this.#state = next;
    let rs: RuleSet;
    let rs6: RuleSet;
    try {
      rs = this.render(4);
      rs6 = this.render(6);
      await this.#ensureForwarding(false);
    } catch (err) {
      this.#state = previous;
      throw err;
    }
    try {
      await this.#apply(rs, 4);
      await this.#apply(rs6, 6);
      if (after) await after();
    } catch (err) {
      this.#state = previous;
      try {
        await this.#apply(this.render(4), 4);
        await this.#apply(this.render(6), 6);
      } catch {
        // The original error says what went wrong; the next call or start() applies everything again.
      }
      throw err;
    }
  }

  /**
   * Applies a rule set: refills the tables whose rules changed since the last commit, and
   * puts hooks back where they are missing (read with `iptables -S` of the hooked built-in
   * chains, which stays cheap however many rules our chains hold).
   */
  async #apply(rs: RuleSet, family: Family): Promise<void> {
    // Reading the hooks back costs one iptables run per hooked chain (five per family, most of a
    // change's time): within #hookRecheckMs of the last check, a burst of changes only refills.
    const checkedAt = this.#hooksCheckedAt.get(family);
    const trusted = checkedAt !== undefined && Date.now() - checkedAt < this.#hookRecheckMs;
    const { deletes, inserts } = trusted ? { deletes: [], inserts: [] } : planHooks(rs, await this.#readHooks(rs, family));
    const bodies = tableBodies(rs);
    const touched = new Set<string>([...deletes.map((d) => d.table), ...inserts.map((h) => h.table)]);
    const refill = TABLES.filter((t) => touched.has(t) || bodies.get(t) !== this.#committed.get(`${family}/${t}`));
    const createUser =
      inserts.some((h) => h.table === 'filter' && h.rule === `-j ${this.#names.user}`) &&
      (await iptablesListChain(this.#target, 'filter', this.#names.user, family)) === undefined;
    const plan: RestorePlan = { refill, deletes, inserts, createUser, drop: [] };
    if (!isEmptyPlan(plan)) await this.#commit(rs, plan, family);
    if (!trusted) this.#hooksCheckedAt.set(family, Date.now());
  }

  /** The hooked built-in chains as they are now, by table (`iptables -S` of each). */
  async #readHooks(rs: RuleSet, family: Family): Promise<Map<string, SavedTable>> {
    const hooked = [...new Set(rs.hooks.map((h) => `${h.table}\0${h.chain}`))].map((k) => k.split('\0') as [Table, string]);
    const listed = await Promise.all(hooked.map(([table, chain]) => iptablesListChain(this.#target, table, chain, family)));
    const saved = new Map<string, SavedTable>();
    hooked.forEach(([table], i) => {
      const t = saved.get(table) ?? { chains: new Set<string>(), rules: [] };
      const parsed = parseSave(listed[i] ?? '', table).get(table)!;
      parsed.chains.forEach((c) => t.chains.add(c));
      t.rules.push(...parsed.rules);
      saved.set(table, t);
    });
    return saved;
  }

  async #commit(rs: RuleSet, plan: RestorePlan, family: Family): Promise<void> {
    const bodies = tableBodies(rs);
    try {
      await this.#restore(restoreText(rs, plan), family);
    } catch (err) {
      // Tables commit one by one: after a failure we no longer know which ones made it.
      this.#committed.clear();
      this.#hooksCheckedAt.clear();
      throw err;
    }
    for (const t of plan.refill) this.#committed.set(`${family}/${t}`, bodies.get(t)!);
  }

  async #restore(text: string, family: Family): Promise<void> {
    if (text === '') return;
    try {
      await iptablesRestore(this.#target, text, family);
    } catch (err) {
      throw new Error(`could not apply ${family === 6 ? 'ip6tables' : 'iptables'} rules of chains ${this.#names.main}*: ${(err as Error).message}`);
    }
  }

  /** ip_forward and bridge-nf-call-iptables, once per instance (and again at every start). */
  async #ensureForwarding(force: boolean): Promise<void> {
    if (this.#forwardingReady && !force) return this.#ensureForwarding6(false);
    if ((await readSysctl(this.#target, 'net/ipv4/ip_forward')) !== '1') await writeSysctl(this.#target, 'net/ipv4/ip_forward', '1');
    const brnf = await readSysctl(this.#target, 'net/bridge/bridge-nf-call-iptables');
    if (brnf === undefined)
      throw new Error('net.bridge.bridge-nf-call-iptables is missing: the iptables datapath needs br_netfilter (icc=false, hairpin)');
    if (brnf !== '1') await writeSysctl(this.#target, 'net/bridge/bridge-nf-call-iptables', '1');
    this.#forwardingReady = true;
    await this.#ensureForwarding6(force);
  }

  /** IPv6 forwarding and bridge-nf-call-ip6tables, once a network has IPv6 (as Docker with --ipv6). */
  async #ensureForwarding6(force: boolean): Promise<void> {
    if ((this.#forwarding6Ready && !force) || ![...this.#state.networks.values()].some((n) => n.subnet6)) return;
    if ((await readSysctl(this.#target, 'net/ipv6/conf/all/forwarding')) !== '1') await writeSysctl(this.#target, 'net/ipv6/conf/all/forwarding', '1');
    if ((await readSysctl(this.#target, 'net/bridge/bridge-nf-call-ip6tables')) !== '1') await writeSysctl(this.#target, 'net/bridge/bridge-nf-call-ip6tables', '1');
    this.#forwarding6Ready = true;
  }

  /** route_localnet on the bridge: host-originated connections to 127.0.0.1 are DNATed out of it. */
  async #ensureBridge(net: NetworkSpec): Promise<void> {
    const key = `net/ipv4/conf/${net.device}/route_localnet`;
    try {
      if ((await readSysctl(this.#target, key)) !== '1') await writeSysctl(this.#target, key, '1');
    } catch (err) {
      throw new Error(`could not set route_localnet on bridge "${net.device}" of network "${net.name}": ${(err as Error).message}`);
    }
  }

  async #ensurePorts(eps: readonly EndpointSpec[]): Promise<void> {
    try {
      await setHairpin(this.#target, eps.map((e) => e.hostIfname));
    } catch (err) {
      throw new Error(`could not turn hairpin on for bridge port(s) ${eps.map((e) => `"${e.hostIfname}"`).join(', ')}: ${(err as Error).message}`);
    }
  }

  /** Runs every step even when some fail, then reports all failures at once (start must not stop at the first). */
  async #settle(bridges: Array<() => Promise<void>>, endpoints: EndpointSpec[]): Promise<void> {
    const errors: string[] = [];
    for (const step of bridges) await step().catch((err: Error) => errors.push(err.message));
    if (endpoints.length > 0) await this.#ensurePorts(endpoints).catch((err: Error) => errors.push(err.message));
    if (errors.length > 0) throw new Error(`iptables datapath start: ${errors.join('; ')}`);
  }
}

function toDesired(s: State): DesiredState {
  return { networks: [...s.networks.values()], endpoints: [...s.endpoints.values()], ports: [...s.ports.values()] };
}

function sameMap<V>(a: ReadonlyMap<string, V>, b: ReadonlyMap<string, V>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

function sameState(a: State, b: State): boolean {
  return sameMap(a.networks, b.networks) && sameMap(a.endpoints, b.endpoints) && sameMap(a.ports, b.ports);
}

function tableBodies(rs: RuleSet): Map<Table, string> {
  return new Map([...ownedRules(rs)].map(([t, rules]) => [t, rules.join('\n')]));
}
