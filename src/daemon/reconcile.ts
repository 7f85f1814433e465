/**
 * Start-up reconciliation: make the kernel match the store. Operations a killed daemon left
 * half done are finished (removals) or undone (creations); every stored network and endpoint
 * is rebuilt if missing; kernel objects carrying this instance's prefix that the store does
 * not know are removed; then the datapath replays the whole desired state. A sandbox whose
 * kernel state cannot be rebuilt is marked unusable (`problem`) and skipped, never fatal.
 */
import { vxlanDevice } from '../datapath/ebpf/overlay.js';
import type { Datapath, DesiredState } from '../datapath/datapath.js';
import type { EngineConfig } from '../networks/config.js';
import type { NetworkService } from '../networks/service.js';
import { endpointSpec, networkSpec, portSpecs } from '../networks/spec.js';
import { removeSandboxFiles } from '../sandboxes/files.js';
import type { SandboxService } from '../sandboxes/service.js';
import type { Store } from '../store/store.js';
import type { SandboxRecord } from '../networks/model.js';
import { ensureNetns, ip, ipJson, links, listNetns, netns, removeNetns } from '../system/ip.js';
import { readdirSync } from 'node:fs';
import type { Logger } from './log.js';

export interface ReconcileReport {
  finishedRemovals: number;
  undoneCreations: number;
  undoneEndpoints: number;
  rebuiltEndpoints: number;
  strayNamespaces: string[];
  strayLinks: string[];
  /** What could not be reconciled and was left aside (marked on the sandbox), while the rest is served. */
  unusable: Array<{ kind: 'network' | 'sandbox'; name: string; reason: string }>;
}

interface VethEnd {
  ifindex: number;
  link_index?: number;
  linkinfo?: { info_kind?: string };
}

async function vethEnd(ns: ReturnType<typeof netns> | null, ifname: string): Promise<VethEnd | undefined> {
  return (await ipJson<VethEnd[]>(ns, ['-d', 'link', 'show', 'dev', ifname]).catch(() => undefined))?.[0];
}

/**
 * Refuses to tear down a host device that is not this endpoint's veth: a name taken while the
 * daemon was down (a dummy, a bridge, someone else's veth) belongs to someone else, and
 * deleting it to rebuild ours would break them. Ours is a veth whose peer is the sandbox's ifname.
 */
async function checkHostEnd(hostIfname: string, sandboxNs: string | null, ifname: string): Promise<void> {
  const host = await vethEnd(null, hostIfname);
  if (!host) return;
  const kind = host.linkinfo?.info_kind ?? 'unknown';
  if (kind !== 'veth') throw new Error(`host device ${hostIfname} exists and is a ${kind}, not the endpoint's veth: left alone`);
  const peer = sandboxNs ? await vethEnd(netns(sandboxNs), ifname) : undefined;
  if (!peer || peer.ifindex !== host.link_index || peer.link_index !== host.ifindex) {
    throw new Error(`host device ${hostIfname} is a veth whose peer is not ${ifname} in ${sandboxNs ?? 'the sandbox'}: left alone`);
  }
}

