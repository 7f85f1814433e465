import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { claimSocketPath, releaseSocketPath } from '../../src/daemon/socket.js';
import { execIn, startMain } from '../../src/sandboxes/processes.js';

let dir: string;
const servers: Server[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'bpfnet-socket-'));
});
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  rmSync(dir, { recursive: true, force: true });
});

function listen(path: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer((c) => c.destroy());
    s.once('error', reject);
    s.listen(path, () => resolve(s));
    servers.push(s);
  });
}

describe('the daemon socket path', () => {
  it('refuses to remove a regular file or a directory at the socket path', async () => {
    const file = join(dir, 'file.sock');
    writeFileSync(file, 'precious');
    await expect(claimSocketPath(file)).rejects.toThrow(`refusing to use --socket ${file}: it exists and is a regular file, not a socket`);
    expect(existsSync(file)).toBe(true);
    const sub = join(dir, 'dir.sock');
    mkdirSync(sub);
    await expect(claimSocketPath(sub)).rejects.toThrow(/is a directory, not a socket/);
    expect(existsSync(sub)).toBe(true);
    releaseSocketPath(file);
    expect(existsSync(file)).toBe(true);
  });

  it('refuses a socket a live daemon answers on, and removes a dead one', async () => {
    const live = join(dir, 'live.sock');
    await listen(live);
    await expect(claimSocketPath(live)).rejects.toThrow(`another daemon is already listening on ${live}`);
    expect(existsSync(live)).toBe(true);

    const dead = join(dir, 'dead.sock');
    // A killed daemon leaves its socket file behind: a child listens, then is SIGKILLed.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(dead)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((r) => child.stdout!.once('data', r));
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    expect(existsSync(dead)).toBe(true);
    await claimSocketPath(dead);
    expect(existsSync(dead)).toBe(false);
    await claimSocketPath(join(dir, 'absent.sock'));
  });
});

describe('sandbox processes', () => {
  it('a process that cannot be spawned is an error to the caller, not an unheard event that ends the daemon', async () => {
    const path = process.env.PATH;
    process.env.PATH = join(dir, 'empty');
    try {
      expect(() => startMain({ host: true }, ['true'], join(dir, 'sb'))).toThrow(/could not start true in the sandbox: sh could not be spawned/);
      const child = execIn({ host: true }, ['no-such-command-bpfnet']);
      await new Promise((r) => setTimeout(r, 100));
      expect(child.pid).toBeUndefined();
    } finally {
      process.env.PATH = path;
    }
  });
});
