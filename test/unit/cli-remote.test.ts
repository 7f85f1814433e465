// The daemon's side of the thin client (src/cli/remote.ts): which command lines it refuses, and
// a command's output as frames, in order, with its exit status last; the client leaving ends a
// stream. Against the stand-in daemon: no kernel, no root.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Client, parseHost } from '../../src/cli/client.js';
import { FRAME_EXIT, FRAME_STDERR, FRAME_STDOUT, frame, runForThinClient, runsLocally } from '../../src/cli/remote.js';
import { FakeDaemon } from './cli-fake-daemon.js';

/** Collects frames as the HTTP response would carry them, and reads them back. */
class Frames {
  readonly chunks: Buffer[] = [];
  write(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    return true;
  }
  once(): void {}
  decode(): Array<[number, string]> {
    const all = Buffer.concat(this.chunks);
    const out: Array<[number, string]> = [];
    for (let at = 0; at < all.length; ) {
      const length = all.readUInt32BE(at + 4);
      out.push([all[at], all.subarray(at + 8, at + 8 + length).toString()]);
      at += 8 + length;
    }
    return out;
  }
}

describe('running a command for the thin client', () => {
  let daemon: FakeDaemon;
  beforeEach(async () => {
    daemon = await FakeDaemon.start();
  });
  afterEach(async () => {
    await daemon.close();
  });

  const run = (argv: string[], gone = new AbortController().signal) => {
    const frames = new Frames();
    const done = runForThinClient(argv, { THIN: 'x' }, frames, () => new Client(parseHost(daemon.host), 'test', gone), gone);
    return { frames, done };
  };

  it('refuses only what needs the caller process: the daemon and the prune prompt, wherever the global flags are', () => {
    expect(runsLocally(['daemon'])).toBe(true);
    expect(runsLocally(['-H', 'unix:///x.sock', 'daemon', '--root', '/tmp/x'])).toBe(true);
    expect(runsLocally(['--host=unix:///x.sock', 'network', 'prune', '-f'])).toBe(true);
    expect(runsLocally(['network', 'ls'])).toBe(false);
    expect(runsLocally(['-H', 'daemon', 'ps'])).toBe(false);
    expect(runsLocally(['network'])).toBe(false);
    expect(runsLocally([])).toBe(false);
    expect(runsLocally(['run', '--name', 'x', 'daemon'])).toBe(false);
  });

  it('sends stdout, then the exit status', async () => {
    daemon.reply('GET', '/networks', 200, [{ Id: 'b'.repeat(64), Name: 'bridge', Driver: 'bridge', Scope: 'local' }]);
    const { frames, done } = run(['network', 'ls']);
    expect(await done).toBe(0);
    expect(frames.decode()).toEqual([
      [FRAME_STDOUT, 'NETWORK ID     NAME      DRIVER    SCOPE\nbbbbbbbbbbbb   bridge    bridge    local\n'],
      [FRAME_EXIT, '0'],
    ]);
  });

  it("sends the daemon's error and a usage error on stderr with their statuses (1, 125)", async () => {
    daemon.fail('GET', '/networks/nope', 404, 'network nope not found');
    const notFound = run(['network', 'inspect', 'nope']);
    expect(await notFound.done).toBe(1);
    expect(notFound.frames.decode()).toEqual([
      [FRAME_STDOUT, '[]\n'],
      [FRAME_STDERR, 'Error response from daemon: network nope not found\n'],
      [FRAME_EXIT, '1'],
    ]);
    const usage = run(['network', 'create']);
    expect(await usage.done).toBe(125);
    const decoded = usage.frames.decode();
    expect(decoded.at(-1)).toEqual([FRAME_EXIT, '125']);
    expect(decoded.filter(([s]) => s === FRAME_STDERR).map(([, t]) => t).join('')).toContain("missing required argument 'network'");
  });

  it('ends a stream when the client leaves, and writes nothing after', async () => {
    daemon.on('GET', '/events', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write(`${JSON.stringify({ Type: 'network', Action: 'create', Actor: { ID: 'n', Attributes: { name: 'a' } }, time: 1, timeNano: 1e9 })}\n`);
    });
    const gone = new AbortController();
    const { frames, done } = run(['events', '--format', '{{.Action}}'], gone.signal);
    for (let i = 0; i < 100 && frames.chunks.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(frames.decode()).toEqual([[FRAME_STDOUT, 'create\n']]);
    gone.abort();
    await done;
    expect(frames.decode()).toEqual([[FRAME_STDOUT, 'create\n']]);
  });

  it('frames as docker multiplexes: the stream, three zero bytes, the length big-endian', () => {
    expect([...frame(FRAME_STDERR, Buffer.from('hi'))]).toEqual([2, 0, 0, 0, 0, 0, 0, 2, 104, 105]);
  });
});
