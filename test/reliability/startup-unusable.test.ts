/**
 * Start-up that no stored sandbox can stop (issue 10 item 3): while the daemon is down, one
 * sandbox's host veth name is taken by a device that is not ours (a veth pair of someone else,
 * its peer in another namespace, as another tool might make). On restart the daemon must start, leave that device alone, mark the sandbox
 * unusable (log, `ps`, inspect's State.Error), keep it out of the datapath, and serve the
 * others with real packets; once the device is gone, the next start rebuilds the sandbox.
 *
 * And a namespace name that outlived its namespace: a daemon killed between unmounting a
 * sandbox's /run/netns file and unlinking it (or between creating and mounting it) leaves a
 * plain file. Restarting must neither take it for a namespace nor give up on the sandbox.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabDaemon } from '../../src/lab/daemon.js';
import { Lab } from '../../src/lab/lab.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { run } from '../../src/system/exec.js';
import { link } from '../../src/system/ip.js';
import { leakReport } from '../support/leak-check.js';
import { ping, sandboxIp, sandboxNs } from '../support/traffic.js';

for (const datapath of ['ebpf', 'iptables'] as const) {
  describe(`start-up with one sandbox that cannot be rebuilt (${datapath})`, () => {
    let lab: Lab;
    let d: LabDaemon;
    const cli = (...args: string[]) => d.bpfnet(...args);
    /** `bpfnet ps -a` as name -> STATUS. */
    const status = async () => new Map((await cli('ps', '-a', '--format', '{{.Name}}\t{{.Status}}')).trim().split('\n').map((l) => l.split('\t') as [string, string]));

    beforeAll(async () => {
      lab = await Lab.create();
      d = await LabDaemon.start(lab, { datapath });
    });

    afterAll(async () => {
      await d?.stop().catch(() => undefined);
      await lab?.destroy();
    });

    it('starts, serves the others, reports the broken one, and rebuilds it once its device name is free', async () => {
      await cli('network', 'create', '--subnet', '10.77.0.0/24', 'app');
      for (const name of ['good', 'bad']) await cli('run', '-d', '--name', name, '--network', 'app');
      const goodIp = await sandboxIp(d, 'good', 'app');
      const badIp = await sandboxIp(d, 'bad', 'app');
      expect(await ping(lab, await sandboxNs(d, 'bad'), goodIp)).toBe(true);
      const badId: string = JSON.parse(await cli('inspect', 'bad'))[0].Id;

      await d.stop();
      const store = new SqliteStore(d.root);
      const hostIf = store.endpoints.forSandbox(badId)[0]?.hostIfname;
      const goodIf = store.endpoints.all().find((e) => e.sandboxId !== badId)?.hostIfname;
      store.close();
      // The eBPF datapath is portless: its host veths are no bridge ports.
      const bridge = (await link(lab.host, goodIf!))?.master;
      if (datapath === 'ebpf') expect(bridge, 'the good sandbox is no bridge port').toBeUndefined();
      else expect(bridge, 'the good sandbox is on a bridge').toMatch(/\S/);
      expect(hostIf, 'the bad sandbox has a host-side device').toMatch(/\S/);
      // While the daemon is down, something else takes the veth's name.
      await lab.exec(lab.host, 'ip', ['link', 'delete', hostIf!]);
      const other = await lab.addNamespace('other');
      await lab.exec(lab.host, 'ip', ['link', 'add', hostIf!, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', other.name]);

      await d.start();
      expect(d.log).toMatch(new RegExp(`sandbox bad is unusable, serving the others: host device ${hostIf} is a veth whose peer is not eth0 in `));
      // The foreign device is left as it was (neither rebuilt over nor removed as a stray).
      const taken = await lab.exec(lab.host, 'ip', ['-d', '-j', 'link', 'show', 'dev', hostIf!]);
      expect(JSON.parse(taken)[0].linkinfo.info_kind).toBe('veth');
      expect(await link(other, 'eth0')).toBeDefined();
      expect((await link(lab.host, hostIf!))?.master).toBeUndefined();

      const ps = await status();
      // Sandboxes without a command stay "Created" (they hold their namespace only).
      expect(ps.get('bad')).toBe('Created (unusable)');
      expect(ps.get('good')).toBe('Created');
      const state = JSON.parse(await cli('inspect', 'bad'))[0].State;
      expect(state.Error).toBe(`host device ${hostIf} is a veth whose peer is not eth0 in ${(await sandboxNs(d, 'bad')).name}: left alone`);
      expect(JSON.parse(await cli('inspect', 'good'))[0].State.Error).toBeUndefined();

      // The rest is served: a new sandbox gets an address that is not the broken one's, and packets flow.
      await cli('run', '-d', '--name', 'late', '--network', 'app');
      const lateIp = await sandboxIp(d, 'late', 'app');
      expect([goodIp, badIp]).not.toContain(lateIp);
      expect(await ping(lab, await sandboxNs(d, 'late'), goodIp)).toBe(true);
      expect(await ping(lab, await sandboxNs(d, 'good'), lateIp)).toBe(true);

      // The name is freed by whoever took it: the next start rebuilds the sandbox and clears the mark.
      await d.stop();
      await lab.exec(lab.host, 'ip', ['link', 'delete', hostIf!]);
      await d.start();
      expect(d.log).toMatch(/sandbox bad is usable again/);
      expect((await link(lab.host, hostIf!))?.master).toBe(bridge);
      expect(JSON.parse(await cli('inspect', 'bad'))[0].State.Error).toBeUndefined();
      expect((await status()).get('bad')).toBe('Created');
      expect(await ping(lab, await sandboxNs(d, 'bad'), goodIp)).toBe(true);
      expect(await ping(lab, await sandboxNs(d, 'late'), badIp)).toBe(true);
    }, 180_000);

    it('finishes a removal whose namespace file was unmounted but not unlinked, and rebuilds a sandbox whose file lost its mount', async () => {
      await cli('network', 'create', '--subnet', '10.78.0.0/24', 'half');
      for (const name of ['leaving', 'staying', 'peer']) await cli('run', '-d', '--name', name, '--network', 'half');
      const leavingId: string = JSON.parse(await cli('inspect', 'leaving'))[0].Id;
      const leavingNs = await sandboxNs(d, 'leaving');
      const stayingNs = await sandboxNs(d, 'staying');
      const peerIp = await sandboxIp(d, 'peer', 'half');

      // Killed mid-rm: the store says removing, the namespace is unmounted (gone with its veth), its name is left.
      await d.stop();
      const store = new SqliteStore(d.root);
      store.sandboxes.update({ ...store.sandboxes.get(leavingId)!, state: 'removing' });
      store.close();
      for (const ns of [leavingNs, stayingNs]) await run('umount', [ns.path]);

      const before = d.log.length;
      await d.start();
      expect(d.log.slice(before)).not.toMatch(/is unusable/);
      expect((await cli('ps', '-a', '--format', '{{.Name}}')).split('\n')).not.toContain('leaving');
      expect(JSON.parse(await cli('inspect', 'staying'))[0].State.Error).toBeUndefined();
      expect(await ping(lab, await sandboxNs(d, 'staying'), peerIp)).toBe(true);
      expect(await leakReport(lab, d)).toEqual([]);
      for (const name of ['staying', 'peer']) await cli('rm', '-f', name);
      await cli('network', 'rm', 'half');
      expect(await leakReport(lab, d)).toEqual([]);
    }, 180_000);
  });
}
