/**
 * Malformed API: thousands of generated hostile requests against a live daemon in a lab. Every
 * malformed one must be answered 4xx with {"message"}, none 5xx; the daemon's state must be the
 * same afterwards; a normal workload must then succeed. Also: a database corrupted by hand
 * between two daemon runs must not stop the daemon from starting.
 *
 * Quick by default (~1,000 requests); BPFNET_RELIABILITY_FULL=1 sends 12,000. BPFNET_RELIABILITY_SEED
 * replays a run (the seed is printed).
 */
import Database from 'better-sqlite3';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabDaemon } from '../../src/lab/daemon.js';
import { Lab } from '../../src/lab/lab.js';
import { seededRandom } from '../../src/util/seeded-random.js';

const FULL = process.env.BPFNET_RELIABILITY_FULL === '1';
const COUNT = FULL ? 12_000 : 1_000;
const SEED = Number(process.env.BPFNET_RELIABILITY_SEED ?? Date.now() % 1_000_000);

// ---------- a raw HTTP/1.1 client: any bytes in the path, any body, any header ----------

interface Raw {
  status: number;
  body: string;
  json: any;
  ms: number;
}

function rawRequest(socket: string, method: string, path: string | Buffer, opts: { body?: string | Buffer; contentType?: string | null; headers?: string[] } = {}): Promise<Raw> {
  const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
  const head = [
    `${method} `,
    path,
    ' HTTP/1.1\r\nHost: bpfnet\r\nConnection: close\r\n',
    ...(body !== undefined ? [`Content-Length: ${body.length}\r\n`] : []),
    ...(body !== undefined && opts.contentType !== null ? [`Content-Type: ${opts.contentType ?? 'application/json'}\r\n`] : []),
    ...(opts.headers ?? []).map((h) => `${h}\r\n`),
    '\r\n',
  ];
  const bytes = Buffer.concat([...head.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p, 'latin1'))), body ?? Buffer.alloc(0)]);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect(socket);
    s.setTimeout(30_000, () => s.destroy(new Error(`no answer within 30 s to ${method} ${String(path).slice(0, 80)}`)));
    s.on('data', (d) => chunks.push(d));
    s.on('error', (err: NodeJS.ErrnoException) => {
      // The daemon may answer and close before reading a huge body: the answer is what counts.
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET') return; // 'close' follows and decides
      reject(err);
    });
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (!m) return reject(new Error(`no HTTP status for ${method} ${String(path).slice(0, 80)}: ${JSON.stringify(text.slice(0, 200))}`));
      const split = text.indexOf('\r\n\r\n');
      const headers = text.slice(0, split).toLowerCase();
      let payload = text.slice(split + 4);
      if (headers.includes('transfer-encoding: chunked')) {
        let out = '';
        for (let rest = payload; ; ) {
          const nl = rest.indexOf('\r\n');
          const n = parseInt(rest.slice(0, nl), 16);
          if (!n) break;
          out += rest.slice(nl + 2, nl + 2 + n);
          rest = rest.slice(nl + 2 + n + 2);
        }
        payload = out;
      }
      let json: unknown;
      try {
        json = payload ? JSON.parse(payload) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ status: Number(m[1]), body: payload, json, ms: performance.now() - t0 });
    });
    // No half-close: the server would end the exchange on our FIN; it closes after answering (Connection: close).
    s.write(bytes);
  });
}

const call = (d: LabDaemon, method: string, path: string, body?: unknown) =>
  rawRequest(d.socket, method, path, body === undefined ? {} : { body: JSON.stringify(body) });

// ---------- the generator ----------


interface Case {
  kind: string;
  method: string;
  path: string | Buffer;
  body?: string | Buffer;
  contentType?: string | null;
  /** Hostile but valid (e.g. a backtracking-evil filter): must answer 2xx, quickly. */
  valid?: boolean;
}

interface World {
  netId: string;
  netName: string;
  sbId: string;
  sbName: string;
}

type FieldKind = 'string' | 'bool' | 'int' | 'strings' | 'map' | 'object' | 'objects';

