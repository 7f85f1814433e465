// The HTTP-over-unix-socket client against a fake daemon: requests as sent, errors as the
// docker client reports them, NDJSON streams, and an absent daemon.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiError, Client, DaemonUnreachableError, parseHost, resolveHost } from '../../src/cli/client.js';
import { UsageError } from '../../src/cli/errors.js';
import { FakeDaemon } from './cli-fake-daemon.js';

let daemon: FakeDaemon;
let client: Client;

beforeEach(async () => {
  daemon = await FakeDaemon.start();
  client = new Client(parseHost(daemon.host), 'bpfnet-cli/test');
});
afterEach(async () => {
  await daemon.close();
});

describe('requests', () => {
  it('sends JSON bodies with their type and length, and query parameters', async () => {
    daemon.reply('POST', '/networks/create', 201, { Id: 'abc', Warning: '' });
    const reply = await client.json('POST', '/networks/create', { body: { Name: 'n1' }, query: { x: 'a b', y: undefined } });
    expect(reply).toEqual({ Id: 'abc', Warning: '' });
    const [req] = daemon.requests;
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['content-length']).toBe(String('{"Name":"n1"}'.length));
    expect(req.headers['user-agent']).toBe('bpfnet-cli/test');
    expect(req.body).toBe('{"Name":"n1"}');
    expect([...req.query.entries()]).toEqual([['x', 'a b']]);
  });

  it('sends a body-less POST with Content-Length 0 and no Content-Type', async () => {
    daemon.reply('POST', '/networks/prune', 200, { NetworksDeleted: [] });
    await client.json('POST', '/networks/prune');
    expect(daemon.requests[0].headers['content-length']).toBe('0');
    expect(daemon.requests[0].headers['content-type']).toBeUndefined();
  });

  it("keeps the daemon's bytes for text()", async () => {
    daemon.reply('GET', '/networks/n1', 200, '{"b":1,"a":2}\n');
    expect(await client.text('GET', '/networks/n1')).toBe('{"b":1,"a":2}\n');
  });

  it('reports a 2xx without a body as EOF, as docker does', async () => {
    daemon.reply('POST', '/networks/create', 201);
    await expect(client.json('POST', '/networks/create', { body: {} })).rejects.toThrow('EOF');
  });
});

describe('errors', () => {
  it("takes the daemon's message and status from a JSON error", async () => {
    daemon.fail('GET', '/networks/x', 404, 'network x not found');
    const err = await client.json('GET', '/networks/x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(404);
    expect((err as ApiError).message).toBe('network x not found');
    expect((err as ApiError).display).toBe('Error response from daemon: network x not found');
  });

  it('uses a text body, trimmed', async () => {
    daemon.on('GET', '/x', (_req, res) => void res.writeHead(500, { 'Content-Type': 'text/plain' }).end('  boom \n'));
    await expect(client.send('GET', '/x')).rejects.toMatchObject({ display: 'Error response from daemon: boom' });
  });

  it('names the status when JSON carries no message', async () => {
    daemon.reply('GET', '/x', 500, { other: 1 });
    await expect(client.send('GET', '/x')).rejects.toMatchObject({
      display: 'Error response from daemon: API returned a 500 (Internal Server Error) but provided no error-message',
    });
  });

  it('names the route when the error has no body', async () => {
    daemon.reply('GET', '/x', 500);
    await expect(client.send('GET', '/x')).rejects.toMatchObject({
      display: `request returned 500 Internal Server Error for API route and version ${daemon.host}/x, check if the server supports the requested API version`,
    });
  });

  it('says the daemon is not running when the socket is missing', async () => {
    const gone = new Client(parseHost('unix:///nonexistent/bpfnet.sock'));
    const err = await gone.send('GET', '/version').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DaemonUnreachableError);
    expect((err as Error).message).toBe('Cannot connect to the bpfnet daemon at unix:///nonexistent/bpfnet.sock. Is the daemon running?');
  });
});

describe('NDJSON streams', () => {
  it('delivers each line in order, however the chunks are cut', async () => {
    daemon.on('POST', '/sandboxes/s1/exec', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
      res.write('{"Stream":"stdout","Da');
      setTimeout(() => {
        res.write('ta":"aGk="}\n\n{"ExitCode"');
        setTimeout(() => res.end(':0}\n'), 5);
      }, 5);
    });
    const values: unknown[] = [];
    await client.stream('POST', '/sandboxes/s1/exec', { body: { Cmd: ['x'] } }, (v) => void values.push(v));
    expect(values).toEqual([{ Stream: 'stdout', Data: 'aGk=' }, { ExitCode: 0 }]);
  });

  it('reports an error status before the stream as ApiError', async () => {
    daemon.fail('POST', '/sandboxes/nope/exec', 404, 'no such sandbox: nope');
    await expect(client.stream('POST', '/sandboxes/nope/exec', {}, () => undefined)).rejects.toMatchObject({ status: 404 });
  });

  it('ends quietly when the caller aborts', async () => {
    daemon.on('GET', '/events/drops', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
      res.write('{"Reason":"policy"}\n');
    });
    const controller = new AbortController();
    const values: unknown[] = [];
    await client.stream('GET', '/events/drops', { signal: controller.signal }, (v) => {
      values.push(v);
      controller.abort();
    });
    expect(values).toEqual([{ Reason: 'policy' }]);
  });
});

describe('hosts', () => {
  it('takes unix:// URLs and absolute paths', () => {
    expect(parseHost('unix:///run/x.sock')).toEqual({ socketPath: '/run/x.sock', url: 'unix:///run/x.sock' });
    expect(parseHost('/run/x.sock')).toEqual({ socketPath: '/run/x.sock', url: 'unix:///run/x.sock' });
    expect(() => parseHost('tcp://1.2.3.4:2375')).toThrow(UsageError);
  });

  it('prefers -H, then BPFNET_HOST, then /run/bpfnet.sock', () => {
    expect(resolveHost('unix:///a.sock', { BPFNET_HOST: 'unix:///b.sock' }).socketPath).toBe('/a.sock');
    expect(resolveHost(undefined, { BPFNET_HOST: 'unix:///b.sock' }).socketPath).toBe('/b.sock');
    expect(resolveHost(undefined, {}).socketPath).toBe('/run/bpfnet.sock');
  });
});
