// The docker28 setup's rule set: Docker 28's layout for userland-proxy=false, checked rule by rule
// where it differs from bpfnet's own rendering, and complete (every jump has its chain).
import { describe, expect, it } from 'vitest';
import { dockerRules } from '../../bench/setups/docker-rules.js';
import { parseSave, targetOf } from '../../src/datapath/iptables/rules.js';

describe('Docker 28 rules for the docker28 setup', () => {
  const tables = parseSave(dockerRules());

  it('has raw, filter and nat, every jump into a declared or built-in chain', () => {
    expect([...tables.keys()]).toEqual(['raw', 'filter', 'nat']);
    const builtIn = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING', 'ACCEPT', 'DROP', 'RETURN', 'DNAT', 'MASQUERADE']);
    for (const t of tables.values())
      for (const r of t.rules) {
        const target = targetOf(r.rule)!;
        expect(builtIn.has(target) || t.chains.has(target), `${r.chain}: ${r.rule}`).toBe(true);
      }
  });

  it('is what dockerd writes with userland-proxy=false: no "! -i bridge" on the DNAT, no loopback exclusion on OUTPUT, hairpin MASQUERADE', () => {
    const nat = tables.get('nat')!.rules.map((r) => `-A ${r.chain} ${r.rule}`);
    expect(nat).toContain('-A DOCKER -p tcp -m tcp --dport 8080 -j DNAT --to-destination 192.0.2.2:80');
    expect(nat).toContain('-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER');
    expect(nat).toContain('-A POSTROUTING -s 192.0.2.2/32 -d 192.0.2.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE');
    expect(nat).toContain('-A POSTROUTING -o bridge1 -m addrtype --src-type LOCAL -j MASQUERADE');
  });

  it('differs from bpfnet’s rendering where Docker 28 does: rules in the built-in chains, DOCKER-INTERNAL instead of isolation stages, FORWARD policy DROP', () => {
    const text = dockerRules();
    expect(text).toContain(':FORWARD DROP');
    expect(tables.get('raw')!.rules).toEqual([{ chain: 'PREROUTING', rule: '-d 192.0.2.2/32 ! -i bridge1 -j DROP' }]);
    expect(tables.get('filter')!.chains.has('DOCKER-INTERNAL')).toBe(true);
    expect(text).not.toContain('ISOLATION');
    const forward = tables.get('filter')!.rules.filter((r) => r.chain === 'DOCKER-FORWARD').map((r) => r.rule);
    expect(forward).toEqual(['-j DOCKER-CT', '-j DOCKER-INTERNAL', '-j DOCKER-BRIDGE', '-i docker0 -j ACCEPT', '-i bridge1 -j ACCEPT']);
  });
});
