/**
 * The state store the service depends on. One API operation = one transaction():
 * either everything it wrote is there after a crash, or nothing is.
 */
import type { IpamStore } from '../ipam/allocator.js';
export type { Reservation } from '../ipam/allocator.js';
import type { EndpointRecord, NetworkRecord, PortRecord, PortRun, SandboxRecord } from '../networks/model.js';

/**
 * A write the store refused because it would break a constraint (an id or name already
 * taken, a record that others still point at, one that is not there): the conditional
 * outcome a store shared between hosts reports when its compare-and-swap loses.
 */
export class StoreConflict extends Error {
  readonly kind = 'store-conflict';
}

/** A table of records keyed by id, in insertion order. */
export interface RecordTable<T extends { id: string }> {
  all(): T[];
  get(id: string): T | undefined;
  /** Creates the record only if its id (and name, where the table has one) is free; else StoreConflict. */
  insert(record: T): void;
  /** Replaces an existing record; StoreConflict if there is none or its new name is taken. */
  update(record: T): void;
  /** Removes the record if present; StoreConflict if other records still refer to it. */
  delete(id: string): void;
}

/** A table whose records also have a unique name (networks, sandboxes): found by it without reading the rest. */
export interface NamedTable<T extends { id: string; name: string }> extends RecordTable<T> {
  byName(name: string): T | undefined;
}

/** Documents keyed by (kind, id), in insertion order. */
export interface DocumentTable {
  all(kind: string): Array<{ id: string; doc: string }>;
  get(kind: string, id: string): string | undefined;
  /** Inserts or replaces. */
  put(kind: string, id: string, doc: string): void;
  delete(kind: string, id: string): void;
}

/** A stored row that could not be used, moved aside at start (see SqliteStore.quarantineUnusable). */
export interface QuarantinedRow {
  table: string;
  id: string;
  doc: string;
  reason: string;
}

export interface Store {
  /** Runs fn in one transaction; rolls back if it throws. Nested calls join the outer one. */
  transaction<T>(fn: () => T): T;
  readonly networks: NamedTable<NetworkRecord>;
  readonly sandboxes: NamedTable<SandboxRecord>;
  readonly endpoints: RecordTable<EndpointRecord> & {
    forNetwork(networkId: string): EndpointRecord[];
    forSandbox(sandboxId: string): EndpointRecord[];
  };
  /** Published ports, kept per sandbox (a range of 10,000 is one write, not 10,000). */
  readonly ports: {
    all(): PortRecord[];
    /** One record per port. */
    forSandbox(sandboxId: string): PortRecord[];
    /** The same ports as runs (a range is one), for the paths that publish them. */
    runsForSandbox(sandboxId: string): PortRun[];
    /** Sets a sandbox's ports (replacing any it had), only if no other sandbox holds one of them; else StoreConflict. */
    setForSandbox(sandboxId: string, ports: readonly PortRun[]): void;
    deleteForSandbox(sandboxId: string): void;
  };
  readonly ipam: IpamStore & {
    /** Releases every address an owner holds. */
    releaseOwner(owner: string): void;
    /** Releases every address of a pool (network removal). */
    dropPool(pool: string): void;
  };
  /** Rows moved aside at start because they could not be used (kept for a human, never read back). */
  readonly quarantine: {
    all(): QuarantinedRow[];
    /** Checks every stored row and moves the unusable ones (and what depends on them) aside. */
    sweep(): QuarantinedRow[];
  };
  /**
   * Documents of front-ends kept beside the records (the Docker plugin's pools and endpoints,
   * foreign endpoints), by kind and id: JSON text, written in the caller's transaction.
   */
  readonly documents: DocumentTable;
  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string): void;
  close(): void;
}
