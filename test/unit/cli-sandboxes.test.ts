// run, exec, ps, inspect, rm, stats, monitor and version against a fake daemon: requests,
// streamed output, exit statuses.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SandboxSummary } from '../../src/api/types.js';
import { bpfnet, FakeDaemon } from './cli-fake-daemon.js';

let daemon: FakeDaemon;
beforeEach(async () => {
  daemon = await FakeDaemon.start();
});
afterEach(async () => {
  await daemon.close();
});

const b64 = (s: string) => Buffer.from(s).toString('base64');
const SID = 'f'.repeat(64);

describe('run', () => {
  it('creates and starts with -d, sending -p specs verbatim, and prints the full Id', async () => {
    daemon.reply('POST', '/sandboxes/create', 201, { Id: SID, Warnings: [] });
    const r = await bpfnet(
      ['run', '-d', '--name', 'web', '--network', 'appnet', '--ip', '10.5.0.9', '--network-alias', 'www', '-p', '8080:80', '-p', '127.0.0.1:53:53/udp', '-p', '1-2:3-4/tcp', '-h', 'webhost', '--add-host', 'db:10.0.0.5', '--dns', '9.9.9.9', '--dns-search', 'example.org', '--', 'python3', '-m', 'http.server', '80'],
      daemon,
    );
    expect(r).toEqual({ code: 0, stdout: `${SID}\n`, stderr: '' });
    expect(daemon.requests[0].body).toBe(
      JSON.stringify({
        Name: 'web',
        Network: 'appnet',
        IPv4Address: '10.5.0.9',
        Aliases: ['www'],
        Publish: ['8080:80', '127.0.0.1:53:53/udp', '1-2:3-4/tcp'],
        Hostname: 'webhost',
        ExtraHosts: ['db:10.0.0.5'],
        Dns: ['9.9.9.9'],
        DnsSearch: ['example.org'],
        Cmd: ['python3', '-m', 'http.server', '80'],
        Start: true,
      }),
    );
  });

  it('holds only a namespace without a command', async () => {
    daemon.reply('POST', '/sandboxes/create', 201, { Id: SID, Warnings: ['Published ports are discarded when using host network mode'] });
    const r = await bpfnet(['run', '--name', 'ns', '--network', 'host', '-p', '80'], daemon);
    expect(r).toEqual({ code: 0, stdout: `${SID}\n`, stderr: 'WARNING: Published ports are discarded when using host network mode\n' });
    expect(JSON.parse(daemon.requests[0].body)).toEqual({ Name: 'ns', Network: 'host', Publish: ['80'], Start: true });
  });

  it('attaches without -d: create stopped, start with attach, stream, exit with the status', async () => {
    daemon.reply('POST', '/sandboxes/create', 201, { Id: SID, Warnings: [] });
    daemon.stream('POST', `/sandboxes/${SID}/start`, [
      { Stream: 'stdout', Data: b64('hello\n') },
      { Stream: 'stderr', Data: b64('oops\n') },
      { ExitCode: 3 },
    ]);
    const r = await bpfnet(['run', '--name', 'job', 'sh', '-c', 'echo hello; echo oops >&2; exit 3'], daemon);
    expect(r).toEqual({ code: 3, stdout: 'hello\n', stderr: 'oops\n' });
    expect(JSON.parse(daemon.requests[0].body)).toEqual({ Name: 'job', Cmd: ['sh', '-c', 'echo hello; echo oops >&2; exit 3'], Start: false });
    expect(daemon.requests[1].query.get('attach')).toBe('1');
  });

  it('hands flags after the command to the process, not to run', async () => {
    daemon.reply('POST', '/sandboxes/create', 201, { Id: SID, Warnings: [] });
    await bpfnet(['run', '-d', '--name', 'p', 'ping', '-c', '1', '--name=x', 'db'], daemon);
    expect(JSON.parse(daemon.requests[0].body)).toMatchObject({ Name: 'p', Cmd: ['ping', '-c', '1', '--name=x', 'db'] });
  });

  it('exits 125 with the daemon error when run itself fails', async () => {
    daemon.fail('POST', '/sandboxes/create', 409, 'sandbox name "web" is already in use');
    const r = await bpfnet(['run', '-d', '--name', 'web', 'sleep', '100'], daemon);
    expect(r).toEqual({ code: 125, stdout: '', stderr: 'Error response from daemon: sandbox name "web" is already in use\n' });
  });

  it.each([
    [['--add-host', 'nocolon'], 'bad format for add-host: "nocolon"'],
    [['--add-host', 'db:notanip'], 'invalid IP address in add-host: "notanip"'],
    [['--dns', '1.2.3'], 'IP address is not correctly formatted: 1.2.3'],
  ])('refuses %j before calling the daemon', async (flags, message) => {
    const r = await bpfnet(['run', '--name', 'x', ...flags], daemon);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(message);
    expect(daemon.requests).toEqual([]);
  });

  it('accepts docker spellings of --add-host and canonicalises --dns', async () => {
    daemon.reply('POST', '/sandboxes/create', 201, { Id: SID, Warnings: [] });
    await bpfnet(['run', '--name', 'x', '--add-host', 'v6=[::1]', '--add-host', 'gw:host-gateway', '--dns', '0:0:0:0:0:0:0:1'], daemon);
    expect(JSON.parse(daemon.requests[0].body)).toMatchObject({ ExtraHosts: ['v6:::1', 'gw:host-gateway'], Dns: ['::1'] });
  });

  it('needs --name', async () => {
    const r = await bpfnet(['run', '-d', 'sleep', '1'], daemon);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("required option '--name <name>' not specified");
  });
});

