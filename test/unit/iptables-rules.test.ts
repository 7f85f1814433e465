// The iptables datapath's rule set against golden files: each scenario renders the
// iptables-restore input the first apply sends to a namespace without our chains.
// Regenerate with UPDATE_GOLDEN=1 npx vitest run --project unit test/unit/iptables-rules.test.ts
import { describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DesiredState, EndpointSpec, NetworkSpec, PortSpec } from '../../src/datapath/datapath.js';
import {
  chainNames,
  fullPlan,
  parseSave,
  planHooks,
  planReconcile,
  planTeardown,
  renderRules,
  restoreText,
} from '../../src/datapath/iptables/rules.js';
import { projectRoot } from '../../src/paths.js';

const GOLDEN_DIR = join(projectRoot, 'test', 'unit', 'testdata', 'iptables');
const ctx = { linkPrefix: 'bn3f2a' };

function network(over: Partial<NetworkSpec> & Pick<NetworkSpec, 'id' | 'device' | 'subnet'>): NetworkSpec {
  return {
    name: over.id,
    gateway: over.subnet.replace(/\.0\/\d+$/, '.1'),
    internal: false,
    icc: true,
    masquerade: true,
    hostBinding: '',
    ...over,
  };
}

function endpoint(id: string, net: NetworkSpec, ipv4: string, hostIfname: string): EndpointSpec {
  return { id, networkId: net.id, sandboxId: `sb-${id}`, hostIfname, ifname: 'eth0', netnsPath: `/run/netns/${id}`, ipv4, mac: '02:42:ac:11:00:02' };
}

function port(ep: EndpointSpec, protocol: 'tcp' | 'udp', hostPort: number, containerPort: number, hostIp = ''): PortSpec {
  return { protocol, hostIp, hostPort, endpointId: ep.id, networkId: ep.networkId, containerIp: ep.ipv4, containerPort };
}

const bridge = network({ id: 'bridge', device: 'bn3f2a0', subnet: '172.17.0.0/16' });
const c1 = endpoint('c1', bridge, '172.17.0.2', 'bn3f2a-v1');

const scenarios: Record<string, () => DesiredState> = {
  'default-bridge': () => ({ networks: [bridge], endpoints: [c1], ports: [port(c1, 'tcp', 8080, 80)] }),
  internal: () => {
    const net = network({ id: 'int', device: 'bn3f2a-int', subnet: '10.10.0.0/24', internal: true });
    const ep = endpoint('c2', net, '10.10.0.2', 'bn3f2a-v2');
    // A port on an internal network is not published (Docker's rule): no DNAT, no ACCEPT.
    return { networks: [bridge, net], endpoints: [c1, ep], ports: [port(ep, 'tcp', 8080, 80)] };
  },
  'icc-false': () => {
    const net = network({ id: 'noicc', device: 'bn3f2a-nic', subnet: '10.20.0.0/24', icc: false });
    const ep = endpoint('c3', net, '10.20.0.2', 'bn3f2a-v3');
    return { networks: [net], endpoints: [ep], ports: [port(ep, 'tcp', 8080, 80)] };
  },
  'two-networks': () => {
    const a = network({ id: 'neta', device: 'bn3f2a-a', subnet: '10.30.1.0/24' });
    const b = network({ id: 'netb', device: 'bn3f2a-b', subnet: '10.30.2.0/24' });
    const s1 = endpoint('s1', a, '10.30.1.2', 'bn3f2a-v4');
    const both1 = endpoint('both-a', a, '10.30.1.3', 'bn3f2a-v5');
    const both2 = endpoint('both-b', b, '10.30.2.3', 'bn3f2a-v6');
    const s2 = endpoint('s2', b, '10.30.2.2', 'bn3f2a-v7');
    return { networks: [b, a], endpoints: [s2, both2, both1, s1], ports: [port(s1, 'tcp', 8080, 80), port(both1, 'tcp', 8081, 80)] };
  },
  'port-range': () => ({
    networks: [bridge],
    endpoints: [c1],
    ports: [8000, 8001, 8002].flatMap((p, i) => [port(c1, 'tcp', p, 9000 + i), port(c1, 'udp', p, 9000 + i)]),
  }),
  'loopback-binding': () => ({
    networks: [bridge],
    endpoints: [c1],
    ports: [port(c1, 'tcp', 8081, 80, '127.0.0.1'), port(c1, 'tcp', 8080, 80), port(c1, 'udp', 5353, 53, '198.18.0.1')],
  }),
  'masquerade-disabled': () => {
    const net = network({ id: 'nomasq', device: 'bn3f2a-nm', subnet: '10.40.0.0/24', masquerade: false });
    const ep = endpoint('c4', net, '10.40.0.2', 'bn3f2a-v8');
    return { networks: [net], endpoints: [ep], ports: [port(ep, 'tcp', 8080, 80)] };
  },
  empty: () => ({ networks: [], endpoints: [], ports: [] }),
};