export async function reconcile(
  store: Store,
  networks: NetworkService,
  sandboxes: SandboxService,
  datapath: Datapath,
  cfg: EngineConfig,
  log: Logger,
): Promise<ReconcileReport> {
  const report: ReconcileReport = { finishedRemovals: 0, undoneCreations: 0, undoneEndpoints: 0, rebuiltEndpoints: 0, strayNamespaces: [], strayLinks: [], unusable: [] };
  const att = networks.attachments;
  // Each sandbox is reconciled on its own: one that fails is logged, marked and left out of the
  // datapath, and start-up goes on for the others (a stored row must never stop the daemon).
  const broken = new Set<string>();
  const markUnusable = (sb: SandboxRecord, reason: string) => {
    log.error(`reconcile: sandbox ${sb.name} is unusable, serving the others: ${reason}`);
    report.unusable.push({ kind: 'sandbox', name: sb.name, reason });
    broken.add(sb.id);
    try {
      const current = store.sandboxes.get(sb.id);
      if (current) store.sandboxes.update({ ...current, problem: reason });
    } catch (err) {
      log.error(`reconcile: could not mark sandbox ${sb.name} unusable: ${(err as Error).message}`);
    }
  };

  // 1. Network devices first: endpoints hang off their bridges. (The datapath comes last, in 5.)
  // A network that cannot be rebuilt is logged and left as it is: the daemon serves the rest.
  for (const net of store.networks.all()) {
    try {
      await att.driver(net).createNetwork(net);
    } catch (err) {
      const reason = (err as Error).message;
      log.error(`reconcile: network ${net.name} could not be rebuilt: ${reason}`);
      report.unusable.push({ kind: 'network', name: net.name, reason });
    }
  }

  // 2. Sandboxes a killed daemon was creating or removing.
  for (const sb of store.sandboxes.all()) {
    if (sb.state !== 'creating' && sb.state !== 'removing') continue;
    log.info(`reconcile: ${sb.state === 'creating' ? 'undoing creation' : 'finishing removal'} of sandbox ${sb.name}`);
    try {
      await sandboxes.finishInterrupted(sb);
      if (sb.state === 'creating') report.undoneCreations++;
      else report.finishedRemovals++;
    } catch (err) {
      markUnusable(sb, `could not ${sb.state === 'creating' ? 'undo its creation' : 'finish its removal'}: ${(err as Error).message}`);
    }
  }

  // 3. Endpoints: undo half-made ones, rebuild lost ones.
  for (const sb of store.sandboxes.all()) {
    if (broken.has(sb.id)) continue;
    try {
      await reconcileSandbox(sb);
      const current = store.sandboxes.get(sb.id);
      // Repaired (by hand, or the cause went away): the mark goes.
      if (current?.problem !== undefined) {
        const { problem: _gone, ...clean } = current;
        store.sandboxes.update(clean);
        log.info(`reconcile: sandbox ${sb.name} is usable again`);
      }
    } catch (err) {
      markUnusable(sb, (err as Error).message);
    }
    try {
      sandboxes.refresh(store.sandboxes.get(sb.id) ?? sb);
    } catch (err) {
      log.error(`reconcile: could not refresh the state of sandbox ${sb.name}: ${(err as Error).message}`);
    }
  }

  async function reconcileSandbox(sb: SandboxRecord): Promise<void> {
    if (sb.netns) await ensureNetns(sb.netns);
    for (const ep of store.endpoints.forSandbox(sb.id)) {
      const net = store.networks.get(ep.networkId);
      if (!net) throw new Error(`endpoint ${ep.id.slice(0, 12)} refers to network ${ep.networkId}, which is not stored`);
      if (ep.state === 'creating') {
        log.info(`reconcile: undoing half-made endpoint ${ep.id.slice(0, 12)} of ${sb.name}`);
        if (ep.hostIfname) await checkHostEnd(ep.hostIfname, sb.netns, ep.ifname);
        await att.teardown(sb, ep).catch(() => undefined);
        store.transaction(() => att.forget(ep));
        report.undoneEndpoints++;
        continue;
      }
      const driver = att.driver(net);
      if (driver.joined && !(await driver.joined(net, ep, att.target(sb, ep)))) {
        log.info(`reconcile: rebuilding endpoint of ${sb.name} on ${net.name}`);
        if (ep.hostIfname) await checkHostEnd(ep.hostIfname, sb.netns, ep.ifname);
        await driver.leave(net, ep, att.target(sb, ep)).catch(() => undefined);
        await driver.deleteEndpoint(net, ep).catch(() => undefined);
        try {
          await driver.join(net, await driver.createEndpoint(net, ep), att.target(sb, ep));
        } catch (err) {
          throw new Error(`endpoint on network ${net.name} could not be rebuilt: ${(err as Error).message}`);
        }
        report.rebuiltEndpoints++;
      }
    }
    if (sb.netns) {
      const primary = att.primary(sb.id);
      if (primary) {
        const net = store.networks.get(primary.networkId)!;
        await att.driver(net).setDefaultRoute?.(net, primary, att.target(sb, primary));
      }
      sandboxes.rewriteFiles(sb);
    }
  }

  // 4. Strays: namespaces, /etc/netns files and host links under our prefix that the store does not know.
  const knownNs = new Set(store.sandboxes.all().map((s) => s.netns).filter((n): n is string => n !== null));
  for (const name of await listNetns()) {
    if (name.startsWith(`${cfg.instance}-`) && !knownNs.has(name)) {
      await removeNetns(name).then(
        () => report.strayNamespaces.push(name),
        (err: unknown) => log.error(`reconcile: stray namespace ${name} could not be removed: ${(err as Error).message}`),
      );
    }
  }
  try {
    for (const name of readdirSync('/etc/netns')) if (name.startsWith(`${cfg.instance}-`) && !knownNs.has(name)) removeSandboxFiles(name);
  } catch {
    /* no /etc/netns yet */
  }
  // Endpoints of namespaces bpfnet does not own (dockerd's, CNI's) are re-adopted, not swept.
  const foreign = await networks.foreign.restore();
  for (const line of foreign.dropped) log.warn(`reconcile: dropped foreign endpoint ${line}`);
  const knownLinks = new Set<string>(foreign.links);
  for (const n of store.networks.all()) if (n.device) knownLinks.add(n.device);
  for (const e of store.endpoints.all()) if (e.hostIfname) knownLinks.add(e.hostIfname);
  // The host's VXLAN device carries every overlay network: kept so tunnels flow through a restart.
  if (store.networks.all().some((n) => n.scope === 'global')) knownLinks.add(vxlanDevice(cfg.linkPrefix));
  for (const l of await links(null)) {
    const name = l.ifname;
    if (name.startsWith(cfg.linkPrefix) && !knownLinks.has(name)) {
      await ip(null, ['link', 'delete', name]).catch(() => undefined);
      report.strayLinks.push(name);
    }
  }

  // Drivers whose devices live outside the link prefix (macvlan's mv*) sweep their own strays.
  for (const name of att.drivers.names()) {
    const driver = att.drivers.get(name);
    if (!driver.sweep) continue;
    const nets = store.networks.all().filter((n) => n.driver === name);
    const ids = new Set(nets.map((n) => n.id));
    try {
      // Foreign endpoints (CNI's, dockerd's) too: their devices and guard entries are theirs, not strays.
      const eps = [...store.endpoints.all(), ...networks.foreign.list().map((fe) => fe.endpoint)].filter((e) => ids.has(e.networkId));
      report.strayLinks.push(...(await driver.sweep(nets, eps)));
    } catch (err) {
      log.error(`reconcile: the ${name} driver's strays could not be removed: ${(err as Error).message}`);
    }
  }

  // 5. The datapath replays everything (and removes its own strays).
  const desired = desiredState(store, networks, broken);
  desired.endpoints.push(...foreign.endpoints.map((f) => endpointSpec(f.endpoint, f.netnsPath)));
  desired.ports.push(...foreign.ports);
  await datapath.start(desired);
  return report;
}

/** The store's content as the datapath sees it, without the sandboxes left unusable at start. */
export function desiredState(store: Store, networks: NetworkService, unusable: ReadonlySet<string> = new Set()): DesiredState {
  const att = networks.attachments;
  const bridgeNets = store.networks.all().filter((n) => att.driver(n).capabilities.datapath);
  const byId = new Map(bridgeNets.map((n) => [n.id, n]));
  const state: DesiredState = { networks: bridgeNets.map(networkSpec), endpoints: [], ports: [] };
  for (const sb of store.sandboxes.all()) {
    if (unusable.has(sb.id)) continue;
    for (const ep of store.endpoints.forSandbox(sb.id)) {
      if (ep.state === 'active' && byId.has(ep.networkId) && ep.hostIfname && ep.mac) state.endpoints.push(endpointSpec(ep, att.netnsPath(sb)));
    }
    const primary = att.primary(sb.id);
    const ports = store.ports.runsForSandbox(sb.id);
    if (primary && ports.length > 0) state.ports.push(...portSpecs(ports, primary, byId.get(primary.networkId)!));
  }
  return state;
}
