/** Datapath observability: per-sandbox counters and the live stream of drops. */
import { isObservable, type Datapath } from '../../datapath/datapath.js';
import { invalid } from '../../errors.js';
import type { SandboxService } from '../../sandboxes/service.js';
import type { Store } from '../../store/store.js';
import { sendJson, type Router } from '../router.js';
import type { DropEvent, SandboxStats } from '../types.js';

export function observeRoutes(router: Router, datapath: Datapath, sandboxes: SandboxService, store: Store): void {
  router.on('GET', '/sandboxes/{id}/stats', (req, res) => {
    if (!isObservable(datapath)) throw invalid(`the ${datapath.kind} datapath keeps no counters: run the daemon with --datapath ebpf`);
    const sb = sandboxes.resolve(req.params.id);
    const stats: SandboxStats = { Id: sb.id, Name: sb.name, Endpoints: [] };
    for (const ep of store.endpoints.forSandbox(sb.id)) {
      if (ep.state !== 'active' || !ep.hostIfname) continue;
      const c = datapath.counters(ep.hostIfname);
      stats.Endpoints.push({
        Network: store.networks.get(ep.networkId)?.name ?? ep.networkId,
        InterfaceName: ep.ifname,
        RxPackets: c?.rxPackets ?? 0,
        RxBytes: c?.rxBytes ?? 0,
        TxPackets: c?.txPackets ?? 0,
        TxBytes: c?.txBytes ?? 0,
        Drops: c?.drops ?? {},
      });
    }
    sendJson(res, 200, stats);
  });

  router.on('GET', '/events/drops', (req, res) => {
    if (!isObservable(datapath)) throw invalid(`the ${datapath.kind} datapath reports no drops: run the daemon with --datapath ebpf`);
    // Host veth -> "sandbox/ethN", so a drop names who sent or would have received it.
    const owner = (iface: string): string => {
      const ep = store.endpoints.all().find((e) => e.hostIfname === iface);
      const sb = ep ? store.sandboxes.get(ep.sandboxId) : undefined;
      return sb && ep ? `${sb.name}/${ep.ifname}` : iface;
    };
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
    res.flushHeaders();
    const unsubscribe = datapath.onDrop((d) => {
      const event: DropEvent = {
        Time: d.time.toISOString(),
        Reason: d.reason,
        Protocol: d.protocol,
        Source: d.source,
        Destination: d.destination,
        Interface: owner(d.interface),
      };
      res.write(`${JSON.stringify(event)}\n`);
    });
    req.raw.once('close', unsubscribe);
    res.once('close', unsubscribe);
  });
}
