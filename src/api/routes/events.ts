/**
 * GET /events: moby's event stream, for network events. Past events from `since` are replayed
 * first; with `until` in the past the response ends after them, otherwise it stays open and
 * carries each new event as one JSON object per line until `until` or the client leaves.
 */
import { matchesEvent, parseEventFilters, parseEventTime } from '../../observe/event-filters.js';
import type { EventMessage, NetworkEvents } from '../../observe/network-events.js';
import type { Router } from '../router.js';

export function eventRoutes(router: Router, events: NetworkEvents): void {
  router.on('GET', '/events', (req, res) => {
    const filter = parseEventFilters(req.query.get('filters'));
    const since = parseEventTime('since', req.query.get('since'));
    const until = parseEventTime('until', req.query.get('until'));
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const pass = (e: EventMessage) => matchesEvent(e, filter) && (until === undefined || BigInt(e.timeNano) <= until);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    const send = (e: EventMessage) => res.write(`${JSON.stringify(e)}\n`);
    if (since !== undefined) for (const e of events.history()) if (BigInt(e.timeNano) >= since && pass(e)) send(e);
    if (until !== undefined && until <= nowNs) {
      res.end();
      return;
    }
    const unsubscribe = events.subscribe((e) => {
      if (pass(e)) send(e);
    });
    // setTimeout takes at most 2^31-1 ms (longer fires at once): a later `until` just streams until the client leaves.
    const waitMs = until !== undefined ? Number((until - nowNs) / 1_000_000n) : Infinity;
    const timer = waitMs <= 2 ** 31 - 1 ? setTimeout(() => res.end(), waitMs) : undefined;
    const done = () => {
      unsubscribe();
      if (timer) clearTimeout(timer);
    };
    req.raw.once('close', done);
    res.once('close', done);
  });
}
