// scripts/install.sh into a temporary prefix and sysconfdir (never /usr/local or /etc): the
// installed daemon runs from the installed tree in a lab, its unit passes `systemd-analyze
// verify` (PID 1 here is not systemd, so the unit itself cannot be started here), an admin's
// existing daemon.json is kept, and --uninstall removes exactly what was installed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { projectRoot } from '../../src/paths.js';
import { run, runRaw } from '../../src/system/exec.js';

const INSTALL = join(projectRoot, 'scripts', 'install.sh');

function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      out.push(p.slice(root.length));
      if (statSync(p, { throwIfNoEntry: false })?.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out.sort();
}

async function listening(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(socket);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

describe('install.sh', () => {
  let root: string;
  let prefix: string;
  let etc: string;
  let lab: Lab | undefined;
  let before: string[];

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'bpfnet-install-'));
    prefix = join(root, 'usr', 'local');
    etc = join(root, 'etc');
    // Something of the admin's already there: it must survive install and uninstall.
    mkdirSync(join(prefix, 'bin'), { recursive: true });
    writeFileSync(join(prefix, 'bin', 'other-tool'), '#!/bin/sh\n');
    mkdirSync(join(etc, 'bpfnet'), { recursive: true });
    writeFileSync(join(etc, 'bpfnet', 'daemon.json'), JSON.stringify({ 'log-format': 'json' }));
    before = tree(root);
    const r = await runRaw(INSTALL, ['--prefix', prefix, '--sysconfdir', etc], { timeoutMs: 180_000 });
    if (r.code !== 0) throw new Error(`install.sh failed (${r.code}):\n${r.stderr}`);
  }, 200_000);

  afterAll(async () => {
    await lab?.destroy();
    rmSync(root, { recursive: true, force: true });
  });

  it('installs the command, the unit and the program, keeping the existing config file', () => {
    expect(existsSync(join(prefix, 'bin', 'bpfnet'))).toBe(true);
    expect(existsSync(join(prefix, 'lib', 'bpfnet', 'dist', 'src', 'daemon', 'main.js'))).toBe(true);
    expect(existsSync(join(prefix, 'lib', 'bpfnet', 'build', 'bpf', 'lxc.bpf.o'))).toBe(true);
    expect(existsSync(join(prefix, 'lib', 'bpfnet', 'node_modules', 'prom-client', 'package.json'))).toBe(true);
    // No development tools in the installed tree.
    expect(existsSync(join(prefix, 'lib', 'bpfnet', 'node_modules', 'vitest'))).toBe(false);
    expect(existsSync(join(prefix, 'lib', 'bpfnet', 'node_modules', 'typescript'))).toBe(false);
    expect(JSON.parse(readFileSync(join(etc, 'bpfnet', 'daemon.json'), 'utf8'))).toEqual({ 'log-format': 'json' });
    const unit = readFileSync(join(prefix, 'lib', 'systemd', 'system', 'bpfnet.service'), 'utf8');
    expect(unit).toContain(`ExecStart=${prefix}/bin/bpfnet daemon --config-file ${etc}/bpfnet/daemon.json`);
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^KillMode=process$/m);
    expect(unit).toMatch(/^CapabilityBoundingSet=CAP_NET_ADMIN /m);
    expect(unit).toMatch(/mount -t bpf bpf \/sys\/fs\/bpf/);
  });

  it('writes a unit that systemd-analyze verify accepts', async () => {
    const r = await runRaw('systemd-analyze', ['verify', join(prefix, 'lib', 'systemd', 'system', 'bpfnet.service')], { timeoutMs: 60_000 });
    if (r.code === 127) throw new Error('systemd-analyze is missing: apt-get install systemd (scripts/bootstrap.sh does)');
    expect(r.stderr).not.toMatch(/bpfnet\.service:/);
    expect(r.code).toBe(0);
  });

  it('runs the installed daemon from the installed tree, reading the installed config file', async () => {
    lab = await Lab.create();
    const socket = join(lab.tmpDir(), 'inst.sock');
    const child = lab.spawn(lab.host, join(prefix, 'bin', 'bpfnet'), [
      'daemon', '--config-file', join(etc, 'bpfnet', 'daemon.json'), '--root', join(lab.tmpDir(), 'inst-root'), '--socket', socket,
      '--uplink', UPLINK.hostIf, '--instance', `${lab.prefix}i`,
    ]);
    let log = '';
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    for (let i = 0; i < 600 && !(await listening(socket)); i++) {
      if (child.exitCode !== null) throw new Error(`installed daemon exited (${child.exitCode}):\n${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const info = await run(join(prefix, 'bin', 'bpfnet'), ['-H', `unix://${socket}`, 'info', '--format', '{{.Datapath}} {{.Root}}']);
    expect(info.trim()).toBe(`ebpf ${join(lab.tmpDir(), 'inst-root')}`);
    // The installed config's log-format json took effect.
    expect(JSON.parse(log.split('\n')[0]).level).toBe('info');
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  });

  it('uninstalls exactly what it installed', async () => {
    const r = await runRaw(INSTALL, ['--prefix', prefix, '--sysconfdir', etc, '--uninstall'], { timeoutMs: 120_000 });
    expect(r.code).toBe(0);
    expect(tree(root)).toEqual(before);
    const again = await runRaw(INSTALL, ['--prefix', prefix, '--sysconfdir', etc, '--uninstall']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('no bpfnet installed under');
  });
});
