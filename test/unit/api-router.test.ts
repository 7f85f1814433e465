import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Router, sendJson } from '../../src/api/router.js';
import { networkConnectSchema } from '../../src/api/schemas.js';
import { checkBody } from '../../src/api/validate.js';

let dir: string;
let server: Server;
let socket: string;

/** Sends raw bytes (any path, any body) and returns the status and the parsed JSON body. */
function raw(head: string | Buffer, body: Buffer | string = ''): Promise<{ status: number; json: any }> {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect(socket);
    s.on('data', (d) => chunks.push(d));
    s.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString();
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0);
      const payload = text.slice(text.indexOf('\r\n\r\n') + 4);
      resolve({ status, json: payload ? JSON.parse(payload) : undefined });
    });
    s.write(Buffer.concat([Buffer.isBuffer(head) ? head : Buffer.from(head, 'latin1'), Buffer.from(`\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${b.length}\r\n\r\n`), b]));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bpfnet-router-'));
  socket = join(dir, 'api.sock');
  const router = new Router('test')
    .on('GET', '/things/{id}', (req, res) => sendJson(res, 200, { id: req.params.id }))
    .on('POST', '/things/{id}/connect', async (req, res) => sendJson(res, 200, checkBody(networkConnectSchema, await req.body())));
  server = createServer((req, res) => void router.handle(req, res));
  await new Promise<void>((r) => server.listen(socket, r));
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('the API router at the boundary', () => {
  it('answers 400 for percent-escapes that are not UTF-8, instead of throwing out of the handler', async () => {
    for (const bad of ['%', '%zz', '%ff', '%c0%af', '%ed%a0%80'])
      expect(await raw(`GET /things/${bad} HTTP/1.1`)).toEqual({ status: 400, json: { message: 'invalid path: id is not valid percent-encoded UTF-8' } });
    expect(await raw('GET /things/a%20b HTTP/1.1')).toEqual({ status: 200, json: { id: 'a b' } });
    expect(await raw('GET //things/x HTTP/1.1')).toEqual({ status: 404, json: { message: 'page not found' } });
  });

  it('refuses bodies that are too large, too deep, not UTF-8 or not JSON, naming why', async () => {
    const post = 'POST /things/x/connect HTTP/1.1';
    expect(await raw(post, `{"Container":"${'a'.repeat(2 * 1024 * 1024)}"}`)).toEqual({ status: 400, json: { message: 'request body too large: more than 1048576 bytes' } });
    expect(await raw(post, '['.repeat(100_000))).toEqual({ status: 400, json: { message: 'invalid JSON: nested deeper than 32 levels' } });
    expect(await raw(post, Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))).toEqual({ status: 400, json: { message: 'invalid JSON: the body is not valid UTF-8' } });
    expect((await raw(post, '{"Container":')).json.message).toMatch(/^invalid JSON: /);
    expect(await raw(post, '{"Container":"c","EndpointConfig":{"Aliases":[1,null]}}')).toEqual({ status: 400, json: { message: 'invalid EndpointConfig.Aliases[0]: expected a string of at most 255 characters, got number' } });
    expect(await raw(post, '{"Container":"c","EndpointConfig":{"Aliases":["a"]}}')).toEqual({ status: 200, json: { Container: 'c', EndpointConfig: { Aliases: ['a'] } } });
  });

  it('refuses API versions outside the supported range', async () => {
    expect((await raw('GET /v1.23/things/x HTTP/1.1')).status).toBe(400);
    expect((await raw('GET /v9999999999.0/things/x HTTP/1.1')).json.message).toMatch(/is too new/);
    expect((await raw('GET /v1.41/things/x HTTP/1.1')).status).toBe(200);
  });
});