function golden(name: string, text: string): string {
  const file = join(GOLDEN_DIR, `${name}.rules`);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(file, text);
  }
  return readFileSync(file, 'utf8');
}

describe('iptables rules: golden files', () => {
  for (const [name, scenario] of Object.entries(scenarios)) {
    it(name, () => {
      const rs = renderRules(scenario(), ctx);
      const text = restoreText(rs, fullPlan(rs));
      expect(text).toBe(golden(name, text));
    });
  }
});

describe('iptables rules: rendering', () => {
  it('is independent of the order of the input', () => {
    const s = scenarios['two-networks']();
    const reversed = { networks: [...s.networks].reverse(), endpoints: [...s.endpoints].reverse(), ports: [...s.ports].reverse() };
    expect(renderRules(reversed, ctx)).toEqual(renderRules(s, ctx));
  });

  it('uses the network host binding for ports without a host address', () => {
    const net = { ...bridge, hostBinding: '198.18.0.1' };
    const rs = renderRules({ networks: [net], endpoints: [c1], ports: [port(c1, 'tcp', 8080, 80)] }, ctx);
    expect(rs.chains.find((c) => c.table === 'nat' && c.name === 'BN3F2A')!.rules).toEqual([
      '-d 198.18.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80',
    ]);
  });

  it('writes one ACCEPT and one hairpin rule per container port, and a bound address before the wildcard', () => {
    const rs = renderRules({ networks: [bridge], endpoints: [c1], ports: [port(c1, 'tcp', 8080, 80), port(c1, 'tcp', 8080, 80, '127.0.0.1')] }, ctx);
    const chain = (table: string, name: string) => rs.chains.find((c) => c.table === table && c.name === name)!.rules;
    expect(chain('filter', 'BN3F2A').filter((r) => r.includes('ACCEPT'))).toHaveLength(1);
    expect(chain('nat', 'BN3F2A-POSTROUTING').filter((r) => r.includes('--dport'))).toHaveLength(1);
    expect(chain('nat', 'BN3F2A')).toEqual([
      '-d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80',
      '-p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80',
    ]);
  });

  it('refuses one host binding published to two targets, and invalid specs, naming them', () => {
    const c2 = endpoint('c2', bridge, '172.17.0.3', 'bn3f2a-v2');
    expect(() => renderRules({ networks: [bridge], endpoints: [c1, c2], ports: [port(c1, 'tcp', 8080, 80), port(c2, 'tcp', 8080, 80)] }, ctx)).toThrow(
      /tcp\/8080: already published to 172.17.0.2:80/,
    );
    expect(() => renderRules({ networks: [{ ...bridge, device: 'bad name' }], endpoints: [], ports: [] }, ctx)).toThrow(/invalid bridge device name "bad name"/);
    expect(() => renderRules({ networks: [bridge], endpoints: [], ports: [{ ...port(c1, 'tcp', 8080, 80), hostIp: '::1' }] }, ctx)).toThrow(/"::1" is IPv6 and the sandbox has no IPv6 address/);
    expect(() => renderRules({ networks: [bridge], endpoints: [], ports: [port(c1, 'tcp', 70000, 80)] }, ctx)).toThrow(/invalid protocol or port/);
  });

  it('refuses prefixes that make invalid or too long chain names', () => {
    expect(() => chainNames('bn-3f')).toThrow(/letters and digits/);
    expect(() => chainNames('abcdefghijklm')).toThrow(/longer than 28/);
    expect(chainNames('bnl1a2b3c').isolation1).toBe('BNL1A2B3C-ISOLATION-STAGE-1');
  });
});

