/**
 * Which optional kernel features this host has, detected once at start without changing
 * anything: the kernel's own configuration (/proc/config.gz), BTF, the BPF filesystem, and
 * what `bpftool feature probe` reports about BPF helpers and map types (it loads tiny test
 * programs; nothing is attached).
 */
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { runRaw } from '../system/exec.js';

export interface KernelFeature {
  name: string;
  available: boolean;
  /** What uses it, or how it was detected. */
  note: string;
}

const CONFIG_FEATURES: Array<[string, string, string]> = [
  ['vxlan', 'CONFIG_VXLAN', 'overlay networks'],
  ['macvlan', 'CONFIG_MACVLAN', 'macvlan networks'],
  ['ipvlan', 'CONFIG_IPVLAN', 'ipvlan networks'],
  ['8021q', 'CONFIG_VLAN_8021Q', 'VLAN sub-interfaces (the datapath can tag in BPF without it)'],
  ['netkit', 'CONFIG_NETKIT', 'netkit devices instead of veth'],
  ['wireguard', 'CONFIG_WIREGUARD', 'encrypted overlay'],
  ['xfrm', 'CONFIG_XFRM_USER', 'IPsec overlay'],
  ['geneve', 'CONFIG_GENEVE', 'geneve overlay'],
  ['br_netfilter', 'CONFIG_BRIDGE_NETFILTER', 'iptables datapath on bridges'],
  ['nf_tables', 'CONFIG_NF_TABLES', 'iptables datapath (nf_tables backend)'],
];

const HELPERS: Array<[string, string]> = [
  ['bpf_redirect_peer', 'veth-to-veth fast path'],
  ['bpf_redirect_neigh', 'routing to the uplink'],
  ['bpf_fib_lookup', 'routing decisions in BPF'],
  ['bpf_skb_vlan_push', 'VLAN tagging in BPF'],
  ['bpf_skb_set_tunnel_key', 'overlay encapsulation'],
];

function kernelConfig(): Map<string, string> | undefined {
  try {
    const text = gunzipSync(readFileSync('/proc/config.gz')).toString('utf8');
    return new Map(text.split('\n').filter((l) => l.startsWith('CONFIG_')).map((l) => l.split('=', 2) as [string, string]));
  } catch {
    return undefined;
  }
}

function kernelAtLeast(major: number, minor: number): boolean {
  const [a, b] = release().split('.').map((x) => parseInt(x, 10));
  return a > major || (a === major && b >= minor);
}

export async function detectKernelFeatures(): Promise<KernelFeature[]> {
  const out: KernelFeature[] = [];
  out.push({ name: 'btf', available: existsSync('/sys/kernel/btf/vmlinux'), note: 'CO-RE relocations (/sys/kernel/btf/vmlinux)' });
  const mounts = (() => {
    try {
      return readFileSync('/proc/self/mounts', 'utf8');
    } catch {
      return '';
    }
  })();
  out.push({ name: 'bpffs', available: /\s\/sys\/fs\/bpf\sbpf\s/.test(mounts), note: 'pinned maps survive daemon restarts (/sys/fs/bpf)' });
  out.push({ name: 'tcx', available: kernelAtLeast(6, 6), note: 'TC hooks as BPF links (kernel >= 6.6)' });
  const cfg = kernelConfig();
  for (const [name, key, note] of CONFIG_FEATURES) {
    const v = cfg?.get(key);
    out.push({ name, available: v === 'y' || v === 'm', note: cfg ? `${note} (${key}=${v ?? 'n'})` : `${note} (no /proc/config.gz: unknown)` });
  }
  const probe = await runRaw('bpftool', ['feature', 'probe', 'kernel', '-j'], { timeoutMs: 10_000 }).catch(() => undefined);
  let parsed: { helpers?: Record<string, string[]>; map_types?: Record<string, boolean> } | undefined;
  try {
    parsed = probe && probe.code === 0 ? JSON.parse(probe.stdout) : undefined;
  } catch {
    parsed = undefined;
  }
  const tcHelpers = new Set(parsed?.helpers?.sched_cls_available_helpers ?? []);
  for (const [helper, note] of HELPERS)
    out.push({ name: helper, available: tcHelpers.has(helper), note: parsed ? `${note} (bpftool feature probe)` : `${note} (bpftool missing: unknown)` });
  out.push({ name: 'ringbuf', available: parsed?.map_types?.have_ringbuf_map_type === true, note: parsed ? 'drop events and the flow log' : 'bpftool missing: unknown' });
  return out;
}
