/**
 * Which published TCP ports the eBPF datapath may translate without connection tracking
 * (bpf/lib/stateless.h), per family: those that are the only way to their target. A reply from a sandbox
 * names only its own address and port; when two published ports lead to that one target (two
 * host ports, or one port on two host addresses), the reply cannot tell which the client used,
 * and those ports stay tracked. Kept per target address as the runs that were published, so a
 * range of 10,000 ports is one entry here as it is in the store.
 */
import type { PortSpec } from '../datapath.js';
import { portFamilies } from '../datapath.js';

/** The part of a published run that decides where it leads and from where, and whether it is written stateless. */
interface Run {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  count: number;
  stateless: boolean;
}

/** How one family names a port's target and host address ('' and the family's wildcard alike). */
const FAMILY = {
  v4: { target: (p: PortSpec) => p.containerIp, wildcard: '0.0.0.0' },
  v6: { target: (p: PortSpec) => p.containerIp6 ?? '', wildcard: '::' },
} as const;

/** Whether two runs to one target share a target port that they reach from different published ports. */
function clash(a: Run, b: Run): boolean {
  const lo = Math.max(a.containerPort, b.containerPort);
  const hi = Math.min(a.containerPort + a.count, b.containerPort + b.count);
  if (lo >= hi) return false;
  return a.hostIp !== b.hostIp || a.hostPort - a.containerPort !== b.hostPort - b.containerPort;
}

/** run without the host ports [from, from + count) (zero, one or two runs). */
function without(run: Run, from: number, count: number): Run[] {
  const end = run.hostPort + run.count;
  const cut = from + count;
  if (cut <= run.hostPort || from >= end) return [run];
  const left: Run[] = from > run.hostPort ? [{ ...run, count: from - run.hostPort }] : [];
  const right: Run[] = cut < end ? [{ ...run, hostPort: cut, containerPort: run.containerPort + (cut - run.hostPort), count: end - cut }] : [];
  return [...left, ...right];
}

export class StatelessPorts {
  /** target address -> the TCP runs published to it. */
  #runs = new Map<string, Run[]>();
  readonly #family: 'v4' | 'v6';

  constructor(family: 'v4' | 'v6') {
    this.#family = family;
  }

  /** Whether a port goes to this index at all: TCP, answering on this family. */
  #tracked(p: PortSpec): boolean {
    return p.protocol === 'tcp' && portFamilies(p)[this.#family];
  }

  #target(p: PortSpec): string {
    return FAMILY[this.#family].target(p);
  }

  #runOf(p: PortSpec): Run {
    return { hostIp: this.#hostIp(p), hostPort: p.hostPort, containerPort: p.containerPort, count: p.count ?? 1, stateless: true };
  }

