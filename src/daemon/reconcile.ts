/**
 * Start-up reconciliation: make the kernel match the store. Operations a killed daemon left
 * half done are finished (removals) or undone (creations); every stored network and endpoint
 * is rebuilt if missing; kernel objects carrying this instance's prefix that the store does
 * not know are removed; then the datapath replays the whole desired state.
 */
import type { Datapath, DesiredState } from '../datapath/datapath.js';
import type { EngineConfig } from '../networks/config.js';
import type { NetworkService } from '../networks/service.js';
import { endpointSpec, networkSpec, portSpecs } from '../networks/spec.js';
import { removeSandboxFiles } from '../sandboxes/files.js';
import type { SandboxService } from '../sandboxes/service.js';
import type { Store } from '../store/store.js';
import { ensureNetns, ip, links, listNetns, removeNetns } from '../system/ip.js';
import { readdirSync } from 'node:fs';
import type { Logger } from './log.js';

export interface ReconcileReport {
  finishedRemovals: number;
  undoneCreations: number;
  undoneEndpoints: number;
  rebuiltEndpoints: number;
  strayNamespaces: string[];
  strayLinks: string[];
}

export async function reconcile(
  store: Store,
  networks: NetworkService,
  sandboxes: SandboxService,
  datapath: Datapath,
  cfg: EngineConfig,
  log: Logger,
): Promise<ReconcileReport> {
  const report: ReconcileReport = { finishedRemovals: 0, undoneCreations: 0, undoneEndpoints: 0, rebuiltEndpoints: 0, strayNamespaces: [], strayLinks: [] };
  const att = networks.attachments;

  // 1. Network devices first: endpoints hang off their bridges. (The datapath comes last, in 5.)
  for (const net of store.networks.all()) await att.driver(net).createNetwork(net);

  // 2. Sandboxes a killed daemon was creating or removing.
  for (const sb of store.sandboxes.all()) {
    if (sb.state === 'creating' || sb.state === 'removing') {
      log.info(`reconcile: ${sb.state === 'creating' ? 'undoing creation' : 'finishing removal'} of sandbox ${sb.name}`);
      await sandboxes.finishInterrupted(sb);
      if (sb.state === 'creating') report.undoneCreations++;
      else report.finishedRemovals++;
    }
  }

  // 3. Endpoints: undo half-made ones, rebuild lost ones.
  for (const sb of store.sandboxes.all()) {
    if (sb.netns) await ensureNetns(sb.netns);
    for (const ep of store.endpoints.forSandbox(sb.id)) {
      if (ep.state === 'creating') {
        log.info(`reconcile: undoing half-made endpoint ${ep.id.slice(0, 12)} of ${sb.name}`);
        await att.teardown(sb, ep).catch(() => undefined);
        store.transaction(() => att.forget(ep));
        report.undoneEndpoints++;
        continue;
      }
      const net = store.networks.get(ep.networkId)!;
      const driver = att.driver(net);
      if (driver.joined && !(await driver.joined(net, ep, att.target(sb, ep)))) {
        log.info(`reconcile: rebuilding endpoint of ${sb.name} on ${net.name}`);
        await driver.leave(net, ep, att.target(sb, ep)).catch(() => undefined);
        await driver.deleteEndpoint(net, ep).catch(() => undefined);
        await driver.join(net, await driver.createEndpoint(net, ep), att.target(sb, ep));
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
    sandboxes.refresh(sb);
  }

  // 4. Strays: namespaces, /etc/netns files and host links under our prefix that the store does not know.
  const knownNs = new Set(store.sandboxes.all().map((s) => s.netns).filter((n): n is string => n !== null));
  for (const name of await listNetns()) {
    if (name.startsWith(`${cfg.instance}-`) && !knownNs.has(name)) {
      await removeNetns(name);
      report.strayNamespaces.push(name);
    }
  }
  try {
    for (const name of readdirSync('/etc/netns')) if (name.startsWith(`${cfg.instance}-`) && !knownNs.has(name)) removeSandboxFiles(name);
  } catch {
    /* no /etc/netns yet */
  }
  const knownLinks = new Set<string>();
  for (const n of store.networks.all()) if (n.device) knownLinks.add(n.device);
  for (const e of store.endpoints.all()) if (e.hostIfname) knownLinks.add(e.hostIfname);
  for (const l of await links(null)) {
    const name = l.ifname;
    if (name.startsWith(cfg.linkPrefix) && !knownLinks.has(name)) {
      await ip(null, ['link', 'delete', name]).catch(() => undefined);
      report.strayLinks.push(name);
    }
  }

  // 5. The datapath replays everything (and removes its own strays).
  await datapath.start(desiredState(store, networks));
  return report;
}

/** The store's content as the datapath sees it. */
export function desiredState(store: Store, networks: NetworkService): DesiredState {
  const att = networks.attachments;
  const bridgeNets = store.networks.all().filter((n) => att.driver(n).capabilities.datapath);
  const byId = new Map(bridgeNets.map((n) => [n.id, n]));
  const state: DesiredState = { networks: bridgeNets.map(networkSpec), endpoints: [], ports: [] };
  for (const sb of store.sandboxes.all()) {
    for (const ep of store.endpoints.forSandbox(sb.id)) {
      if (ep.state === 'active' && byId.has(ep.networkId) && ep.hostIfname && ep.mac) state.endpoints.push(endpointSpec(ep, att.netnsPath(sb)));
    }
    const primary = att.primary(sb.id);
    const ports = store.ports.forSandbox(sb.id);
    if (primary && ports.length > 0) state.ports.push(...portSpecs(ports, primary, byId.get(primary.networkId)!));
  }
  return state;
}
