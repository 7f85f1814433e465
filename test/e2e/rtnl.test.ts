// The addon's rtnetlink path (src/system/rtnl.ts) against iproute2 itself: the same commands
// run once through it and once through `ip -batch` in two namespaces, and what the kernel then
// holds (links, addresses, routes) must read the same; errors read as ip's; a batch stops at
// its first failure; named namespaces and /proc/sys writes without a process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { Lab } from '../../src/lab/lab.js';
import { run } from '../../src/system/exec.js';
import { createNetns, ipJson, removeNetns, type Netns } from '../../src/system/ip.js';
import { dumpAddresses, rtnlBatch } from '../../src/system/rtnl.js';
import { readSysctl, writeSysctls } from '../../src/system/sysctl.js';

let lab: Lab;
let viaRtnl: Netns;
let viaIp: Netns;
let peerOfRtnl: Netns;
let peerOfIp: Netns;

beforeAll(async () => {
  lab = await Lab.create({ uplink: false });
  [viaRtnl, viaIp, peerOfRtnl, peerOfIp] = await Promise.all(['rt', 'ip', 'rtpeer', 'ippeer'].map((n) => lab.addNamespace(n)));
}, 60_000);

afterAll(async () => {
  await lab?.destroy();
});

/** What `ip -batch` would do, by the process, in ns. */
function ipBatchProcess(ns: Netns, commands: string[][]): Promise<string> {
  return run('ip', ['-n', ns.name, '-batch', '-'], { input: commands.map((c) => c.join(' ')).join('\n') + '\n' });
}

/** ip -j output with what differs between two namespaces by nature (indexes, counters, timers, DAD in progress, a veth's random MAC) left out. */
async function state(ns: Netns, dev: string): Promise<unknown> {
  const strip = (o: unknown): unknown => {
    if (Array.isArray(o)) return o.map(strip);
    if (o && typeof o === 'object')
      return Object.fromEntries(
        Object.entries(o)
          .filter(([k]) => !['address', 'ifindex', 'link_index', 'link_netnsid', 'valid_life_time', 'preferred_life_time', 'stats64', 'link', 'operstate', 'tentative'].includes(k))
          .map(([k, v]) => [k, strip(v)]),
      );
    return o;
  };
  return strip({
    link: await ipJson(ns, ['-d', 'link', 'show', 'dev', dev]),
    addr: await ipJson(ns, ['addr', 'show', 'dev', dev]),
    routes4: await ipJson(ns, ['-4', 'route', 'show']),
    routes6: await ipJson(ns, ['-6', 'route', 'show']),
  });
}