describe('iptables rules: planning against what the kernel holds', () => {
  const rs = renderRules(scenarios['default-bridge'](), ctx);
  const applied = `*raw
:PREROUTING ACCEPT [0:0]
-A PREROUTING -j BN3F2A-PREROUTING
:BN3F2A-PREROUTING - [0:0]
COMMIT
*filter
:FORWARD ACCEPT [0:0]
:BN3F2A - [0:0]
:BN3F2A-USER - [0:0]
:BN3F2A-FORWARD - [0:0]
:BN3F2A-OLD - [0:0]
:OTHER - [0:0]
-A FORWARD -j BN3F2A-USER
-A FORWARD -j BN3F2A-FORWARD
-A FORWARD -j OTHER
-A OTHER -j BN3F2A-OLD
-A BN3F2A-USER -j BN3F2A-OLD
-A BN3F2A-FORWARD -j BN3F2A-OLD
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:BN3F2A - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j BN3F2A
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j BN3F2A
-A POSTROUTING -j BN3F2A-POSTROUTING
-A POSTROUTING -j BN3F2A-POSTROUTING
COMMIT
`;

  it('keeps good hooks, replaces changed or duplicated ones, and drops strays with every jump into them', () => {
    const plan = planReconcile(rs, parseSave(applied));
    expect(plan.createUser).toBe(false);
    expect(plan.drop).toEqual([{ table: 'filter', name: 'BN3F2A-OLD' }]);
    expect(plan.deletes).toEqual([
      { table: 'nat', chain: 'OUTPUT', rule: '! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j BN3F2A' },
      { table: 'nat', chain: 'POSTROUTING', rule: '-j BN3F2A-POSTROUTING' },
      { table: 'nat', chain: 'POSTROUTING', rule: '-j BN3F2A-POSTROUTING' },
      { table: 'filter', chain: 'OTHER', rule: '-j BN3F2A-OLD' },
      { table: 'filter', chain: 'BN3F2A-USER', rule: '-j BN3F2A-OLD' },
    ]);
    expect(plan.inserts.map((h) => `${h.table} ${h.chain} ${h.rule}`)).toEqual([
      'nat OUTPUT -m addrtype --dst-type LOCAL -j BN3F2A',
      'nat POSTROUTING -j BN3F2A-POSTROUTING',
    ]);
    const text = restoreText(rs, plan);
    expect(text).toContain(':BN3F2A-OLD - [0:0]\n-D OTHER -j BN3F2A-OLD\n-D BN3F2A-USER -j BN3F2A-OLD\n-X BN3F2A-OLD\n');
    expect(text).not.toContain(':BN3F2A-USER');
  });

  it('needs no hook change when the built-in chains hold exactly ours', () => {
    const full = restoreText(rs, fullPlan(rs)).replace(/-I (\S+) \d+ /g, '-A $1 ');
    expect(planHooks(rs, parseSave(full))).toEqual({ deletes: [], inserts: [] });
  });

  it('teardown removes every chain carrying the prefix and every jump into them, nothing else', () => {
    const plan = planTeardown(rs.names, parseSave(applied));
    expect(plan.drop.map((d) => `${d.table} ${d.name}`).sort()).toEqual(
      ['filter BN3F2A', 'filter BN3F2A-FORWARD', 'filter BN3F2A-OLD', 'filter BN3F2A-USER', 'nat BN3F2A', 'raw BN3F2A-PREROUTING'].sort(),
    );
    expect(plan.deletes.map((d) => `${d.chain} ${d.rule}`)).toEqual([
      'PREROUTING -j BN3F2A-PREROUTING',
      'FORWARD -j BN3F2A-USER',
      'FORWARD -j BN3F2A-FORWARD',
      'OTHER -j BN3F2A-OLD',
      'PREROUTING -m addrtype --dst-type LOCAL -j BN3F2A',
      'OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j BN3F2A',
      'POSTROUTING -j BN3F2A-POSTROUTING',
      'POSTROUTING -j BN3F2A-POSTROUTING',
    ]);
  });
});
