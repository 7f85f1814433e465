// GET /metrics against real traffic: the datapath counters a scrape reports move by exactly
// what the test sent (pings between two sandboxes, pings refused by isolation), the tables
// report their use, API requests are counted by route, and the optional TCP listener serves
// the same text.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { projectRoot } from '../../src/paths.js';
import { LabDaemon } from '../../src/lab/daemon.js';
import { link } from '../../src/system/ip.js';
import { api } from '../support/api.js';
import { holdFlows, holdServer, sandboxIp, sandboxNs } from '../support/traffic.js';

/** Prometheus text -> "name{labels}" -> value (labels as printed, in prom-client's order). */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

describe('GET /metrics', () => {
  let lab: Lab;
  let d: LabDaemon;
  const scrape = async () => {
    const r = await api(d.socket, 'GET', '/metrics');
    expect(r.status).toBe(200);
    expect(String(r.headers['content-type'])).toMatch(/^text\/plain; version=0\.0\.4/);
    return parse(r.text);
  };

  beforeAll(async () => {
    lab = await Lab.create();
    d = await LabDaemon.start(lab, { datapath: 'ebpf', extraArgs: ['--metrics-addr', '127.0.0.1:9490', '--metrics-per-endpoint'] });
    await d.bpfnet('network', 'create', '--subnet', '10.41.0.0/24', 'metered');
    await d.bpfnet('network', 'create', '--subnet', '10.42.0.0/24', 'other');
    await d.bpfnet('run', '-d', '--name', 'ma', '--network', 'metered');
    await d.bpfnet('run', '-d', '--name', 'mb', '--network', 'metered', '-p', '8080:80');
    await d.bpfnet('run', '-d', '--name', 'oc', '--network', 'other');
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('counts the packets and bytes of pings between two sandboxes exactly, by network and direction', async () => {
    const a = await sandboxNs(d, 'ma');
    const b = await sandboxNs(d, 'mb');
    const aip = await sandboxIp(d, 'ma', 'metered');
    const bip = await sandboxIp(d, 'mb', 'metered');
    // Permanent neighbours: no ARP in the middle of the count.
    await lab.exec(a, 'ip', ['neigh', 'replace', bip, 'lladdr', (await link(b, 'eth0'))!.address!, 'nud', 'permanent', 'dev', 'eth0']);
    await lab.exec(b, 'ip', ['neigh', 'replace', aip, 'lladdr', (await link(a, 'eth0'))!.address!, 'nud', 'permanent', 'dev', 'eth0']);
    const key = (name: string, dir: string) => `bpfnet_datapath_${name}_total{network="metered",direction="${dir}"}`;
    const before = await scrape();
    // 7 echo requests of 100 bytes of data: 7 requests + 7 replies, each 14 + 20 + 8 + 100 = 142 bytes on the wire.
    await lab.exec(a, 'ping', ['-c', '7', '-i', '0.05', '-s', '100', '-W', '1', bip]);
    const after = await scrape();
    const delta = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
    expect({
      fromPackets: delta(key('packets', 'from_sandbox')),
      toPackets: delta(key('packets', 'to_sandbox')),
      fromBytes: delta(key('bytes', 'from_sandbox')),
      toBytes: delta(key('bytes', 'to_sandbox')),
    }).toEqual({ fromPackets: 14, toPackets: 14, fromBytes: 14 * 142, toBytes: 14 * 142 });
    // --metrics-per-endpoint: the sender's 7 requests and the 7 replies it got.
    const ep = (dir: string) => `bpfnet_endpoint_packets_total{endpoint="ma/eth0",direction="${dir}"}`;
    expect([delta(ep('from_sandbox')), delta(ep('to_sandbox'))]).toEqual([7, 7]);
  });

  it('counts embedded DNS answers by type', async () => {
    const a = await sandboxNs(d, 'ma');
    const query = join(projectRoot, 'test', 'support', 'dns-query.mjs');
    const before = await scrape();
    for (const name of ['mb', 'mb', 'no-such-sandbox.invalid']) await lab.exec(a, process.execPath, [query, '10.41.0.1', name]);
    const after = await scrape();
    const delta = (answer: string) => (after.get(`bpfnet_dns_queries_total{answer="${answer}"}`) ?? 0) - (before.get(`bpfnet_dns_queries_total{answer="${answer}"}`) ?? 0);
    // Known names: answered in the kernel (bpf/dns.bpf.c) where it is loaded, else by the daemon.
    expect(delta('local') + delta('kernel')).toBe(2);
    // A name it does not know goes upstream; whatever the upstream did, it was counted once.
    expect(['forwarded', 'nxdomain', 'servfail', 'refused', 'other'].map(delta).reduce((x, y) => x + y)).toBe(1);
    const upstream = (m: Map<string, number>) =>
      (m.get('bpfnet_dns_upstream_duration_seconds_count{outcome="answered"}') ?? 0) + (m.get('bpfnet_dns_upstream_duration_seconds_count{outcome="failed"}') ?? 0);
    expect(upstream(after) - upstream(before)).toBe(1);
  });

  it('counts isolation drops on the sending network by reason, exactly as many as were sent', async () => {
    const c = await sandboxNs(d, 'oc');
    const bip = await sandboxIp(d, 'mb', 'metered');
    const key = 'bpfnet_datapath_drops_total{network="other",reason="isolation"}';
    const before = (await scrape()).get(key) ?? 0;
    await lab.execRaw(c, 'ping', ['-c', '4', '-i', '0.05', '-W', '1', bip]);
    const after = (await scrape()).get(key) ?? 0;
    expect(after - before).toBe(4);
  });

  it('reports table use: published ports, connection-table entries of a masqueraded flow, NAT ports', async () => {
    const m = await scrape();
    expect(m.get('bpfnet_datapath_published_ports{protocol="tcp"}')).toBe(1);
    expect(m.get('bpfnet_published_ports')).toBe(1);
    expect(m.get('bpfnet_datapath_endpoints')).toBe(3);
    expect(m.get('bpfnet_endpoints')).toBe(3);
    expect(m.get('bpfnet_conntrack_capacity')).toBeGreaterThan(0);
    // A server that keeps the connection open, and a client that holds it: a closed flow leaves
    // the assured table (for the evictable one), so the figures are read while it lives.
    const server = await holdServer(lab, lab.external, 7001);
    const held = await holdFlows(lab, await sandboxNs(d, 'ma'), UPLINK.externalAddress, 7001, 1);
    try {
      expect(held.flows).toEqual(['ok']);
      const after = await scrape();
      // One masqueraded flow: an entry per direction, one NAT port.
      expect(after.get('bpfnet_conntrack_entries{kind="snat"}')).toBeGreaterThanOrEqual(2);
      expect(after.get('bpfnet_nat_ports_in_use')).toBeGreaterThanOrEqual(1);
      expect(after.get('bpfnet_nat_ports_in_use')).toBeLessThanOrEqual((after.get('bpfnet_conntrack_entries{kind="snat"}') ?? 0) / 2);
    } finally {
      await held.close();
      server.kill('SIGKILL');
    }
  });

  it('counts API requests by route pattern, never by raw path', async () => {
    const before = await scrape();
    for (let i = 0; i < 3; i++) expect((await api(d.socket, 'GET', `/v1.45/networks/no-such-${i}`)).status).toBe(404);
    const after = await scrape();
    const k = 'bpfnet_api_requests_total{route="/networks/{id}",method="GET",status="404"}';
    expect((after.get(k) ?? 0) - (before.get(k) ?? 0)).toBe(3);
    expect([...after.keys()].some((name) => name.includes('no-such'))).toBe(false);
    expect(after.get('bpfnet_reconcile_runs_total')).toBe(1);
  });

  it('serves the same metrics on --metrics-addr, and only metrics there', async () => {
    const text = await lab.exec(lab.host, 'curl', ['-sf', 'http://127.0.0.1:9490/metrics']);
    expect(text).toMatch(/^bpfnet_datapath_packets_total\{network="metered",direction="from_sandbox"\} \d+$/m);
    const other = await lab.execRaw(lab.host, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:9490/networks']);
    expect(other.stdout).toBe('404');
  });
});
