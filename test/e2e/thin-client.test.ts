// bin/bpfnet, the thin client (client/bpfnet.c): the daemon runs the command line with the same
// TypeScript CLI and streams its output back, so every command prints what the Node CLI prints,
// byte for byte, with the same exit status; commands that need the user's process (a prompt,
// `bpfnet daemon`) and an unreachable daemon fall back to the Node CLI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LabDaemon } from '../../src/lab/daemon.js';
import { Lab } from '../../src/lab/lab.js';
import { cliPath, projectRoot, thinClientPath } from '../../src/paths.js';
import { runRaw, type RunResult } from '../../src/system/exec.js';

const BIN = join(projectRoot, 'bin', 'bpfnet');
const THIN = thinClientPath;

/** Time columns move between two runs: "3 seconds ago" and "4 seconds ago" are the same output. */
/** Output with the relative times (and the column padding they set) made comparable across two runs a second apart. */
function steady(text: string): string {
  return text.replace(/(Less than a second|About a minute|\d+ (seconds?|minutes?)) ago/g, '<ago>').replace(/ {2,}/g, '  ');
}

describe('the thin client', () => {
  let lab: Lab;
  let d: LabDaemon;
  let host: string;

  const thin = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> =>
    runRaw(BIN, ['-H', host, ...args], { timeoutMs: 30_000, env: { ...process.env, ...env } });
  const node = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> =>
    runRaw(process.execPath, [cliPath, '-H', host, ...args], { timeoutMs: 30_000, env: { ...process.env, ...env } });
  /** The thin client with no Node to fall back to: it succeeds only if the daemon ran the command. */
  const daemonOnly = (args: string[], env: NodeJS.ProcessEnv = {}) => thin(args, { ...env, BPFNET_NODE: '/bin/false' });

  beforeAll(async () => {
    expect(existsSync(THIN), `${THIN} is not built: run scripts/bootstrap.sh`).toBe(true);
    lab = await Lab.create();
    d = await LabDaemon.start(lab, { datapath: 'ebpf' });
    host = `unix://${d.socket}`;
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('prints what the Node CLI prints, with its exit status, for lists, inspect, errors and usage errors', async () => {
    const created = await daemonOnly(['network', 'create', '--subnet', '10.91.0.0/24', 'thin1']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    expect((await daemonOnly(['run', '-d', '--name', 'thin-a', '--network', 'thin1', '-p', '8080:80'])).code).toBe(0);

    const lines: string[][] = [
      ['network', 'ls'],
      ['network', 'ls', '--no-trunc', '--format', '{{.Name}} {{.Driver}} {{.Scope}}'],
      ['network', 'inspect', 'thin1'],
      ['ps'],
      ['ps', '-a', '--no-trunc', '--format', 'json'],
      ['inspect', 'thin-a'],
      ['--help'],
      ['network', 'inspect', 'no-such-network'],
      ['network', 'create'],
      ['network', 'ls', '--format', '{{'],
      ['no-such-command'],
    ];
    for (const args of lines) {
      const [a, b] = [await daemonOnly(args), await node(args)];
      const what = `bpfnet ${args.join(' ')}`;
      expect({ code: a.code, stdout: steady(a.stdout), stderr: a.stderr }, what).toEqual({ code: b.code, stdout: steady(b.stdout), stderr: b.stderr });
    }
    // The cases above cover success, the daemon's errors (1) and usage errors (125).
    const codes = new Set(await Promise.all(lines.map(async (args) => (await node(args)).code)));
    expect([...codes].sort()).toEqual([0, 1, 125]);
  });

  it('streams an attached process and passes the caller environment (`exec -e VAR`)', async () => {
    expect((await daemonOnly(['run', '-d', '--name', 'thin-b', '--network', 'thin1'])).code).toBe(0);
    const r = await daemonOnly(['exec', '-e', 'THIN_VAR', 'thin-b', 'sh', '-c', 'echo "out $THIN_VAR"; echo err >&2; exit 3'], { THIN_VAR: 'from-the-client' });
    expect(r.stdout).toBe('out from-the-client\n');
    expect(r.stderr).toBe('err\n');
    expect(r.code).toBe(3);
    // An attached `run` streams too, with the process's exit status.
    const attached = await daemonOnly(['run', '--name', 'thin-c', '--network', 'thin1', 'sh', '-c', 'seq 1 20000; exit 4']);
    expect(attached.stdout.split('\n').length).toBe(20001);
    expect(attached.code).toBe(4);
  });

  it('runs commands that need this process in the Node CLI: a prompt, the daemon, an unreachable daemon', async () => {
    // BPFNET_NODE names the Node it falls back to: echo shows it was asked, with every argument.
    const prune = await thin(['network', 'prune'], { BPFNET_NODE: '/bin/echo' });
    expect(prune.stdout).toBe(`${join(projectRoot, 'dist/src/cli/bundle/bpfnet.js')} -H ${host} network prune\n`);
    const daemonHelp = await thin(['daemon', '--help'], { BPFNET_NODE: '/bin/echo' });
    expect(daemonHelp.stdout).toMatch(/bpfnet\.js -H \S+ daemon --help\n$/);
    // The prompt still works through the fallback, with stdin.
    const answered = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(BIN, ['-H', host, 'network', 'prune'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.on('close', (code) => resolve({ code, out }));
      child.stdin.end('n\n');
    });
    expect(answered).toEqual({ code: 0, out: expect.stringContaining('Are you sure you want to continue? [y/N] ') });

    const gone = ['-H', `unix://${lab.tmpDir()}/no-daemon.sock`, 'network', 'ls'];
    const [a, b] = [await runRaw(BIN, gone), await runRaw(process.execPath, [cliPath, ...gone])];
    expect({ code: a.code, stderr: a.stderr }).toEqual({ code: b.code, stderr: b.stderr });
    expect(a.code).not.toBe(0);
  });

  it('streams `events` until interrupted, and the daemon lets go of the command', async () => {
    const child = spawn(BIN, ['-H', host, 'events', '--format', '{{.Action}} {{.Actor.Attributes.name}}'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BPFNET_NODE: '/bin/false' } });
    try {
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      await new Promise((r) => setTimeout(r, 500));
      await d.bpfnet('network', 'create', 'thin-ev');
      for (let i = 0; i < 100 && !out.includes('create thin-ev'); i++) await new Promise((r) => setTimeout(r, 50));
      expect(out).toContain('create thin-ev\n');
    } finally {
      child.kill('SIGINT');
    }
    await new Promise((resolve) => child.once('close', resolve));
    // More interrupted streams than the daemon runs at once: each one ended when its client left.
    for (let i = 0; i < 40; i++) {
      const c = spawn(BIN, ['-H', host, 'events'], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 20));
      c.kill('SIGKILL');
      await new Promise((resolve) => c.once('close', resolve));
    }
    const after = await daemonOnly(['network', 'ls', '--format', '{{.Name}}']);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).toContain('thin-ev\n');
  });
});