/** Each body route: a valid base and its fields with their kinds (path within the body). */
function bodyRoutes(w: World, rnd: () => number): Array<{ method: string; path: () => string; base: () => any; fields: Array<[string[], FieldKind, boolean /* required */]> }> {
  const anyNet = () => (rnd() < 0.5 ? w.netId : rnd() < 0.5 ? w.netName : 'no-such-network');
  const anySb = () => (rnd() < 0.5 ? w.sbName : rnd() < 0.5 ? w.sbId : 'no-such-sandbox');
  return [
    {
      method: 'POST',
      path: () => '/networks/create',
      base: () => ({ Name: `fuzz-${Math.floor(rnd() * 1e6)}`, Driver: 'bridge', IPAM: { Config: [{ Subnet: '10.77.0.0/24', Gateway: '10.77.0.1', AuxiliaryAddresses: { a: '10.77.0.5' } }], Options: {} }, Options: {}, Labels: { a: 'b' }, Internal: false }),
      fields: [
        [['Name'], 'string', true],
        [['Driver'], 'string', false],
        [['IPAM'], 'object', false],
        [['IPAM', 'Config'], 'objects', false],
        [['IPAM', 'Config', '0', 'Subnet'], 'string', false],
        [['IPAM', 'Config', '0', 'Gateway'], 'string', false],
        [['IPAM', 'Config', '0', 'AuxiliaryAddresses'], 'map', false],
        [['IPAM', 'Options'], 'map', false],
        [['Options'], 'map', false],
        [['Labels'], 'map', false],
        [['Internal'], 'bool', false],
        [['EnableIPv6'], 'bool', false],
        [['Attachable'], 'bool', false],
        [['ConfigFrom'], 'object', false],
      ],
    },
    {
      method: 'POST',
      path: () => `/networks/${anyNet()}/connect`,
      base: () => ({ Container: anySb(), EndpointConfig: { IPAMConfig: { IPv4Address: '10.66.0.77' }, Aliases: ['fuzz'] } }),
      fields: [
        [['Container'], 'string', true],
        [['EndpointConfig'], 'object', false],
        [['EndpointConfig', 'Aliases'], 'strings', false],
        [['EndpointConfig', 'IPAMConfig'], 'object', false],
        [['EndpointConfig', 'IPAMConfig', 'IPv4Address'], 'string', false],
        [['EndpointConfig', 'Links'], 'strings', false],
        [['EndpointConfig', 'DriverOpts'], 'map', false],
        [['EndpointConfig', 'GwPriority'], 'int', false],
      ],
    },
    {
      method: 'POST',
      path: () => `/networks/${anyNet()}/disconnect`,
      base: () => ({ Container: anySb(), Force: false }),
      fields: [
        [['Container'], 'string', true],
        [['Force'], 'bool', false],
      ],
    },
    {
      method: 'POST',
      path: () => '/sandboxes/create',
      base: () => ({ Name: `fuzz-${Math.floor(rnd() * 1e6)}`, Network: w.netName, Publish: ['8080:80'], Hostname: 'h', ExtraHosts: ['db:10.0.0.5'], Dns: ['10.0.0.53'], DnsSearch: ['x'], Aliases: ['a'], Cmd: ['sleep', '1'], Start: false }),
      fields: [
        [['Name'], 'string', true],
        [['Network'], 'string', false],
        [['IPv4Address'], 'string', false],
        [['Aliases'], 'strings', false],
        [['Publish'], 'strings', false],
        [['Hostname'], 'string', false],
        [['ExtraHosts'], 'strings', false],
        [['Dns'], 'strings', false],
        [['DnsSearch'], 'strings', false],
        [['Cmd'], 'strings', false],
        [['Start'], 'bool', false],
      ],
    },
    {
      method: 'POST',
      path: () => `/sandboxes/${anySb()}/exec`,
      base: () => ({ Cmd: ['true'], Env: ['A=b'] }),
      fields: [
        [['Cmd'], 'strings', true],
        [['Env'], 'strings', false],
      ],
    },
    {
      // The thin client's call (src/api/routes/cli.ts): a read-only command line.
      method: 'POST',
      path: () => '/bpfnet/cli',
      base: () => ({ Args: ['network', 'ls'], Env: ['A=b'] }),
      fields: [
        [['Args'], 'strings', true],
        [['Env'], 'strings', false],
      ],
    },
  ];
}

