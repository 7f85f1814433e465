/**
 * GET /events/flows: the flow log as JSON lines until the client leaves. Query filters:
 * sandbox (name or id), network (name), port, verdict (forwarded or dropped). Subscribing
 * turns the flow log on in the datapath; the last client leaving turns it off.
 */
import { invalid } from '../../errors.js';
import type { FlowFilter, FlowLog } from '../../observe/flow-log.js';
import type { Router } from '../router.js';

export function parseFlowFilter(q: URLSearchParams): FlowFilter {
  const f: FlowFilter = {};
  const sandbox = q.get('sandbox');
  const network = q.get('network');
  const port = q.get('port');
  const verdict = q.get('verdict');
  if (sandbox) f.sandbox = sandbox;
  if (network) f.network = network;
  if (port !== null && port !== '') {
    const n = Number(port);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw invalid(`invalid port filter "${port}": a number from 0 to 65535`);
    f.port = n;
  }
  if (verdict !== null && verdict !== '') {
    if (verdict !== 'forwarded' && verdict !== 'dropped') throw invalid(`invalid verdict filter "${verdict}": forwarded or dropped`);
    f.verdict = verdict;
  }
  return f;
}

export function flowRoutes(router: Router, flows: FlowLog | undefined, datapathKind: string): void {
  router.on('GET', '/events/flows', (req, res) => {
    if (!flows) throw invalid(`the ${datapathKind} datapath keeps no flow log: run the daemon with --datapath ebpf`);
    const filter = parseFlowFilter(req.query);
    // Subscribe first: a datapath that cannot turn the flow log on answers with an error status.
    const unsubscribe = flows.subscribe(filter, (r) => res.write(`${JSON.stringify(r)}\n`));
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
    res.flushHeaders();
    let done = false;
    const end = () => {
      if (!done) (done = true), unsubscribe();
    };
    req.raw.once('close', end);
    res.once('close', end);
  });
}
