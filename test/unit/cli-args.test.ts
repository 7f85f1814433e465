// Command-line parsing: global flags, docker's --flag=bool spelling, usage errors (125), the
// daemon subcommand's options, and the real entry point as a process.
import { execFile } from 'node:child_process';
import { accessSync, chmodSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DaemonOptions } from '../../src/cli/daemon-options.js';
import { cliPath, projectRoot } from '../../src/paths.js';
import { bpfnet, FakeDaemon } from './cli-fake-daemon.js';

let daemon: FakeDaemon;
beforeEach(async () => {
  daemon = await FakeDaemon.start();
});
afterEach(async () => {
  await daemon.close();
});

describe('global flags and usage errors', () => {
  it('prints help and the version with status 0', async () => {
    const help = await bpfnet(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: bpfnet [OPTIONS] COMMAND');
    const version = await bpfnet(['-v']);
    expect(version).toMatchObject({ code: 0, stdout: expect.stringMatching(/^bpfnet version \d+\.\d+\.\d+\n$/) });
  });

  it.each([
    [['nosuch'], "unknown command 'nosuch'"],
    [['network', 'ls', '--bogus'], "unknown option '--bogus'"],
    [['ps', 'extra'], 'too many arguments'],
    [['network', 'connect', 'n1'], "missing required argument 'sandbox'"],
    [['network', 'connect', '--gw-priority', 'x', 'n', 'c'], 'invalid syntax'],
    [['-H', 'tcp://1.2.3.4:2375', 'ps'], 'bpfnet speaks to its daemon over unix://PATH only'],
  ])('%j is a usage error: status 125, nothing sent', async (argv, message) => {
    const r = await bpfnet(argv, daemon);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(message);
    expect(daemon.requests).toEqual([]);
  });

  it('takes global flags before the command only, as docker does', async () => {
    expect((await bpfnet(['ps', '-H', daemon.host], daemon)).code).toBe(125);
  });

  it("accepts pflag's --flag=true|false for boolean flags", async () => {
    daemon.reply('POST', '/networks/create', 201, { Id: 'x', Warning: '' });
    daemon.reply('GET', '/networks', 200, [{ Id: 'a'.repeat(64), Name: 'n' }]);
    await bpfnet(['network', 'create', '--internal=true', '--attachable=false', '--ipv6=0', 'n'], daemon);
    expect(JSON.parse(daemon.requests[0].body)).toMatchObject({ Internal: true, Attachable: false, EnableIPv6: false });
    expect((await bpfnet(['network', 'ls', '-q', '--no-trunc=true'], daemon)).stdout).toBe(`${'a'.repeat(64)}\n`);
    expect((await bpfnet(['network', 'ls', '-q', '--no-trunc=false'], daemon)).stdout).toBe(`${'a'.repeat(12)}\n`);
  });

  it('leaves option values and run/exec commands alone when rewriting --flag=bool', async () => {
    daemon.reply('POST', '/sandboxes/create', 201, { Id: 'x', Warnings: [] });
    await bpfnet(['run', '-d', '--name', '--detach=true', 'tool', '--detach=true'], daemon);
    expect(JSON.parse(daemon.requests[0].body)).toMatchObject({ Name: '--detach=true', Cmd: ['tool', '--detach=true'] });
  });
});

describe('daemon', () => {
  const start = async (argv: string[]) => {
    let received: DaemonOptions | undefined;
    const r = await bpfnet(['daemon', ...argv], undefined, {
      deps: { loadDaemon: async () => ({ runDaemon: async (o: DaemonOptions) => void (received = o) }) },
    });
    return { ...r, received };
  };

  it('hands only the typed flags to runDaemon (the daemon puts its config file between them and the defaults)', async () => {
    const { code, received } = await start([]);
    expect(code).toBe(0);
    expect(received).toEqual({});
    expect((await start(['--log-level', 'info', '--config-file', '/tmp/x.json', '--metrics-per-endpoint'])).received).toEqual({
      logLevel: 'info',
      configFile: '/tmp/x.json',
      metricsPerEndpoint: true,
    });
  });

  it('parses every flag, pools repeatable', async () => {
    const { received } = await start([
      '--root', '/tmp/r', '--socket', '/tmp/s.sock', '--datapath', 'iptables', '--uplink', 'eth1', '--bip', '10.200.0.1/24',
      '--default-address-pool', 'base=10.10.0.0/16,size=24', '--default-address-pool', 'base=10.20.0.0/16,size=26',
      '--instance', 'h1', '--log-level', 'debug', '--ebpf-ct-max', '65536', '--ebpf-gc-interval', '5', '--ebpf-timeouts', 'udp=30',
    ]);
    expect(received).toEqual({
      root: '/tmp/r',
      socket: '/tmp/s.sock',
      datapath: 'iptables',
      uplink: 'eth1',
      bip: '10.200.0.1/24',
      defaultAddressPool: ['base=10.10.0.0/16,size=24', 'base=10.20.0.0/16,size=26'],
      instance: 'h1',
      logLevel: 'debug',
      ebpfCtMax: '65536',
      ebpfGcInterval: '5',
      ebpfTimeouts: 'udp=30',
    });
  });

  it.each([
    [['--datapath', 'xdp'], "Allowed choices are ebpf, iptables"],
    [['--default-address-pool', 'base=10.10.0.0/16'], 'invalid default address pool'],
    [['--log-level', 'loud'], 'Allowed choices are debug, info, warn, error'],
  ])('refuses %j before starting anything', async (argv, message) => {
    const r = await start(argv);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(message);
    expect(r.received).toBeUndefined();
  });

  it('says so when the daemon module is missing', async () => {
    const missing = Object.assign(new Error("Cannot find module '/x/dist/src/daemon/main.js'"), { code: 'ERR_MODULE_NOT_FOUND' });
    const r = await bpfnet(['daemon'], undefined, { deps: { loadDaemon: () => Promise.reject(missing) } });
    expect(r).toEqual({ code: 1, stdout: '', stderr: 'daemon not built: dist/src/daemon/main.js is missing (run scripts/bootstrap.sh)\n' });
  });

  it('reports a failing start and exits 1', async () => {
    const r = await bpfnet(['daemon'], undefined, {
      deps: { loadDaemon: async () => ({ runDaemon: () => Promise.reject(new Error('--bip must be the gateway address')) }) },
    });
    expect(r).toEqual({ code: 1, stdout: '', stderr: '--bip must be the gateway address\n' });
  });
});

describe('the bpfnet executable', () => {
  const run = promisify(execFile);

  it('is a shell shim that starts the thin client, or the bundled Node CLI before it is built', async () => {
    const shim = join(projectRoot, 'bin', 'bpfnet');
    accessSync(shim, constants.X_OK);
    // A copy of the tree around the shim, with stand-ins that say which one ran and with what.
    const root = mkdtempSync(join(tmpdir(), 'bpfnet-shim-'));
    try {
      mkdirSync(join(root, 'bin'));
      copyFileSync(shim, join(root, 'bin', 'bpfnet'));
      chmodSync(join(root, 'bin', 'bpfnet'), 0o755);
      mkdirSync(join(root, 'dist', 'src', 'cli', 'bundle'), { recursive: true });
      writeFileSync(join(root, 'dist', 'src', 'cli', 'bundle', 'bpfnet.js'), "process.stdout.write('node ' + process.argv.slice(2).join(' '));\n");
      expect((await run(join(root, 'bin', 'bpfnet'), ['ps', '-a'])).stdout).toBe('node ps -a');
      mkdirSync(join(root, 'build', 'bin'), { recursive: true });
      writeFileSync(join(root, 'build', 'bin', 'bpfnet'), '#!/bin/sh\necho "thin $*"\n');
      chmodSync(join(root, 'build', 'bin', 'bpfnet'), 0o755);
      expect((await run(join(root, 'bin', 'bpfnet'), ['network', 'ls'])).stdout).toBe('thin network ls\n');
      // Through a symbolic link from elsewhere (npm link, a PATH entry), as from its own directory.
      mkdirSync(join(root, 'elsewhere'));
      symlinkSync(join(root, 'bin', 'bpfnet'), join(root, 'elsewhere', 'bpfnet'));
      expect((await run(join(root, 'elsewhere', 'bpfnet'), ['ps'])).stdout).toBe('thin ps\n');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('exits with the status runCli gives (src/cli/main.ts under tsx)', async () => {
    const tsx = join(projectRoot, 'node_modules', 'tsx', 'dist', 'loader.mjs');
    const main = join(projectRoot, 'src', 'cli', 'main.ts');
    const err = await run(process.execPath, ['--import', tsx, main, '-H', 'unix:///nonexistent/x.sock', 'network', 'ls']).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toBe('Cannot connect to the bpfnet daemon at unix:///nonexistent/x.sock. Is the daemon running?\n');

    daemon.reply('GET', '/networks', 200, [{ Id: 'b'.repeat(64), Name: 'bridge', Driver: 'bridge', Scope: 'local' }]);
    const ok = await run(process.execPath, ['--import', tsx, main, 'network', 'ls'], { env: { ...process.env, BPFNET_HOST: daemon.host } });
    expect(ok.stdout).toBe('NETWORK ID     NAME      DRIVER    SCOPE\nbbbbbbbbbbbb   bridge    bridge    local\n');
  }, 30_000); // two Node processes compiling the CLI's TypeScript: seconds on a loaded 2-vCPU machine

  it('runs from bin/bpfnet once built', async () => {
    expect(existsSync(cliPath), `${cliPath} is not built: run scripts/bootstrap.sh`).toBe(true);
    const err = await run(join(projectRoot, 'bin', 'bpfnet'), ['network', 'create']).catch((e) => e);
    expect(err.code).toBe(125);
    expect(err.stderr).toContain("missing required argument 'network'");
  });
});