  /** A recorded run as a port spec like `like` (same target and protocol). */
  #specOf(like: PortSpec, run: Run): PortSpec {
    return { ...like, hostIp: run.hostIp, hostPort: run.hostPort, containerPort: run.containerPort, count: run.count };
  }

  #hostIp(p: PortSpec): string {
    return p.hostIp || FAMILY[this.#family].wildcard;
  }

  /** Forgets everything (a start publishes all ports again). */
  clear(): void {
    this.#runs.clear();
  }

  /**
   * Records ports about to be published. Returns the runs already published whose way back the
   * new ones made ambiguous: they must be written again without the flag.
   */
  add(ports: readonly PortSpec[]): PortSpec[] {
    const lost: PortSpec[] = [];
    for (const p of ports) {
      if (!this.#tracked(p)) continue;
      const target = this.#target(p);
      const runs = this.#runs.get(target) ?? [];
      const run = this.#runOf(p);
      // The same run published again (a retry, a start) is already here.
      if (runs.some((r) => r.hostIp === run.hostIp && r.hostPort === run.hostPort && r.containerPort === run.containerPort && r.count === run.count)) continue;
      for (const other of runs) {
        if (!clash(run, other)) continue;
        run.stateless = false;
        if (other.stateless) lost.push(this.#specOf(p, other));
        other.stateless = false;
      }
      runs.push(run);
      this.#runs.set(target, runs);
    }
    return lost;
  }

  /**
   * Records ports unpublished. Returns the runs left alone on their target by it: they may be
   * written again with the flag.
   */
  remove(ports: readonly PortSpec[]): PortSpec[] {
    const touched = new Map<string, PortSpec>();
    for (const p of ports) {
      if (!this.#tracked(p)) continue;
      const target = this.#target(p);
      const runs = this.#runs.get(target);
      if (!runs) continue;
      const hostIp = this.#hostIp(p);
      const left = runs.flatMap((r) => (r.hostIp === hostIp ? without(r, p.hostPort, p.count ?? 1) : [r]));
      if (left.length > 0) this.#runs.set(target, left);
      else this.#runs.delete(target);
      touched.set(target, p);
    }
    const freed: PortSpec[] = [];
    for (const [target, like] of touched) {
      const runs = this.#runs.get(target) ?? [];
      for (const r of runs)
        if (!r.stateless && !runs.some((other) => other !== r && clash(r, other))) {
          r.stateless = true;
          freed.push(this.#specOf(like, r));
        }
    }
    return freed;
  }

  /** Whether port p (recorded) may go stateless: TCP on this family, and no other run to its target clashes with it. */
  stateless(p: PortSpec): boolean {
    if (!this.#tracked(p)) return false;
    const run = this.#runOf(p);
    return !(this.#runs.get(this.#target(p)) ?? []).some((other) => clash(run, other));
  }
}

/** One bitmap of TCP port numbers, counted per number: a number stays set while any of its ports is. */
class PortNumbers {
  readonly #count = new Uint32Array(65536);
  /** 1,024 little-endian 64-bit words, as the map holds them: port n is bit n % 8 of byte n / 8. */
  readonly bits = Buffer.alloc(8192);

  clear(): void {
    this.#count.fill(0);
    this.bits.fill(0);
  }

  add(p: PortSpec): void {
    for (let n = p.hostPort, end = p.hostPort + (p.count ?? 1); n < end; n++) if (this.#count[n]++ === 0) this.bits[n >> 3] |= 1 << (n & 7);
  }

  remove(p: PortSpec): void {
    for (let n = p.hostPort, end = p.hostPort + (p.count ?? 1); n < end; n++) if (this.#count[n] > 0 && --this.#count[n] === 0) this.bits[n >> 3] &= ~(1 << (n & 7));
  }
}

/** Whether a port is published on one host address of its own (not on every address). */
const onOwnAddress = (p: PortSpec) => p.hostIp !== '' && p.hostIp !== '0.0.0.0' && p.hostIp !== '::';

/**
 * The TCP port numbers published, any address and either family: the bitmap the uplink program
 * tests before the connection table (tcp_ports, bpf/shared/datapath.h), so that only segments
 * to such a number look for a stateless port first. Beside it the numbers published on an
 * address of their own (tcp_ports_at): for any other number the uplink looks only for the
 * port on every address.
 */
export class PublishedTcpPorts {
  readonly #any = new PortNumbers();
  readonly #at = new PortNumbers();

  clear(): void {
    this.#any.clear();
    this.#at.clear();
  }

  add(ports: readonly PortSpec[]): void {
    for (const p of ports)
      if (p.protocol === 'tcp') {
        this.#any.add(p);
        if (onOwnAddress(p)) this.#at.add(p);
      }
  }

  remove(ports: readonly PortSpec[]): void {
    for (const p of ports)
      if (p.protocol === 'tcp') {
        this.#any.remove(p);
        if (onOwnAddress(p)) this.#at.remove(p);
      }
  }

  /** The bitmap to write to tcp_ports[0]. */
  bitmap(): Buffer {
    return this.#any.bits;
  }

  /** The bitmap to write to tcp_ports_at[0]. */
  bitmapAt(): Buffer {
    return this.#at.bits;
  }
}
