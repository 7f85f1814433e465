// The lab: namespaces under a unique prefix, an uplink that carries traffic, and a
// teardown that removes everything, also for a lab whose owner was killed.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { Lab, UPLINK, sweepStaleLabs } from '../../src/lab/lab.js';
import { links, listNetns } from '../../src/system/ip.js';
import { projectRoot } from '../../src/paths.js';

const rootLinks = async () => (await links(null)).map((l) => `${l.ifindex}:${l.ifname}`).sort();

describe('lab', () => {
  it('builds host and external namespaces joined by a working uplink, and removes them', async () => {
    const before = await rootLinks();
    const lab = await Lab.create();
    try {
      expect(lab.prefix).toMatch(/^bnl[0-9a-f]{6}$/);
      expect(await listNetns()).toEqual(expect.arrayContaining([`${lab.prefix}-host`, `${lab.prefix}-ext`]));
      await lab.exec(lab.external, 'ping', ['-c', '1', '-W', '2', UPLINK.hostAddress]);
      const sb = await lab.addNamespace('sb1');
      expect(sb.name).toBe(`${lab.prefix}-sb1`);
      const sleeper = lab.spawn(sb, 'sleep', ['600']);
      expect(sleeper.pid).toBeGreaterThan(0);
      lab.pinDir();
      lab.tmpDir();
      expect(await rootLinks()).toEqual(before);
      await lab.destroy();
      expect(sleeper.exitCode !== null || sleeper.signalCode !== null).toBe(true);
      expect((await listNetns()).filter((n) => n.startsWith(lab.prefix))).toEqual([]);
      expect(existsSync(`/sys/fs/bpf/${lab.prefix}`)).toBe(false);
      expect(existsSync(`/tmp/${lab.prefix}`)).toBe(false);
    } finally {
      await lab.destroy();
    }
  });

  it('sweeps the lab of a process that was killed, with the processes it started', async () => {
    const script = `
      import { Lab } from './src/lab/lab.ts';
      const lab = await Lab.create();
      lab.pinDir();
      const s = lab.spawn(lab.host, 'sleep', ['600']);
      console.log(JSON.stringify({ prefix: lab.prefix, sleeper: s.pid }));`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString())));
    const { prefix, sleeper } = JSON.parse(line) as { prefix: string; sleeper: number };
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect((await listNetns()).filter((n) => n.startsWith(prefix))).toHaveLength(2);
    expect(await sweepStaleLabs()).toContain(prefix);
    expect((await listNetns()).filter((n) => n.startsWith(prefix))).toEqual([]);
    expect(existsSync(`/sys/fs/bpf/${prefix}`)).toBe(false);
    // Gone, or a zombie waiting for its new parent to reap it: either way no longer running.
    const state = () => (existsSync(`/proc/${sleeper}/stat`) ? readFileSync(`/proc/${sleeper}/stat`, 'utf8').split(') ')[1]?.[0] : 'gone');
    for (let i = 0; i < 40 && !['gone', 'Z', 'X'].includes(state() ?? 'gone'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(['gone', 'Z', 'X']).toContain(state());
  });
});

describe('lab teardown and processes', () => {
  it('ends processes left running inside its namespaces (a daemon sandbox server outlives the daemon)', async () => {
    const lab = await Lab.create();
    const ns = await lab.addNamespace('sb');
    // Started outside the lab's own tracking, as a daemon's sandbox process would be.
    const { spawn } = await import('node:child_process');
    const orphan = spawn('nsenter', [`--net=${ns.path}`, '--', 'sleep', '600'], { detached: true, stdio: 'ignore' });
    orphan.unref();
    await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(`/proc/${orphan.pid}`)).toBe(true);
    await lab.destroy();
    for (let i = 0; i < 40 && existsSync(`/proc/${orphan.pid}/stat`) && !/\) [ZX] /.test(readFileSync(`/proc/${orphan.pid}/stat`, 'utf8')); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const state = existsSync(`/proc/${orphan.pid}/stat`) ? readFileSync(`/proc/${orphan.pid}/stat`, 'utf8').split(') ')[1]?.[0] : 'gone';
    expect(['gone', 'Z', 'X']).toContain(state);
  });
});