describe('exec', () => {
  it('streams the output and exits with the exit code', async () => {
    daemon.stream('POST', '/sandboxes/web/exec', [{ Stream: 'stdout', Data: b64('a') }, { Stream: 'stdout', Data: b64('b\n') }, { ExitCode: 0 }]);
    const r = await bpfnet(['exec', 'web', 'cat', '/etc/hosts'], daemon);
    expect(r).toEqual({ code: 0, stdout: 'ab\n', stderr: '' });
    expect(daemon.requests[0].body).toBe('{"Cmd":["cat","/etc/hosts"]}');
  });

  it('passes the command its own flags and sends -e, expanding bare names from the environment', async () => {
    daemon.stream('POST', '/sandboxes/web/exec', [{ ExitCode: 1 }]);
    const r = await bpfnet(['exec', '-e', 'A=1', '-e', 'HOME', 'web', 'ping', '-c', '1', '-e', 'db'], daemon, { env: { HOME: '/root' } });
    expect(r.code).toBe(1);
    expect(JSON.parse(daemon.requests[0].body)).toEqual({ Cmd: ['ping', '-c', '1', '-e', 'db'], Env: ['A=1', 'HOME=/root'] });
  });

  it('prints an Error frame and exits 126', async () => {
    daemon.stream('POST', '/sandboxes/web/exec', [{ Error: 'spawn nosuch ENOENT' }]);
    expect(await bpfnet(['exec', 'web', 'nosuch'], daemon)).toEqual({ code: 126, stdout: '', stderr: 'spawn nosuch ENOENT\n' });
  });

  it('fails when the stream ends without an exit code', async () => {
    daemon.stream('POST', '/sandboxes/web/exec', [{ Stream: 'stdout', Data: b64('x') }]);
    const r = await bpfnet(['exec', 'web', 'true'], daemon);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('the daemon closed the stream before the process exited\n');
  });

  it('reports an unknown sandbox as a daemon error', async () => {
    daemon.fail('POST', '/sandboxes/nope/exec', 404, 'no such sandbox: nope');
    expect(await bpfnet(['exec', 'nope', 'true'], daemon)).toEqual({ code: 1, stdout: '', stderr: 'Error response from daemon: no such sandbox: nope\n' });
  });

  it('needs a sandbox and a command', async () => {
    expect((await bpfnet(['exec', 'web'], daemon)).code).toBe(125);
  });
});