/** A value that is never acceptable for a field of this kind (null is acceptable for optional ones: Go reads it as absent). */
function wrongValue(kind: FieldKind, rnd: () => number): unknown {
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const huge = 'x'.repeat(70_000);
  switch (kind) {
    case 'string':
      return pick([12, -1, 1.5, true, false, [], ['a'], {}, { a: 'b' }, 1e308, huge]);
    case 'bool':
      return pick([1, 0, 'true', 'false', '', [], {}, [true]]);
    case 'int':
      return pick(['1', 1.5, true, [], {}, 1e12, -1e12]);
    case 'strings':
      return pick(['a', 1, true, {}, [1, null], [null], ['a', 2], [[]], [{}], Array(5000).fill('a'), [huge], ['a\u0000b']]);
    case 'map':
      return pick(['a', 1, true, [], [['a', 'b']], { a: 1 }, { a: null }, { a: ['b'] }, { a: { b: 'c' } }, Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, 'v']))]);
    case 'object':
      return pick(['a', 1, true, [], [{}]]);
    case 'objects':
      return pick(['a', 1, true, {}, [1], ['a'], [[]], [null], Array(50).fill({ Subnet: '10.1.0.0/24' })]);
  }
}

function setPath(obj: any, path: string[], value: unknown): void {
  let o = obj;
  for (const k of path.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = /^\d+$/.test(k) ? [] : {};
    o = o[k];
  }
  if (value === undefined) delete o[path[path.length - 1]];
  else o[path[path.length - 1]] = value;
}

