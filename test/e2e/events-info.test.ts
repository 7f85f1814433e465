// The docker CLI's `docker events --filter type=network` and `docker info` against bpfnet's
// socket, and bpfnet's own `events` and `info`: network create, connect, disconnect and destroy
// arrive live and in order, `since`/`until` replay them, and info reports the datapath's view.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { Lab } from '../../src/lab/lab.js';
import { LabDaemon } from '../../src/lab/daemon.js';
import { run, runRaw } from '../../src/system/exec.js';
import { cliPath } from '../../src/paths.js';

async function findDocker(): Promise<string> {
  const r = await runRaw('sh', ['-c', 'command -v docker']);
  if (r.code !== 0 || !r.stdout.trim()) throw new Error('no docker CLI on this machine (command -v docker found nothing): install docker.io or the docker CLI to run this test');
  return r.stdout.trim();
}

/** Starts a streaming command; `lines()` is what it printed so far. */
function follow(file: string, args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; lines: () => string[]; waitFor: (n: number) => Promise<string[]> } {
  const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const lines = () => out.split('\n').filter(Boolean);
  const waitFor = async (n: number) => {
    for (let i = 0; i < 200 && lines().length < n; i++) await new Promise((r) => setTimeout(r, 50));
    if (lines().length < n) throw new Error(`${file} ${args.join(' ')}: ${lines().length} lines of ${n}:\n${out}\n${err}`);
    return lines();
  };
  return { child, lines, waitFor };
}

describe('events and info', () => {
  let lab: Lab;
  let d: LabDaemon;
  let docker: string;
  let env: NodeJS.ProcessEnv;
  const followers: ChildProcess[] = [];

  beforeAll(async () => {
    docker = await findDocker();
    lab = await Lab.create();
    d = await LabDaemon.start(lab, { datapath: 'ebpf' });
    env = { ...process.env, DOCKER_HOST: `unix://${d.socket}`, HOME: lab.tmpDir(), DOCKER_CONFIG: lab.tmpDir() };
  });

  afterAll(async () => {
    for (const f of followers) if (f.exitCode === null) f.kill('SIGKILL');
    await lab?.destroy();
  });

  it('streams create, connect, disconnect and destroy to `docker events --filter type=network` and to `bpfnet events`', async () => {
    const since = Math.floor(Date.now() / 1000);
    const dockerEvents = follow(docker, ['events', '--filter', 'type=network'], env);
    const ours = follow(process.execPath, [cliPath, '-H', `unix://${d.socket}`, 'events', '--format', 'json'], env);
    const onlyCreate = follow(docker, ['events', '--filter', 'type=network', '--filter', 'event=create', '--format', '{{.Action}} {{.Actor.Attributes.name}}'], env);
    followers.push(dockerEvents.child, ours.child, onlyCreate.child);
    await new Promise((r) => setTimeout(r, 1000));
    const id = (await d.bpfnet('network', 'create', '--subnet', '10.43.0.0/24', 'evnet')).trim();
    await d.bpfnet('run', '-d', '--name', 'ev1', '--network', 'evnet');
    const sb = JSON.parse(await d.bpfnet('inspect', 'ev1'))[0].Id as string;
    await d.bpfnet('rm', '-f', 'ev1');
    await d.bpfnet('network', 'rm', 'evnet');
    const lines = await dockerEvents.waitFor(4);
    expect(lines.map((l) => l.replace(/^\S+ /, ''))).toEqual([
      `network create ${id} (name=evnet, type=bridge)`,
      `network connect ${id} (container=${sb}, name=evnet, type=bridge)`,
      `network disconnect ${id} (container=${sb}, name=evnet, type=bridge)`,
      `network destroy ${id} (name=evnet, type=bridge)`,
    ]);
    const json = (await ours.waitFor(4)).map((l) => JSON.parse(l));
    expect(json.map((e) => [e.Type, e.Action, e.Actor.ID])).toEqual([
      ['network', 'create', id],
      ['network', 'connect', id],
      ['network', 'disconnect', id],
      ['network', 'destroy', id],
    ]);
    expect(await onlyCreate.waitFor(1)).toEqual(['create evnet']);
    await new Promise((r) => setTimeout(r, 300));
    expect(onlyCreate.lines()).toEqual(['create evnet']);
    // since/until: a bounded replay that ends by itself.
    const replay = await runRaw(docker, ['events', '--since', String(since), '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', 'network=evnet', '--format', '{{.Action}}'], { env, timeoutMs: 15_000 });
    expect(replay).toMatchObject({ code: 0, stdout: 'create\nconnect\ndisconnect\ndestroy\n' });
  });

  it('refuses a bad filter with 400, naming it', async () => {
    const r = await runRaw(docker, ['events', '--filter', 'colour=red', '--until', '0'], { env, timeoutMs: 15_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("invalid filter 'colour'");
  });

  it("prints bpfnet's view in `docker info` and `bpfnet info`", async () => {
    await d.bpfnet('network', 'create', '--subnet', '10.44.0.0/24', 'infonet');
    await d.bpfnet('run', '-d', '--name', 'inf1', '--network', 'infonet', '-p', '8081:80', '--', 'sleep', '600');
    const r = await runRaw(docker, ['info'], { env, timeoutMs: 15_000 });
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Server Version: 0\.1\.0/);
    expect(r.stdout).toMatch(/Storage Driver: bpfnet/);
    expect(r.stdout).toMatch(/Datapath: ebpf/);
    expect(r.stdout).toMatch(/Uplink: up0 198\.18\.0\.1/);
    expect(r.stdout).toMatch(/Table published-ports: 1\/\d+/);
    expect(r.stdout).toMatch(/Containers: 1\n\s+Running: 1/);
    const fmt = await runRaw(docker, ['info', '--format', '{{.Containers}} {{.Driver}}'], { env });
    expect(fmt.stdout).toBe('1 bpfnet\n');
    const text = await run(process.execPath, [cliPath, '-H', `unix://${d.socket}`, 'info']);
    expect(text).toMatch(/^Datapath:\s+ebpf$/m);
    expect(text).toMatch(/^Networks:\s+4$/m);
    expect(text).toMatch(/^\s+published-ports\s+1\/\d+/m);
    expect(text).toMatch(/^\s+bpf_redirect_peer\s+yes/m);
    // This kernel has no 8021q module (toolchain.md): reported missing, not crashed on.
    expect(text).toMatch(/^\s+8021q\s+no /m);
    const json = JSON.parse(await run(process.execPath, [cliPath, '-H', `unix://${d.socket}`, 'info', '--format', 'json']));
    expect(json.Counts).toEqual({ Networks: 4, Sandboxes: 1, SandboxesRunning: 1, Endpoints: 1, PublishedPorts: 1 });
  });
});