describe('ps', () => {
  const now = Date.parse('2026-11-22T12:00:00Z');
  const summary = (name: string, id: string, state: string, extra: Partial<SandboxSummary> = {}): SandboxSummary => ({
    Id: id,
    Name: name,
    Command: 'sleep 1000',
    Created: '2026-11-22T11:59:55.5Z',
    State: state,
    Status: state === 'running' ? 'Up 5 seconds' : state === 'exited' ? 'Exited (0) 1 second ago' : 'Created',
    Ports: [],
    Networks: ['bridge'],
    ...extra,
  });
  const list = [
    summary('old', 'a'.repeat(64), 'exited', { Created: '2026-11-22T10:00:00Z' }),
    summary('web', 'b'.repeat(64), 'running', {
      Command: 'python3 -m http.server 8080',
      Ports: [{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }],
      Networks: ['frontend', 'backend'],
    }),
    summary('ns', 'c'.repeat(64), 'created', { Command: '', Created: '2026-11-22T11:00:00Z', Networks: [] }),
  ];

  it('prints the table, newest first, hiding exited sandboxes', async () => {
    daemon.reply('GET', '/sandboxes', 200, list);
    const r = await bpfnet(['ps'], daemon, { now });
    expect(r.code).toBe(0);
    // Column widths: widest cell + 3, at least 10; the last column unpadded.
    const line = (cells: string[]) => cells.map((c, i) => (i < 6 ? c.padEnd([15, 10, 25, 20, 15, 23][i]) : c)).join('') + '\n';
    expect(r.stdout).toBe(
      line(['SANDBOX ID', 'NAME', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NETWORKS']) +
        line(['bbbbbbbbbbbb', 'web', '"python3 -m http.ser…"', '5 seconds ago', 'Up 5 seconds', '0.0.0.0:8080->80/tcp', 'backend,frontend']) +
        line(['cccccccccccc', 'ns', '""', 'About an hour ago', 'Created', '', '']),
    );
  });

  it('shows every sandbox with -a, ids with -q, full values with --no-trunc', async () => {
    daemon.reply('GET', '/sandboxes', 200, list);
    expect((await bpfnet(['ps', '-a', '-q'], daemon, { now })).stdout).toBe(`${'b'.repeat(12)}\n${'c'.repeat(12)}\n${'a'.repeat(12)}\n`);
    expect((await bpfnet(['ps', '--no-trunc', '--format', '{{.ID}} {{.Command}}'], daemon, { now })).stdout.split('\n')[0]).toBe(
      `${'b'.repeat(64)} "python3 -m http.server 8080"`,
    );
  });

  it('formats json and custom templates, and sends filters', async () => {
    daemon.reply('GET', '/sandboxes', 200, [list[1]]);
    const r = await bpfnet(['ps', '--filter', 'name=web', '--format', '{{.Name}}\\t{{.State}}\\t{{.Ports}}'], daemon, { now });
    expect(r.stdout).toBe('web\trunning\t0.0.0.0:8080->80/tcp\n');
    expect(daemon.requests[0].query.get('filters')).toBe('{"name":{"web":true}}');
    const json = JSON.parse((await bpfnet(['ps', '--format', 'json'], daemon, { now })).stdout);
    expect(json).toMatchObject({ ID: 'b'.repeat(12), Name: 'web', RunningFor: '5 seconds ago', CreatedAt: '2026-11-22 11:59:55 +0000 UTC' });
  });
});

describe('inspect and rm', () => {
  it('inspects like docker inspect', async () => {
    const obj = { Id: SID, Name: 'web', State: { Status: 'running', Running: true, Pid: 42 } };
    daemon.reply('GET', '/sandboxes/web', 200, obj);
    daemon.fail('GET', '/sandboxes/nope', 404, 'no such sandbox: nope');
    const r = await bpfnet(['inspect', 'web', 'nope'], daemon);
    expect(r).toEqual({ code: 1, stdout: JSON.stringify([obj], null, 4) + '\n', stderr: 'Error response from daemon: no such sandbox: nope\n' });
    expect((await bpfnet(['inspect', '-f', '{{.State.Pid}} {{.Name}}', 'web'], daemon)).stdout).toBe('42 web\n');
  });

  it('removes each sandbox, forced with -f, and reports failures at the end', async () => {
    daemon.reply('DELETE', /^\/sandboxes\/(a|b)$/, 204);
    daemon.fail('DELETE', '/sandboxes/busy', 409, 'cannot remove running sandbox busy');
    const r = await bpfnet(['rm', 'a', 'busy', 'b'], daemon);
    expect(r).toEqual({ code: 1, stdout: 'a\nb\n', stderr: 'Error response from daemon: cannot remove running sandbox busy\n' });
    expect(daemon.requests.map((q) => q.query.get('force'))).toEqual([null, null, null]);

    daemon.fail('DELETE', '/sandboxes/gone', 404, 'no such sandbox: gone');
    expect(await bpfnet(['rm', '-f', 'a', 'gone'], daemon)).toEqual({ code: 0, stdout: 'a\n', stderr: '' });
    expect(daemon.requests.at(-1)?.query.get('force')).toBe('1');
  });
});

describe('stats', () => {
  const stats = {
    Id: SID,
    Name: 'web',
    Endpoints: [
      { Network: 'appnet', InterfaceName: 'bn-1', RxPackets: 10, RxBytes: 1234, TxPackets: 7, TxBytes: 648, Drops: { policy: 2, no_route: 1 } },
      { Network: 'bridge', InterfaceName: 'bn-2', RxPackets: 0, RxBytes: 0, TxPackets: 0, TxBytes: 0, Drops: {} },
    ],
  };

  it('prints a row per endpoint of one sandbox', async () => {
    daemon.reply('GET', '/sandboxes/web/stats', 200, stats);
    const r = await bpfnet(['stats', 'web'], daemon);
    expect(r.stdout).toBe(
      'SANDBOX ID     NAME      NETWORK   INTERFACE   RX PACKETS   RX BYTES   TX PACKETS   TX BYTES   DROPS\n' +
        'ffffffffffff   web       appnet    bn-1        10           1.23kB     7            648B       3 (no_route=1, policy=2)\n' +
        'ffffffffffff   web       bridge    bn-2        0            0B         0            0B         0\n',
    );
  });

  it('covers every sandbox that is not exited without arguments', async () => {
    daemon.reply('GET', '/sandboxes', 200, [
      { Id: 'x1', Name: 'a', State: 'running' },
      { Id: 'x2', Name: 'b', State: 'exited' },
      { Id: 'x3', Name: 'c', State: 'created' },
    ]);
    daemon.reply('GET', '/sandboxes/x1/stats', 200, { Id: 'x1', Name: 'a', Endpoints: [] });
    daemon.fail('GET', '/sandboxes/x3/stats', 404, 'gone');
    const r = await bpfnet(['stats', '--format', '{{.Name}} {{.Network}}'], daemon);
    expect(r).toEqual({ code: 0, stdout: 'a --\n', stderr: '' });
    expect(daemon.requests.map((q) => q.path)).toEqual(['/sandboxes', '/sandboxes/x1/stats', '/sandboxes/x3/stats', '/sandboxes/x3']);
  });

  it('does not mistake a daemon without stats for sandboxes that went away', async () => {
    daemon.reply('GET', '/sandboxes', 200, [{ Id: 'x1', Name: 'a', State: 'running' }]);
    daemon.reply('GET', '/sandboxes/x1', 200, { Id: 'x1' });
    expect(await bpfnet(['stats'], daemon)).toEqual({ code: 1, stdout: '', stderr: 'Error response from daemon: page not found\n' });
  });

  it('reports a datapath without counters once', async () => {
    daemon.reply('GET', '/sandboxes', 200, [{ Id: 'x1', State: 'running' }, { Id: 'x2', State: 'running' }]);
    daemon.fail('GET', /\/stats$/, 400, 'stats need the ebpf datapath');
    expect(await bpfnet(['stats'], daemon)).toEqual({ code: 1, stdout: '', stderr: 'Error response from daemon: stats need the ebpf datapath\n' });
  });
});

describe('monitor', () => {
  const event = { Time: '2026-11-22T12:00:01.5Z', Reason: 'policy', Protocol: 'tcp', Source: '10.0.0.2:40000', Destination: '10.1.0.3:80', Interface: 'bn-1' };

  it('prints one line per drop until the stream ends', async () => {
    daemon.stream('GET', '/events/drops', [event, { ...event, Reason: 'no_route', Protocol: 'udp' }]);
    const r = await bpfnet(['monitor'], daemon);
    expect(r).toEqual({
      code: 0,
      stdout:
        '2026-11-22T12:00:01.5Z reason=policy tcp 10.0.0.2:40000 -> 10.1.0.3:80 iface=bn-1\n' +
        '2026-11-22T12:00:01.5Z reason=no_route udp 10.0.0.2:40000 -> 10.1.0.3:80 iface=bn-1\n',
      stderr: '',
    });
  });

  it('stops cleanly on Ctrl-C', async () => {
    daemon.on('GET', '/events/drops', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
      res.write(`${JSON.stringify(event)}\n`);
    });
    let interrupt: (() => void) | undefined;
    const running = bpfnet(['monitor', '--format', '{{.Reason}}'], daemon, { onInterruptListener: (fn) => (interrupt = fn) });
    await new Promise((resolve) => setTimeout(resolve, 100));
    interrupt!();
    expect(await running).toEqual({ code: 0, stdout: 'policy\n', stderr: '' });
  });
});

describe('version and an absent daemon', () => {
  const version = {
    Platform: { Name: 'bpfnet' },
    Components: [
      { Name: 'Engine', Version: '0.1.0', Details: { ApiVersion: '1.50', MinAPIVersion: '1.24', GoVersion: 'node v20', GitCommit: '', Os: 'linux', Arch: 'amd64', KernelVersion: '6.18.0' } },
    ],
    Version: '0.1.0',
  };

  it('prints the client and server blocks', async () => {
    daemon.reply('GET', '/version', 200, version);
    const r = await bpfnet(['version'], daemon);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Client:\n Version:           0.1.0\n');
    expect(r.stdout).toContain(
      '\nServer: bpfnet\n Engine:\n  Version:          0.1.0\n  API version:      1.50 (minimum version 1.24)\n  Go version:       node v20\n  Kernel version:   6.18.0\n  OS/Arch:          linux/amd64\n',
    );
    expect((await bpfnet(['version', '-f', '{{.Server.Version}}'], daemon)).stdout).toBe('0.1.0\n');
  });

  it('prints the client block, then why the daemon is unreachable, exit 1', async () => {
    const r = await bpfnet(['version'], undefined, { env: { BPFNET_HOST: 'unix:///nonexistent/x.sock' } });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^Client:\n/);
    expect(r.stderr).toBe('Cannot connect to the bpfnet daemon at unix:///nonexistent/x.sock. Is the daemon running?\n');
  });

  it('takes -H before the command over BPFNET_HOST', async () => {
    daemon.reply('GET', '/networks', 200, []);
    const r = await bpfnet(['-H', daemon.host, 'network', 'ls', '-q'], undefined, { env: { BPFNET_HOST: 'unix:///nonexistent/x.sock' } });
    expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
  });
});
