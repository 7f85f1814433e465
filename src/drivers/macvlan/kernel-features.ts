/**
 * What this kernel can build, found out by trying it once in a scratch namespace (never in
 * the daemon's): `ip link add ... type vlan` needs 8021q, `... type ipvlan` needs ipvlan.
 * Neither is a loadable-module question on every machine, so asking the kernel is the only
 * answer that holds.
 */
import { runRaw } from '../../system/exec.js';

export interface KernelFeature {
  available: boolean;
  /** What the kernel said when it refused (empty when available). */
  detail: string;
}

/** Link kinds the macvlan and ipvlan drivers may need. */
export type LinkKind = 'vlan' | 'ipvlan';

const PROBES: Record<LinkKind, string> = {
  vlan: 'ip link add link p0 name p0.5 type vlan id 5',
  ipvlan: 'ip link add link p0 name p2 type ipvlan mode l2',
};

export class KernelFeatures {
  readonly #cache = new Map<LinkKind, Promise<KernelFeature>>();

  /** Whether links of `kind` can be made here (probed once, then remembered). */
  probe(kind: LinkKind): Promise<KernelFeature> {
    let p = this.#cache.get(kind);
    if (!p) {
      p = probeLinkKind(kind);
      this.#cache.set(kind, p);
    }
    return p;
  }
}

async function probeLinkKind(kind: LinkKind): Promise<KernelFeature> {
  // unshare -n: a namespace that dies with the shell, so nothing is ever left behind.
  const script = `ip link add name p0 type veth peer name p1 && ${PROBES[kind]}`;
  const r = await runRaw('unshare', ['--net', '--', 'sh', '-c', script]);
  return r.code === 0 ? { available: true, detail: '' } : { available: false, detail: (r.stderr || r.stdout).trim() || `exit ${r.code}` };
}