function generate(n: number, seed: number, w: World): Case[] {
  const rnd = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const routes = bodyRoutes(w, rnd);
  const version = () => (rnd() < 0.5 ? '' : pick(['/v1.24', '/v1.41', '/v1.50']));
  const cases: Case[] = [];
  const gens: Array<[string, number, () => Case]> = [
    [
      'wrong-type',
      30,
      () => {
        const r = pick(routes);
        const body = r.base();
        const [path, kind] = pick(r.fields);
        setPath(body, path, wrongValue(kind, rnd));
        return { kind: 'wrong-type', method: r.method, path: version() + r.path(), body: JSON.stringify(body) };
      },
    ],
    [
      'missing-field',
      8,
      () => {
        const r = pick(routes);
        const body = r.base();
        const required = r.fields.filter((f) => f[2]);
        const [path] = pick(required);
        setPath(body, path, rnd() < 0.5 ? undefined : null);
        return { kind: 'missing-field', method: r.method, path: version() + r.path(), body: JSON.stringify(body) };
      },
    ],
    [
      'not-an-object',
      4,
      () => {
        const r = pick(routes);
        return { kind: 'not-an-object', method: r.method, path: r.path(), body: pick(['[]', '1', '"s"', 'true', 'null', '[{"Name":"x"}]']) };
      },
    ],
    [
      'bad-value',
      10,
      () =>
        pick<Case>([
          { kind: 'bad-value', method: 'POST', path: '/networks/create', body: JSON.stringify({ Name: 'bad name!' }) },
          { kind: 'bad-value', method: 'POST', path: '/networks/create', body: JSON.stringify({ Name: 'bridge' }) },
          { kind: 'bad-value', method: 'POST', path: '/networks/create', body: JSON.stringify({ Name: w.netName }) },
          { kind: 'bad-value', method: 'POST', path: '/networks/create', body: JSON.stringify({ Name: 'fz', IPAM: { Config: [{ Subnet: pick(['12', '300.1.1.1/8', '10.0.0.0/33', 'fd00::/129', '10.1.2.3/8', '', 'x']) }] } }) },
          { kind: 'bad-value', method: 'POST', path: '/networks/create', body: JSON.stringify({ Name: 'fz', IPAM: { Config: [{ Subnet: '10.78.0.0/24', Gateway: '10.79.0.1' }] } }) },
          { kind: 'bad-value', method: 'POST', path: '/networks/create', body: JSON.stringify({ Name: 'fz', Driver: pick(['weave', 'ipvlan', 'host', 'null', 'bogus']) }) },
          { kind: 'bad-value', method: 'POST', path: '/networks/create', body: JSON.stringify({ Name: 'fz', Options: { 'com.docker.network.bridge.enable_icc': 'maybe' } }) },
          { kind: 'bad-value', method: 'POST', path: '/networks/create', body: JSON.stringify({ Name: 'fz', Options: { 'com.docker.network.driver.mtu': '9999999' } }) },
          { kind: 'bad-value', method: 'POST', path: '/networks/create', body: JSON.stringify({ Name: 'fz', EnableIPv6: true, IPAM: { Config: [{ Subnet: 'fd00:1::/64' }, { Subnet: 'fd00:1::/56' }] } }) },
          { kind: 'bad-value', method: 'POST', path: `/networks/${w.netName}/connect`, body: JSON.stringify({ Container: w.sbName }) },
          { kind: 'bad-value', method: 'POST', path: `/networks/${w.netName}/connect`, body: JSON.stringify({ Container: w.sbName, EndpointConfig: { Aliases: ['bad alias!'] } }) },
          { kind: 'bad-value', method: 'POST', path: `/networks/bridge/connect`, body: JSON.stringify({ Container: w.sbName, EndpointConfig: { IPAMConfig: { IPv4Address: 'x' } } }) },
          // Not here: disconnecting what is not connected answers 500, as moby does (reference/engine-api-networks.md, behaviour suite).
          { kind: 'bad-value', method: 'POST', path: '/sandboxes/create', body: JSON.stringify({ Name: 'fz', Publish: [pick(['abc', '70000:80', '80:0', '1.2.3:80:80', '80/sctp', '[::1]80:80', '1-5:1-3', '::'])] }) },
          { kind: 'bad-value', method: 'POST', path: '/sandboxes/create', body: JSON.stringify({ Name: 'fz', Network: w.netName, IPv4Address: pick(['x', '10.66.0.1', '1.2.3.4', '10.66.0.256']) }) },
          { kind: 'bad-value', method: 'POST', path: '/sandboxes/create', body: JSON.stringify({ Name: 'fz', ExtraHosts: [pick(['nocolon', ':1.2.3.4', 'a:b', 'bad name:1.2.3.4'])] }) },
          { kind: 'bad-value', method: 'POST', path: '/sandboxes/create', body: JSON.stringify({ Name: 'fz', Dns: ['not-an-ip'] }) },
          { kind: 'bad-value', method: 'POST', path: '/sandboxes/create', body: JSON.stringify({ Name: 'fz', DnsSearch: [pick(['a b', 'x\nnameserver 10.9.9.9', '-x', 'a..b'])] }) },
          { kind: 'bad-value', method: 'POST', path: '/sandboxes/create', body: JSON.stringify({ Name: 'fz', Hostname: '-bad-' }) },
          { kind: 'bad-value', method: 'POST', path: '/sandboxes/create', body: JSON.stringify({ Name: w.sbName }) },
          { kind: 'bad-value', method: 'POST', path: '/sandboxes/create', body: JSON.stringify({ Name: 'fz', Network: 'no-such-network' }) },
          { kind: 'bad-value', method: 'POST', path: `/sandboxes/${w.sbName}/exec`, body: JSON.stringify({ Cmd: [] }) },
          { kind: 'bad-value', method: 'POST', path: `/sandboxes/${w.sbName}/rename?name=${pick(['', 'bad%20name', w.sbName, 'x'.repeat(300)])}` },
          { kind: 'bad-value', method: 'POST', path: `/sandboxes/${w.sbName}/rename` },
          { kind: 'bad-value', method: 'DELETE', path: `/networks/${pick(['bridge', 'host', 'none', w.netName])}` },
          { kind: 'bad-value', method: 'DELETE', path: `/sandboxes/${w.sbName}?force=0` },
        ]),
    ],
    [
      'not-found',
      8,
      () => {
        // Never a bare hex prefix: it could name a real network or sandbox.
        const ref = pick(['nope', 'z'.repeat(64), 'zz0', 'x'.repeat(200), '..', '%2e%2e', '%2Fnetworks', 'a%20b']);
        return pick<Case>([
          { kind: 'not-found', method: 'GET', path: `/networks/${ref}` },
          { kind: 'not-found', method: 'DELETE', path: `/networks/${ref}` },
          { kind: 'not-found', method: 'GET', path: `/sandboxes/${ref}` },
          { kind: 'not-found', method: 'DELETE', path: `/sandboxes/${ref}?force=1` },
          { kind: 'not-found', method: 'POST', path: `/sandboxes/${ref}/start` },
          { kind: 'not-found', method: 'POST', path: `/sandboxes/${ref}/rename?name=fz` },
          { kind: 'not-found', method: 'GET', path: `/sandboxes/${ref}/stats` },
          { kind: 'not-found', method: 'GET', path: `/containers/${ref}/json` },
          { kind: 'not-found', method: 'POST', path: `/networks/${ref}/connect`, body: JSON.stringify({ Container: w.sbName }) },
          { kind: 'not-found', method: 'GET', path: pick(['/', '/nope', '/networks/a/b/c', '/v1.50', '/v1/networks', '/vx.y/networks', '/info2', '//networks']) },
        ]);
      },
    ],
    [
      'bad-method',
      3,
      () => ({ kind: 'bad-method', method: pick(['PUT', 'PATCH', 'DELETE', 'POST']), path: pick(['/networks', '/_ping', '/version', '/sandboxes']) }),
    ],
    [
      'bad-json',
      8,
      () => {
        const r = pick(routes);
        const good = JSON.stringify(r.base());
        const body = pick<string | Buffer>([
          good.slice(0, Math.floor(rnd() * good.length)),
          `${good}}`,
          `${good} x`,
          good.replace(/"/g, "'"),
          '{"Name": NaN}',
          '{"Name": undefined}',
          '{,}',
          '{"a":1,}',
          Buffer.concat([Buffer.from('{"Name":"'), Buffer.from([0xff, 0xfe, 0xc0]), Buffer.from('"}')]),
          '\u0000',
        ]);
        return { kind: 'bad-json', method: r.method, path: r.path(), body };
      },
    ],
    [
      'content-type',
      3,
      () => {
        const r = pick(routes);
        return { kind: 'content-type', method: r.method, path: r.path(), body: JSON.stringify(r.base()), contentType: pick(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', null]) };
      },
    ],
    [
      'deep-or-huge',
      2,
      () => {
        const r = pick(routes);
        const k = Math.floor(rnd() * 4);
        const body =
          k === 0
            ? '['.repeat(200_000) + ']'.repeat(200_000)
            : k === 1
              ? JSON.stringify({ ...r.base(), X: JSON.parse('[' .repeat(40) + ']'.repeat(40)) })
              : k === 2
                ? `{"Name":"${'a'.repeat(2 * 1024 * 1024)}"}`
                : // 20,000 keys and none of the route's required fields.
                  JSON.stringify(Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, 'v'])));
        return { kind: 'deep-or-huge', method: r.method, path: r.path(), body };
      },
    ],
    [
      'bad-path',
      8,
      () => {
        const seg = pick<string | Buffer>(['%', '%zz', '%ff', '%c0%af', '%ed%a0%80', '%E0%A4%A', '%00', Buffer.from([0xff, 0xfe]), Buffer.from('\u00e9', 'utf8'), '%25%', 'x'.repeat(20_000)]);
        const prefix = pick(['/networks/', '/sandboxes/', '/containers/', `/networks/${w.netName}/`]);
        const suffix = pick(['', '/connect', '/json', '/exec', '/start']);
        const method = suffix === '' ? pick(['GET', 'DELETE']) : 'POST';
        const path = Buffer.concat([Buffer.from(prefix), Buffer.isBuffer(seg) ? seg : Buffer.from(seg), Buffer.from(suffix)]);
        return { kind: 'bad-path', method, path, body: method === 'POST' ? JSON.stringify({ Container: w.sbName, Cmd: ['true'] }) : undefined };
      },
    ],
    [
      'bad-version',
      5,
      () => ({ kind: 'bad-version', method: pick(['GET', 'POST', 'DELETE']), path: `${pick(['/v1.23', '/v0.1', '/v1.51', '/v2.0', '/v9999999.0', '/v1.9999999999999999999'])}${pick(['/networks', '/_ping', `/networks/${w.netName}`, '/networks/create', `/sandboxes/${w.sbName}`])}`, body: '{}' }),
    ],
    [
      'bad-filter',
      10,
      () => {
        const f = pick([
          'not json',
          '[]',
          '"name"',
          '1',
          '{"bogus":{"a":true}}',
          '{"name":[1]}',
          '{"name":{"a":"yes"}}',
          '{"name":{"a":1}}',
          '{"name":"a"}',
          '{"name":null}',
          '{"dangling":{"maybe":true}}',
          '{"type":{"everything":true}}',
          JSON.stringify({ name: Array(100).fill('a') }),
          JSON.stringify({ id: ['a'.repeat(2000)] }),
          '{"name":{"a":true}',
        ]);
        const route = pick([
          ['GET', '/networks'],
          ['POST', '/networks/prune'],
        ]);
        const pf = pick([
          '{"until":{"soon":true}}',
          '{"until":["1h","yesterday"]}',
          '{"until":["' + '1'.repeat(100) + '"]}',
          '{"label":[1]}',
          '{"driver":{"bridge":true}}',
          '{"name":{"x":true}}',
        ]);
        return { kind: 'bad-filter', method: route[0], path: `${route[1]}?filters=${encodeURIComponent(route[0] === 'POST' && rnd() < 0.5 ? pf : f)}` };
      },
    ],
    [
      'hostile-valid',
      6,
      () => ({
        kind: 'hostile-valid',
        valid: true,
        method: 'GET',
        path: `${pick(['/networks', '/v1.24/networks'])}?filters=${encodeURIComponent(
          JSON.stringify(
            pick([
              { id: { '([0-9a-f]+)+x': true } },
              { name: { '(a*)*(a|aa)*b': true, '(.*){20}z': true } },
              { name: { [`(${'a?'.repeat(40)})${'a'.repeat(40)}`]: true } },
              { id: ['((((((((((x*)*)*)*)*)*)*)*)*)*)y'] },
              { name: { '(?=x)': true, '(a)\\1': true } },
              { label: { 'a=b': true }, driver: { bridge: true } },
            ]),
          ),
        )}`,
      }),
    ],
  ];
  const total = gens.reduce((s, g) => s + g[1], 0);
  for (let i = 0; i < n; i++) {
    let x = rnd() * total;
    const g = gens.find((gen) => (x -= gen[1]) < 0) ?? gens[0];
    cases.push(g[2]());
  }
  return cases;
}