describe('rtnetlink from the addon, compared with iproute2', () => {
  it('builds a veth, moves and renames its peer, addresses and routes it exactly as ip does', async () => {
    // The bridge itself goes through ip in both (a type rtnl.ts does not build).
    for (const ns of [viaRtnl, viaIp]) await ipBatchProcess(ns, [['link', 'add', 'name', 'brx', 'type', 'bridge']]);
    const build = (peerNs: Netns) => [
      ['link', 'add', 'name', 'vh', 'type', 'veth', 'peer', 'name', 'vp'],
      ['link', 'set', 'dev', 'vh', 'addrgenmode', 'none', 'mtu', '1400'],
      ['link', 'set', 'dev', 'vh', 'master', 'brx', 'up'],
      ['link', 'set', 'dev', 'vp', 'netns', peerNs.path, 'name', 'eth0'],
    ];
    const inside = [
      ['link', 'set', 'dev', 'lo', 'up'],
      ['link', 'set', 'dev', 'eth0', 'addrgenmode', 'eui64', 'mtu', '1400', 'address', '02:42:0a:09:00:02'],
      ['addr', 'replace', '10.9.0.2/24', 'dev', 'eth0'],
      ['addr', 'replace', 'fd00:9::2/64', 'dev', 'eth0', 'nodad'],
      ['link', 'set', 'dev', 'eth0', 'up'],
      ['route', 'replace', 'default', 'via', '10.9.0.1', 'dev', 'eth0'],
      ['route', 'replace', '10.10.0.0/16', 'dev', 'eth0'],
      ['route', 'replace', 'default', 'via', 'fd00:9::1', 'dev', 'eth0'],
    ];
    expect(rtnlBatch(viaRtnl.path, build(peerOfRtnl), 'build')).toBe(true);
    await ipBatchProcess(viaIp, build(peerOfIp));
    expect(rtnlBatch(peerOfRtnl.path, inside, 'inside')).toBe(true);
    await ipBatchProcess(peerOfIp, inside);
    expect(await state(viaRtnl, 'vh')).toEqual(await state(viaIp, 'vh'));
    expect(await state(peerOfRtnl, 'eth0')).toEqual(await state(peerOfIp, 'eth0'));
    // What the comparison leaves out, checked directly: the master, and the address flags.
    const [vh] = await ipJson<Array<{ master?: string; mtu: number }>>(viaRtnl, ['link', 'show', 'dev', 'vh']);
    expect(vh).toMatchObject({ master: 'brx', mtu: 1400 });
    const [eth0] = await ipJson<Array<{ addr_info: Array<{ local: string; nodad?: boolean }> }>>(peerOfRtnl, ['addr', 'show', 'dev', 'eth0']);
    expect(eth0.addr_info.find((a) => a.local === 'fd00:9::2')).toMatchObject({ nodad: true });
    expect((await ipJson<Array<{ address: string }>>(peerOfRtnl, ['link', 'show', 'dev', 'eth0']))[0].address).toBe('02:42:0a:09:00:02');

    // Flushing, and moving back out under another name, as a driver's leave does.
    expect(rtnlBatch(peerOfRtnl.path, [['link', 'set', 'dev', 'eth0', 'down'], ['addr', 'flush', 'dev', 'eth0']], 'leave')).toBe(true);
    const [flushed] = await ipJson<Array<{ addr_info: Array<{ local: string; scope: string }> }>>(peerOfRtnl, ['addr', 'show', 'dev', 'eth0']);
    expect(flushed.addr_info.filter((a) => a.scope === 'global')).toEqual([]);
    expect(rtnlBatch(peerOfRtnl.path, [['link', 'set', 'dev', 'eth0', 'netns', viaRtnl.path, 'name', 'vp']], 'out')).toBe(true);
    expect(await ipJson(viaRtnl, ['link', 'show', 'dev', 'vp'])).toHaveLength(1);
    expect(rtnlBatch(viaRtnl.path, [['link', 'delete', 'vp']], 'delete')).toBe(true);
    expect(await ipJson(viaRtnl, ['link', 'show', 'type', 'veth'])).toEqual([]);
  });

  it("fails as ip does, naming the cause, and stops a batch at its first failure", () => {
    expect(() => rtnlBatch(viaRtnl.path, [['link', 'set', 'dev', 'nope0', 'up']], 'ip link set dev nope0 up')).toThrow(/Cannot find device "nope0"/);
    expect(rtnlBatch(viaRtnl.path, [['link', 'add', 'name', 'dup0', 'type', 'veth', 'peer', 'name', 'dup1']], 'first')).toBe(true);
    expect(() => rtnlBatch(viaRtnl.path, [['link', 'add', 'name', 'dup0', 'type', 'veth', 'peer', 'name', 'dup2'], ['link', 'set', 'dev', 'dup1', 'mtu', '1300']], 'again')).toThrow(
      /RTNETLINK answers: File exists/,
    );
    // The second command never ran.
    expect(() => rtnlBatch(viaRtnl.path, [['addr', 'add', '10.8.0.1/24', 'dev', 'dup1'], ['addr', 'add', '10.8.0.1/24', 'dev', 'dup1']], 'twice')).toThrow(/File exists/);
    return ipJson<Array<{ mtu: number }>>(viaRtnl, ['link', 'show', 'dev', 'dup1']).then(([dup1]) => expect(dup1.mtu).toBe(1500));
  });

  it('leaves what it does not translate to ip, having done nothing', () => {
    expect(rtnlBatch(viaRtnl.path, [['link', 'set', 'dev', 'dup0', 'up'], ['link', 'add', 'name', 'b2', 'type', 'bridge']], 'mixed')).toBe(false);
    return ipJson<Array<{ flags: string[] }>>(viaRtnl, ['link', 'show', 'dev', 'dup0']).then(([dup0]) => expect(dup0.flags).not.toContain('UP'));
  });

  it("dumps a namespace's addresses as `ip -j addr show` lists them, without a process", async () => {
    // By now viaRtnl holds IPv4 and global IPv6 addresses on several devices; a link-local one too.
    await run('ip', ['-n', viaRtnl.name, 'addr', 'add', 'fe80::beef/64', 'dev', 'dup0', 'nodad']);
    const fromIp = (await ipJson<Array<{ ifindex: number; addr_info?: Array<{ family: string; local: string; scope: string; label?: string }> }>>(viaRtnl, ['addr', 'show'])).flatMap((l) =>
      (l.addr_info ?? []).map((a) => ({ ifindex: l.ifindex, family: a.family === 'inet' ? 4 : 6, scope: a.scope, local: a.local, ...(a.label ? { label: a.label } : {}) })),
    );
    const scopes: Record<number, string> = { 0: 'global', 253: 'link', 254: 'host' };
    const fromDump = dumpAddresses(viaRtnl.path).map((a) => ({ ...a, scope: scopes[a.scope] ?? String(a.scope) }));
    const key = (a: { ifindex: number; local: string }) => `${a.ifindex} ${a.local}`;
    expect(fromDump.map(key).sort()).toEqual(fromIp.map(key).sort());
    expect(new Set(fromDump.map((a) => a.scope))).toEqual(new Set(['global', 'link', 'host']));
    for (const a of fromIp) expect(fromDump.find((d) => key(d) === key(a))).toEqual(a);
  });

  it('makes and removes named namespaces, and writes sysctls inside one, without a process', async () => {
    const name = `${lab.prefix}-native`;
    try {
      await createNetns(name);
      expect(existsSync(`/run/netns/${name}`)).toBe(true);
      // A namespace of its own: only a loopback, down.
      expect((await ipJson<Array<{ ifname: string }>>({ name, path: `/run/netns/${name}` }, ['link', 'show'])).map((l) => l.ifname)).toEqual(['lo']);
      await writeSysctls({ netnsPath: `/run/netns/${name}` }, { 'net.ipv6.conf.all.disable_ipv6': '1', 'net/ipv4/ip_forward': '1' });
      expect(await readSysctl({ netnsPath: `/run/netns/${name}` }, 'net.ipv6.conf.all.disable_ipv6')).toBe('1');
      expect(await readSysctl({ netnsPath: `/run/netns/${name}` }, 'net.ipv4.ip_forward')).toBe('1');
      // Written there only: the lab's other namespace keeps its own.
      expect(await readSysctl({ netnsPath: viaIp.path }, 'net.ipv4.ip_forward')).toBe('0');
    } finally {
      await removeNetns(name);
    }
    expect(existsSync(`/run/netns/${name}`)).toBe(false);
  });
});
