// `bpfnet monitor --flows`: with a listener, a masqueraded TCP connection shows up as a new
// flow with the exact translation the server saw, then ends with per-direction counts once its
// connection-table entries expire; filters select by sandbox, port and verdict; without a
// listener the datapath's flag is off and nothing is written.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { addUplink6, Lab, UPLINK, UPLINK6 } from '../../src/lab/lab.js';
import { LabDaemon } from '../../src/lab/daemon.js';
import { BpfMap } from '../../src/datapath/libbpf/bpf.js';
import { u32, u64n } from '../../src/datapath/libbpf/codec.js';
import { DP_F_FLOW_EVENTS, DatapathMaps, FlowMaps, ctKey4, dpConfig, flowCounts } from '../../src/datapath/abi.js';
import { cliPath } from '../../src/paths.js';
import { echoServer, peerIp, probe, sandboxIp, sandboxNs } from '../support/traffic.js';

const HOST6 = UPLINK6.host;
const EXT6 = UPLINK6.external;

describe('the flow log', () => {
  let lab: Lab;
  let d: LabDaemon;
  const monitors: ChildProcess[] = [];
  const pin = (name: string) => join('/sys/fs/bpf', d.instance, name);
  const flowFlag = () => {
    const cfg = BpfMap.openPinned(pin(DatapathMaps.config), u32, dpConfig);
    try {
      return (cfg.get(0)!.flags & DP_F_FLOW_EVENTS) !== 0;
    } finally {
      cfg.close();
    }
  };
  const statsCount = () => {
    const m = BpfMap.openPinned(pin(FlowMaps.stats), ctKey4, flowCounts);
    try {
      return m.dumpPacked().count;
    } finally {
      m.close();
    }
  };
  const waitFor = async (what: string, cond: () => boolean, ms = 15_000) => {
    for (const end = Date.now() + ms; Date.now() < end; ) {
      if (cond()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  const monitor = (...args: string[]) => {
    const child = spawn(process.execPath, [cliPath, '-H', `unix://${d.socket}`, 'monitor', '--flows', '--format', 'json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    monitors.push(child);
    let out = '';
    child.stdout!.on('data', (x: Buffer) => (out += x.toString()));
    return { child, records: () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
  };

  beforeAll(async () => {
    lab = await Lab.create();
    // IPv6 on the uplink before the daemon starts (NAT66's source): IPv6 flows are logged too.
    await addUplink6(lab);
    d = await LabDaemon.start(lab, { datapath: 'ebpf', extraArgs: ['--ebpf-timeouts', 'tcp-fin=1,tcp-closed=1,tcp-established=3', '--ebpf-gc-interval', '1'] });
    await d.bpfnet('network', 'create', '--subnet', '10.45.0.0/24', 'flownet');
    await d.bpfnet('network', 'create', '--subnet', '10.46.0.0/24', 'elsewhere');
    await d.bpfnet('run', '-d', '--name', 'fa', '--network', 'flownet');
    await d.bpfnet('run', '-d', '--name', 'fb', '--network', 'elsewhere');
    await d.bpfnet('network', 'create', '--ipv6', '--ipv4=false', '--subnet', 'fd45::/64', 'flownet6');
    await d.bpfnet('run', '-d', '--name', 'f6', '--network', 'flownet6');
  });

  afterAll(async () => {
    for (const m of monitors) if (m.exitCode === null && m.signalCode === null) m.kill('SIGKILL');
    await lab?.destroy();
  });

  it('writes nothing while nobody listens', async () => {
    const server = await echoServer(lab, lab.external, 'tcp', 7002);
    try {
      expect(await probe(lab, await sandboxNs(d, 'fa'), 'tcp', UPLINK.externalAddress, 7002)).toMatch(/^198\.18\.0\.1:\d+$/);
      expect(flowFlag()).toBe(false);
      expect(statsCount()).toBe(0);
    } finally {
      server.kill();
    }
  });

  it('reports a masqueraded flow with its translation, then its end with counts; filters by sandbox, port and verdict', async () => {
    const all = monitor('--sandbox', 'fa');
    const byPort = monitor('--port', '7003');
    const otherPort = monitor('--port', '9999');
    const drops = monitor('--verdict', 'dropped');
    await waitFor('the flow flag', flowFlag);
    await new Promise((r) => setTimeout(r, 300));
    const server = await echoServer(lab, lab.external, 'tcp', 7003);
    let answer: string | null;
    try {
      answer = await probe(lab, await sandboxNs(d, 'fa'), 'tcp', UPLINK.externalAddress, 7003);
    } finally {
      server.kill();
    }
    expect(answer).toMatch(/^198\.18\.0\.1:\d+$/);
    const faIp = await sandboxIp(d, 'fa', 'flownet');
    await waitFor('the new flow', () => all.records().some((r) => r.Event === 'new'));
    const created = all.records().find((r) => r.Event === 'new');
    expect(created).toMatchObject({
      Verdict: 'forwarded',
      Protocol: 'tcp',
      Kind: 'snat',
      Destination: `${UPLINK.externalAddress}:7003`,
      Translated: { Source: answer, Destination: `${UPLINK.externalAddress}:7003` },
      Sandbox: 'fa',
      Network: 'flownet',
    });
    expect(created.Source).toMatch(new RegExp(`^${faIp.replace(/\./g, '\\.')}:\\d+$`));
    // The entries expire one second after FIN; GC and the poll each run every second.
    await waitFor('the end of the flow', () => all.records().some((r) => r.Event === 'end'), 20_000);
    const ended = all.records().find((r) => r.Event === 'end');
    expect(ended).toMatchObject({ Source: created.Source, Translated: created.Translated });
    // SYN, ACK, FIN, ACK at least each way; the reply carried the echoed address.
    expect(ended.Packets.Original).toBeGreaterThanOrEqual(3);
    expect(ended.Packets.Reply).toBeGreaterThanOrEqual(3);
    expect(ended.Packets.Original).toBeLessThanOrEqual(12);
    expect(ended.Bytes.Reply).toBeGreaterThanOrEqual(ended.Packets.Reply * 54 + answer!.length);
    // Each monitor is its own stream: the port filter's copy of the end may trail the sandbox filter's.
    await waitFor('the end in the port filter', () => byPort.records().some((r) => r.Event === 'end'), 5_000);
    expect(byPort.records().map((r) => r.Event)).toEqual(['new', 'end']);
    expect(otherPort.records()).toEqual([]);
    // Only fa's unicast drops are this test's: the kernel's own multicast chatter (an IGMP report
    // from a sandbox with no IPv4 address, source 0.0.0.0) is dropped and reported too, at any time.
    const fasDrops = () => drops.records().filter((r) => (r.Source === faIp || r.Source?.startsWith(`${faIp}:`)) && !/^22[4-9]\.|^23\d\./.test(r.Destination));
    expect(fasDrops()).toEqual([]);
    // A drop: fa may not reach a sandbox of another network.
    await lab.execRaw(await sandboxNs(d, 'fa'), 'ping', ['-c', '2', '-i', '0.2', '-W', '1', await sandboxIp(d, 'fb', 'elsewhere')]);
    await waitFor('the drops', () => fasDrops().length >= 2);
    expect(fasDrops().slice(0, 2).map((r) => [r.Event, r.Verdict, r.Reason, r.Sandbox, r.Network])).toEqual([
      ['drop', 'dropped', 'isolation', 'fa', 'flownet'],
      ['drop', 'dropped', 'isolation', 'fa', 'flownet'],
    ]);
  });

  it('reports an IPv6 flow (NAT66) the same way, addresses bracketed', async () => {
    const mine = monitor('--sandbox', 'f6');
    await waitFor('the flow flag', flowFlag);
    await new Promise((r) => setTimeout(r, 300));
    const server = await echoServer(lab, lab.external, 'tcp', 7004, '::');
    let answer: string | null;
    try {
      answer = await probe(lab, await sandboxNs(d, 'f6'), 'tcp', EXT6, 7004);
    } finally {
      server.kill();
    }
    expect(answer).toMatch(new RegExp(`^${HOST6}:\\d+$`));
    const f6 = JSON.parse(await d.bpfnet('inspect', 'f6'))[0].NetworkSettings.Networks.flownet6.GlobalIPv6Address as string;
    await waitFor('the new flow', () => mine.records().some((r) => r.Event === 'new'));
    const created = mine.records().find((r) => r.Event === 'new');
    const translatedPort = answer!.slice(answer!.lastIndexOf(':') + 1);
    expect(created).toMatchObject({
      Verdict: 'forwarded',
      Protocol: 'tcp',
      Kind: 'snat',
      Destination: `[${EXT6}]:7004`,
      Translated: { Source: `[${HOST6}]:${translatedPort}`, Destination: `[${EXT6}]:7004` },
      Sandbox: 'f6',
      Network: 'flownet6',
    });
    expect(created.Source).toMatch(new RegExp(`^\\[${f6}\\]:\\d+$`));
    await waitFor('the end of the flow', () => mine.records().some((r) => r.Event === 'end'), 20_000);
    const ended = mine.records().find((r) => r.Event === 'end');
    expect(ended).toMatchObject({ Source: created.Source, Translated: created.Translated });
    expect(ended.Packets.Original).toBeGreaterThanOrEqual(3);
    expect(ended.Packets.Reply).toBeGreaterThanOrEqual(3);
    mine.child.kill('SIGINT');
  });

  it('turns itself off when the last listener leaves', async () => {
    for (const m of monitors) m.kill('SIGINT');
    await waitFor('the flag to clear', () => !flowFlag());
    const before = statsCount();
    const server = await echoServer(lab, lab.external, 'tcp', 7004);
    try {
      expect(await probe(lab, await sandboxNs(d, 'fa'), 'tcp', UPLINK.externalAddress, 7004)).not.toBeNull();
    } finally {
      server.kill();
    }
    expect(statsCount()).toBe(before);
  });

  it('tracks and reports a connection to a stateless published port made while it listens, its replies counted, after the GC found the port clean', async () => {
    expect(flowFlag()).toBe(false);
    await d.bpfnet('run', '-d', '--name', 'fp', '--network', 'flownet', '-p', '8095:7010');
    const server = await echoServer(lab, await sandboxNs(d, 'fp'), 'tcp', 7010);
    const clean = BpfMap.openPinned(pin(DatapathMaps.conntrackPortClean), u32, u64n);
    const tracked = BpfMap.openPinned(pin(DatapathMaps.conntrackPortTracked), u32, u64n);
    // What the programs test: a clean time later than the last tracked flow's mark.
    const untracked = () => (clean.get(7010) ?? 0n) > (tracked.get(7010) ?? 0n);
    try {
      // No listener: 8095 is stateless, the connection takes no entry, and a GC round (every
      // second here) finds no tracked flow from 7010, so its replies skip the connection table.
      expect(peerIp(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8095))).toBe(UPLINK.externalAddress);
      await waitFor('7010 clean', untracked);
      // While one listens, a new connection is tracked: its replies must find their entries first.
      const mine = monitor('--sandbox', 'fp');
      await waitFor('the flow flag', flowFlag);
      await new Promise((r) => setTimeout(r, 300));
      expect(peerIp(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8095))).toBe(UPLINK.externalAddress);
      expect(untracked()).toBe(false);
      await waitFor('the end of the flow', () => mine.records().some((r) => r.Event === 'end'), 20_000);
      const ended = mine.records().find((r) => r.Event === 'end');
      expect(ended.Destination).toBe(`${UPLINK.hostAddress}:8095`);
      expect(ended.Packets.Original).toBeGreaterThanOrEqual(3);
      expect(ended.Packets.Reply).toBeGreaterThanOrEqual(3);
      // Its mark took the port out of the short way at once; once the flow is gone, a later round finds it clean again.
      await waitFor('7010 clean again', untracked);
      mine.child.kill('SIGINT');
    } finally {
      clean.close();
      tracked.close();
      server.kill();
    }
  });

  it('refuses bad filters and filters without --flows', async () => {
    const r = await d.cli(['monitor', '--flows', '--verdict', 'maybe']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('invalid verdict filter "maybe"');
    const u = await d.cli(['monitor', '--port', '80']);
    expect(u.code).toBe(125);
    expect(u.stderr).toContain('add --flows');
  });
});