// ---------- the daemon's state, as the API shows it ----------

async function dump(d: LabDaemon): Promise<unknown> {
  const nets = await call(d, 'GET', '/networks');
  const sbs = await call(d, 'GET', '/sandboxes');
  expect(nets.status).toBe(200);
  expect(sbs.status).toBe(200);
  const networks = [];
  for (const n of nets.json as Array<{ Id: string }>) networks.push((await call(d, 'GET', `/networks/${n.Id}`)).json);
  const sandboxes = [];
  for (const s of sbs.json as Array<{ Id: string }>) sandboxes.push((await call(d, 'GET', `/sandboxes/${s.Id}`)).json);
  // "Up N seconds" moves with the clock; everything else must not move.
  const list = (sbs.json as Array<Record<string, unknown>>).map(({ Status: _status, ...rest }) => rest);
  return { networks, list, sandboxes };
}

describe('malformed API requests against a live daemon', () => {
  let lab: Lab;
  let d: LabDaemon;
  let world: World;

  beforeAll(async () => {
    lab = await Lab.create();
    try {
      d = await LabDaemon.start(lab, { datapath: 'ebpf' });
      const net = await call(d, 'POST', '/networks/create', { Name: 'fz-net', IPAM: { Config: [{ Subnet: '10.66.0.0/24' }] } });
      expect(net.status).toBe(201);
      const sb = await call(d, 'POST', '/sandboxes/create', { Name: 'fz-sb', Network: 'fz-net', Publish: ['18080:80', '18081-18090:81-90/udp'], Aliases: ['fzalias'], Cmd: ['sleep', '1000000'] });
      expect(sb.status, sb.body).toBe(201);
      const unused = await call(d, 'POST', '/networks/create', { Name: 'fz-unused', Labels: { keep: 'yes' } });
      expect(unused.status).toBe(201);
      world = { netId: net.json.Id, netName: 'fz-net', sbId: sb.json.Id, sbName: 'fz-sb' };
    } catch (err) {
      await d?.stop();
      await lab.destroy();
      throw err;
    }
  }, 120_000);

  afterAll(async () => {
    await d?.stop();
    await lab?.destroy();
  }, 120_000);

  it(`answers ${COUNT.toLocaleString('en-US')} generated hostile requests with 4xx and a message, changes nothing, and then serves a normal workload`, async () => {
    console.log(`[malformed-api] seed ${SEED} (replay: BPFNET_RELIABILITY_SEED=${SEED}), ${COUNT} requests${FULL ? ' (full)' : ' (quick; BPFNET_RELIABILITY_FULL=1 for 12,000)'}`);
    const before = await dump(d);
    const pid = d.pid;
    const cases = generate(COUNT, SEED, world);
    const counts = new Map<string, { sent: number; statuses: Map<number, number> }>();
    const failures: string[] = [];
    let slowest = 0;
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++];
        const r = await rawRequest(d.socket, c.method, c.path, { body: c.body, contentType: c.contentType });
        const k = counts.get(c.kind) ?? { sent: 0, statuses: new Map() };
        k.sent++;
        k.statuses.set(r.status, (k.statuses.get(r.status) ?? 0) + 1);
        counts.set(c.kind, k);
        slowest = Math.max(slowest, r.ms);
        const ok = c.valid ? r.status === 200 && r.ms < 2000 : r.status >= 400 && r.status < 500 && typeof r.json?.message === 'string' && r.json.message.length > 0;
        if (!ok && failures.length < 20)
          failures.push(`${c.kind}: ${c.method} ${String(c.path).slice(0, 120)} ${c.body ? String(c.body).slice(0, 160) : ''} -> ${r.status} ${r.body.slice(0, 200)} (${r.ms.toFixed(0)} ms)`);
      }
    };
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 8 }, worker));
    const seconds = (Date.now() - t0) / 1000;
    for (const [kind, k] of [...counts].sort()) console.log(`[malformed-api] ${kind.padEnd(14)} ${String(k.sent).padStart(6)} sent: ${[...k.statuses].sort().map(([s, n]) => `${s}x${n}`).join(' ')}`);
    console.log(`[malformed-api] ${cases.length} requests in ${seconds.toFixed(1)} s, slowest answer ${slowest.toFixed(0)} ms, ${failures.length} wrong`);
    expect(failures, `seed ${SEED}`).toEqual([]);
    expect(d.pid).toBe(pid);
    expect(await dump(d)).toEqual(before);

    // A normal workload afterwards, including the exact body that used to brick the daemon.
    const brick = await call(d, 'POST', `/networks/${world.netName}/connect`, { Container: 'fz-sb', EndpointConfig: { Aliases: [1, null] } });
    expect(brick.status).toBe(400);
    expect(brick.json.message).toBe('invalid EndpointConfig.Aliases[0]: expected a string of at most 255 characters, got number');
    expect((await call(d, 'POST', '/networks/create', { Name: 'wl-net', IPAM: { Config: [{ Subnet: '10.67.0.0/24' }] } })).status).toBe(201);
    expect((await call(d, 'POST', '/sandboxes/create', { Name: 'wl-a', Network: 'wl-net' })).status).toBe(201);
    expect((await call(d, 'POST', '/sandboxes/create', { Name: 'wl-b', Network: 'wl-net', Aliases: ['wlb'] })).status).toBe(201);
    expect((await call(d, 'POST', '/networks/wl-net/connect', { Container: 'fz-sb', EndpointConfig: { Aliases: ['fzagain'] } })).status).toBe(200);
    const ping = await d.cli(['exec', 'wl-a', 'ping', '-c1', '-W2', 'wlb']);
    expect(ping.code, ping.stderr + ping.stdout).toBe(0);
    const ping2 = await d.cli(['exec', 'wl-a', 'ping', '-c1', '-W2', 'fzagain']);
    expect(ping2.code, ping2.stderr + ping2.stdout).toBe(0);
    expect((await call(d, 'POST', '/networks/wl-net/disconnect', { Container: 'fz-sb' })).status).toBe(200);
    expect((await call(d, 'DELETE', '/sandboxes/wl-a?force=1')).status).toBe(204);
    expect((await call(d, 'DELETE', '/sandboxes/wl-b?force=1')).status).toBe(204);
    expect((await call(d, 'DELETE', '/networks/wl-net')).status).toBe(204);
    expect(await dump(d)).toEqual(before);
  }, 600_000);

  it('starts from a database corrupted by hand: unusable rows are quarantined and logged, the rest is served', async () => {
    const extra = await call(d, 'POST', '/sandboxes/create', { Name: 'q-sb', Network: 'fz-net', Aliases: ['qalias'] });
    expect(extra.status).toBe(201);
    const badNet = await call(d, 'POST', '/networks/create', { Name: 'q-net', IPAM: { Config: [{ Subnet: '10.68.0.0/24' }] } });
    expect(badNet.status).toBe(201);
    await d.stop();

    const db = new Database(join(d.root, 'bpfnet.db'));
    try {
      // What the old daemon stored for {"Aliases":[1,null]}: it stopped DNS, network create and every restart.
      const r1 = db.prepare(`UPDATE endpoints SET doc = json_set(doc, '$.aliases', json('[1,null]')) WHERE sandbox_id = ?`).run(extra.json.Id);
      expect(r1.changes).toBe(1);
      expect(db.prepare('UPDATE networks SET doc = ? WHERE id = ?').run('{"id": "truncated', badNet.json.Id).changes).toBe(1);
      expect(db.prepare(`UPDATE sandbox_ports SET doc = '[["tcp","",0,80]]' WHERE sandbox_id = ?`).run(world.sbId).changes).toBe(1);
    } finally {
      db.close();
    }

    await d.start();
    expect(d.log).toMatch(new RegExp(`quarantined networks row ${badNet.json.Id}: not JSON`));
    expect(d.log).toMatch(/quarantined endpoints row [0-9a-f]+: invalid aliases\[0\]: expected a string of at most 255 characters, got number/);
    expect(d.log).toMatch(new RegExp(`quarantined sandbox_ports row ${world.sbId}: invalid \\[0\\]`));

    const nets = await call(d, 'GET', '/networks');
    expect((nets.json as Array<{ Name: string }>).map((n) => n.Name).sort()).toEqual(['bridge', 'fz-net', 'fz-unused', 'host', 'none']);
    const q = await call(d, 'GET', '/sandboxes/q-sb');
    expect(q.status).toBe(200);
    expect(Object.keys(q.json.NetworkSettings.Networks)).toEqual([]);
    expect((await call(d, 'GET', '/sandboxes/fz-sb')).json.NetworkSettings.Ports).toEqual({});

    // Serving: a new network, name resolution on the surviving network, and a clean restart.
    expect((await call(d, 'POST', '/networks/create', { Name: 'q-net2', IPAM: { Config: [{ Subnet: '10.68.0.0/24' }] } })).status).toBe(201);
    expect((await call(d, 'POST', '/sandboxes/create', { Name: 'q-peer', Network: 'fz-net' })).status).toBe(201);
    const ping = await d.cli(['exec', 'q-peer', 'ping', '-c1', '-W2', 'fzalias']);
    expect(ping.code, ping.stderr + ping.stdout + d.log.slice(-3000)).toBe(0);
    const logBefore = d.log.length;
    await d.restart();
    expect(d.log.slice(logBefore)).not.toMatch(/quarantined/);
    for (const s of ['q-peer', 'q-sb']) expect((await call(d, 'DELETE', `/sandboxes/${s}?force=1`)).status).toBe(204);
    expect((await call(d, 'DELETE', '/networks/q-net2')).status).toBe(204);
  }, 300_000);
});
