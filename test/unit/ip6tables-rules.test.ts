// The ip6tables half of the iptables datapath against golden files, as iptables-rules.test.ts
// does for IPv4: dual-stack, IPv6-only, routed (gateway_mode_ipv6=routed), internal and
// icc=false networks, ports on every family, on [::] and on [::1]; and the IPv4 rule set of a
// dual-stack state leaves the IPv6 side out.
// Regenerate with UPDATE_GOLDEN=1 npx vitest run --project unit test/unit/ip6tables-rules.test.ts
import { describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DesiredState, EndpointSpec, NetworkSpec, PortSpec } from '../../src/datapath/datapath.js';
import { fullPlan, renderRules, restoreText } from '../../src/datapath/iptables/rules.js';
import { projectRoot } from '../../src/paths.js';

const GOLDEN_DIR = join(projectRoot, 'test', 'unit', 'testdata', 'ip6tables');
const ctx = { linkPrefix: 'bn3f2a' };

function network(over: Partial<NetworkSpec> & Pick<NetworkSpec, 'id' | 'device'>): NetworkSpec {
  return { name: over.id, subnet: '', gateway: '', internal: false, icc: true, masquerade: true, hostBinding: '', ...over };
}

function endpoint(id: string, net: NetworkSpec, ipv4: string, ipv6: string, hostIfname: string): EndpointSpec {
  return { id, networkId: net.id, sandboxId: `sb-${id}`, hostIfname, ifname: 'eth0', netnsPath: `/run/netns/${id}`, ipv4, ipv6, mac: '02:42:ac:11:00:02' };
}

function port(ep: EndpointSpec, protocol: 'tcp' | 'udp', hostPort: number, containerPort: number, hostIp = ''): PortSpec {
  return { protocol, hostIp, hostPort, endpointId: ep.id, networkId: ep.networkId, containerIp: ep.ipv4, containerIp6: ep.ipv6, containerPort };
}

const dual = network({ id: 'bridge', device: 'bn3f2a0', subnet: '172.17.0.0/16', gateway: '172.17.0.1', subnet6: 'fd00:17::/64', gateway6: 'fd00:17::1' });
const c1 = endpoint('c1', dual, '172.17.0.2', 'fd00:17::2', 'bn3f2a-v1');

const scenarios: Record<string, () => DesiredState> = {
  'dual-stack': () => ({
    networks: [dual],
    endpoints: [c1],
    ports: [port(c1, 'tcp', 8080, 80), port(c1, 'tcp', 8081, 80, '::1'), port(c1, 'udp', 5353, 53, '::'), port(c1, 'tcp', 8082, 80, '0.0.0.0')],
  }),
  'ipv6-only': () => {
    const net = network({ id: 'six', device: 'bn3f2a-six', subnet6: 'fd00:6::/64', gateway6: 'fd00:6::1' });
    const ep = endpoint('c2', net, '', 'fd00:6::2', 'bn3f2a-v2');
    return { networks: [net], endpoints: [ep], ports: [port(ep, 'tcp', 8080, 80)] };
  },
  routed: () => {
    const net = network({ id: 'routed', device: 'bn3f2a-rt', subnet: '10.50.0.0/24', gateway: '10.50.0.1', subnet6: 'fd00:50::/64', gateway6: 'fd00:50::1', masquerade6: false });
    const ep = endpoint('c3', net, '10.50.0.2', 'fd00:50::2', 'bn3f2a-v3');
    return { networks: [net], endpoints: [ep], ports: [port(ep, 'tcp', 8080, 80)] };
  },
  'internal-icc-false': () => {
    const int = network({ id: 'int', device: 'bn3f2a-int', subnet6: 'fd00:10::/64', gateway6: 'fd00:10::1', internal: true });
    const quiet = network({ id: 'quiet', device: 'bn3f2a-nic', subnet6: 'fd00:20::/64', gateway6: 'fd00:20::1', icc: false });
    const a = endpoint('c4', int, '', 'fd00:10::2', 'bn3f2a-v4');
    const b = endpoint('c5', quiet, '', 'fd00:20::2', 'bn3f2a-v5');
    return { networks: [int, quiet], endpoints: [a, b], ports: [port(a, 'tcp', 8080, 80), port(b, 'tcp', 8081, 80)] };
  },
};

function golden(name: string, text: string): string {
  const file = join(GOLDEN_DIR, `${name}.rules`);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(file, text);
  }
  return readFileSync(file, 'utf8');
}

describe('ip6tables rules: golden files', () => {
  for (const [name, make] of Object.entries(scenarios)) {
    it(`${name}: the first apply's ip6tables-restore input`, () => {
      const rs = renderRules(make(), ctx, 6);
      const text = restoreText(rs, fullPlan(rs));
      expect(text).toBe(golden(name, text));
    });
  }

  it('keeps each family to its own rule set', () => {
    const state = scenarios['dual-stack']();
    const v4 = restoreText(renderRules(state, ctx, 4), fullPlan(renderRules(state, ctx, 4)));
    const v6 = restoreText(renderRules(state, ctx, 6), fullPlan(renderRules(state, ctx, 6)));
    expect(v4).not.toMatch(/fd00|::1/);
    expect(v6).not.toMatch(/172\.17|127\.0\.0\.1/);
    // '' publishes on both families; '0.0.0.0' on IPv4 only; '::' and '::1' on IPv6 only.
    expect(v4).toMatch(/--dport 8080 -j DNAT --to-destination 172\.17\.0\.2:80/);
    expect(v4).toMatch(/--dport 8082 -j DNAT/);
    expect(v4).not.toMatch(/--dport (8081|5353) /);
    expect(v6).toMatch(/--dport 8080 -j DNAT --to-destination \[fd00:17::2\]:80/);
    expect(v6).toMatch(/-d ::1\/128 -p tcp -m tcp --dport 8081 -j DNAT/);
    expect(v6).toMatch(/-p udp -m udp --dport 5353 -j DNAT --to-destination \[fd00:17::2\]:53/);
    expect(v6).not.toMatch(/--dport 8082 /);
  });

  it('masquerades IPv6 only in NAT mode, and leaves routed sandbox addresses to the filter chains', () => {
    const v6 = restoreText(renderRules(scenarios.routed(), ctx, 6), fullPlan(renderRules(scenarios.routed(), ctx, 6)));
    expect(v6).not.toMatch(/-s fd00:50::\/64 ! -o bn3f2a-rt -j MASQUERADE/);
    expect(v6).not.toMatch(/-d fd00:50::2\/128 ! -i bn3f2a-rt -j DROP/);
    expect(v6).toMatch(/-d fd00:50::2\/128 ! -i bn3f2a-rt -o bn3f2a-rt -p tcp -m tcp --dport 80 -j ACCEPT/);
    const v4 = restoreText(renderRules(scenarios.routed(), ctx, 4), fullPlan(renderRules(scenarios.routed(), ctx, 4)));
    expect(v4).toMatch(/-s 10\.50\.0\.0\/24 ! -o bn3f2a-rt -j MASQUERADE/);
  });
});
