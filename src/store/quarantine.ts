/**
 * Which stored rows cannot be used, decided over the raw rows of any Store implementation,
 * and how they are moved aside: dependents first (an endpoint of a quarantined network goes
 * too), their addresses freed, the rows kept in the quarantine table for a human.
 */
import { canonicalIp } from '../ipam/ip.js';
import { endpointProblem, networkProblem, portsProblem, sandboxProblem } from './record-check.js';
import type { QuarantinedRow, Store } from './store.js';

/** Rows as stored: the key columns beside the JSON document, which may be anything. */
export interface RawRows {
  networks: Array<{ id: string; name: string; doc: string }>;
  sandboxes: Array<{ id: string; name: string; doc: string }>;
  endpoints: Array<{ id: string; networkId: string; sandboxId: string; doc: string }>;
  ports: Array<{ sandboxId: string; doc: string }>;
}

function docField(doc: string, key: string): unknown {
  try {
    return (JSON.parse(doc) as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

/** The unusable rows, in table order networks, sandboxes, endpoints, sandbox_ports. */
export function findUnusable(rows: RawRows): QuarantinedRow[] {
  const out: QuarantinedRow[] = [];
  const bad = (table: string, id: string, doc: string, reason: string) => out.push({ table, id, doc: String(doc), reason });
  const goodNetworks = new Set<string>();
  for (const r of rows.networks) {
    const reason = networkProblem(r.doc) ?? (docField(r.doc, 'id') !== r.id || docField(r.doc, 'name') !== r.name ? 'id or name differs from its row' : undefined);
    if (reason) bad('networks', r.id, r.doc, reason);
    else goodNetworks.add(r.id);
  }
  const goodSandboxes = new Set<string>();
  for (const r of rows.sandboxes) {
    const reason = sandboxProblem(r.doc) ?? (docField(r.doc, 'id') !== r.id || docField(r.doc, 'name') !== r.name ? 'id or name differs from its row' : undefined);
    if (reason) bad('sandboxes', r.id, r.doc, reason);
    else goodSandboxes.add(r.id);
  }
  for (const r of rows.endpoints) {
    const reason =
      endpointProblem(r.doc) ??
      (docField(r.doc, 'id') !== r.id || docField(r.doc, 'networkId') !== r.networkId || docField(r.doc, 'sandboxId') !== r.sandboxId
        ? 'id, networkId or sandboxId differs from its row'
        : !goodNetworks.has(r.networkId)
          ? `its network ${r.networkId} is missing or quarantined`
          : !goodSandboxes.has(r.sandboxId)
            ? `its sandbox ${r.sandboxId} is missing or quarantined`
            : undefined);
    if (reason) bad('endpoints', r.id, r.doc, reason);
  }
  for (const r of rows.ports) {
    const reason = portsProblem(r.doc) ?? (!goodSandboxes.has(r.sandboxId) ? `its sandbox ${r.sandboxId} is missing or quarantined` : undefined);
    if (reason) bad('sandbox_ports', r.sandboxId, r.doc, reason);
  }
  return out;
}

/**
 * Moves the rows aside through the store's own verbs, in one transaction; keep() records
 * each in the store's quarantine table. Returns found.
 */
export function moveAside(store: Store, rows: RawRows, found: QuarantinedRow[], keep: (q: QuarantinedRow) => void): QuarantinedRow[] {
  if (found.length === 0) return [];
  const sandboxNames = new Map(rows.sandboxes.map((s) => [s.id, s.name]));
  store.transaction(() => {
    // Dependents first (foreign keys), then what they hang off.
    for (const table of ['sandbox_ports', 'endpoints', 'sandboxes', 'networks']) {
      for (const q of found.filter((x) => x.table === table)) {
        keep(q);
        if (table === 'sandbox_ports') store.ports.deleteForSandbox(q.id);
        if (table === 'endpoints') {
          store.endpoints.delete(q.id);
          const pool = docField(q.doc, 'networkId');
          for (const field of ['ipv4', 'ipv6']) {
            const address = canonicalIp(String(docField(q.doc, field)));
            if (address !== undefined && typeof pool === 'string') store.ipam.release(pool, address);
          }
        }
        if (table === 'sandboxes') {
          store.sandboxes.delete(q.id);
          store.ipam.releaseOwner(`sandbox ${sandboxNames.get(q.id)}`);
        }
        if (table === 'networks') {
          store.networks.delete(q.id);
          store.ipam.dropPool(q.id);
        }
      }
    }
  });
  return found;
}
