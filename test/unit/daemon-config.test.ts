// daemon.json: every flag as a key, flags over the file, unknown keys and bad values refused
// naming the key and the file; and the structured log lines the daemon writes.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_KEYS, mergeFlags, parseConfigFile, readConfigFile } from '../../src/daemon/config-file.js';
import { createLogger, formatLine } from '../../src/daemon/log.js';
import { parseListenAddress, resolveBridge6, resolvePools } from '../../src/daemon/options.js';
import { formatPrefix } from '../../src/ipam/ip.js';
import { DEFAULT_POOLS, ulaPoolFor } from '../../src/ipam/pools.js';
import { buildProgram } from '../../src/cli/program.js';

const F = '/etc/bpfnet/daemon.json';

describe('daemon.json', () => {
  it('has a key for every `bpfnet daemon` flag, and no key without a flag', () => {
    const io = { stdout: { write: () => true }, stderr: { write: () => true } } as never;
    const daemon = buildProgram(io).commands.find((c) => c.name() === 'daemon')!;
    const flags = daemon.options.map((o) => o.long!.slice(2)).filter((f) => f !== 'config-file');
    expect(Object.keys(CONFIG_KEYS).sort()).toEqual(flags.sort());
  });

  it('reads every kind of value into the daemon flags', () => {
    const flags = parseConfigFile(
      JSON.stringify({
        root: '/var/lib/x',
        datapath: 'iptables',
        'default-address-pool': ['base=10.10.0.0/16,size=24'],
        'log-level': 'debug',
        'ebpf-ct-max': 65536,
        'ebpf-gc-interval': '5',
        dns: ['10.0.0.53'],
        'metrics-addr': '127.0.0.1:9490',
        'metrics-per-endpoint': true,
      }),
      F,
    );
    expect(flags).toEqual({
      root: '/var/lib/x',
      datapath: 'iptables',
      defaultAddressPool: ['base=10.10.0.0/16,size=24'],
      logLevel: 'debug',
      ebpfCtMax: 65536,
      ebpfGcInterval: '5',
      dns: ['10.0.0.53'],
      metricsAddr: '127.0.0.1:9490',
      metricsPerEndpoint: true,
    });
  });

  it.each([
    ['{"log_level":"debug"}', `${F}: unknown key "log_level"`],
    ['{"colour":"red"}', `${F}: unknown key "colour"`],
    ['{"datapath":"xdp"}', `${F}: "datapath" must be one of ebpf, iptables, not "xdp"`],
    ['{"log-level":"loud"}', `${F}: "log-level" must be one of debug, info, warn, error, not "loud"`],
    ['{"dns":"10.0.0.53"}', `${F}: "dns" must be an array of strings, not "10.0.0.53"`],
    ['{"ebpf-ct-max":-1}', `${F}: "ebpf-ct-max" must be a positive number, not -1`],
    ['{"metrics-per-endpoint":"yes"}', `${F}: "metrics-per-endpoint" must be true or false, not "yes"`],
    ['{"root":""}', `${F}: "root" must be a non-empty string, not ""`],
    ['[1]', `${F}: expected a JSON object of daemon flags`],
    ['{"root": ', `${F}: not valid JSON`],
  ])('refuses %s naming the key', (text, message) => {
    expect(() => parseConfigFile(text, F)).toThrow(message);
  });

  it('lets a typed flag win over the file, and the file over the defaults', () => {
    const file = parseConfigFile('{"log-level":"debug","dns":["10.0.0.53"],"instance":"a"}', F);
    expect(mergeFlags(file, { logLevel: 'warn', dns: [] })).toEqual({ logLevel: 'warn', dns: ['10.0.0.53'], instance: 'a' });
    expect(mergeFlags(undefined, { root: '/r' })).toEqual({ root: '/r' });
  });

  it('may miss at the default path, but not at a path given with --config-file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpfnet-cfg-'));
    try {
      expect(() => readConfigFile(join(dir, 'none.json'))).toThrow(`cannot read config file ${join(dir, 'none.json')}`);
      writeFileSync(join(dir, 'd.json'), '{"socket":"/tmp/x.sock"}');
      expect(readConfigFile(join(dir, 'd.json'))).toEqual({ path: join(dir, 'd.json'), flags: { socket: '/tmp/x.sock' } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('splits --default-address-pool by family, defaulting IPv6 to the host ULA /48, and resolves --ipv6/--fixed-cidr-v6', () => {
    expect(resolvePools(undefined, 'h')).toEqual({ pools: DEFAULT_POOLS, pools6: [ulaPoolFor('h')] });
    const mixed = resolvePools(['base=10.10.0.0/16,size=24', 'base=fd00:aa::/48,size=64'], 'h');
    expect([mixed.pools.length, formatPrefix(mixed.pools6[0].base), mixed.pools6[0].size]).toEqual([1, 'fd00:aa::/48', 64]);
    expect(resolveBridge6({}, mixed.pools6)).toBeUndefined();
    expect(resolveBridge6({ ipv6: true, fixedCidrV6: 'fd00:17::/64' }, mixed.pools6)).toEqual({ subnet: 'fd00:17::/64', gateway: 'fd00:17::1' });
    expect(resolveBridge6({ ipv6: true }, mixed.pools6)).toEqual({ subnet: 'fd00:aa::/64', gateway: 'fd00:aa::1' });
    expect(() => resolveBridge6({ fixedCidrV6: 'fd00:17::/64' }, mixed.pools6)).toThrow('--fixed-cidr-v6 needs --ipv6');
    expect(() => resolveBridge6({ ipv6: true, fixedCidrV6: 'fd00:17::1/64' }, mixed.pools6)).toThrow('--fixed-cidr-v6 fd00:17::1/64: it should be fd00:17::/64');
    expect(() => resolveBridge6({ ipv6: true, fixedCidrV6: '10.0.0.0/8' }, mixed.pools6)).toThrow(/must be an IPv6 subnet/);
    expect(parseConfigFile('{"ipv6": true, "fixed-cidr-v6": "fd00:17::/64"}', F)).toEqual({ ipv6: true, fixedCidrV6: 'fd00:17::/64' });
  });

  it('checks --metrics-addr as HOST:PORT', () => {
    expect(parseListenAddress('metrics-addr', '127.0.0.1:9490')).toEqual({ host: '127.0.0.1', port: 9490 });
    expect(parseListenAddress('metrics-addr', '[::1]:9490')).toEqual({ host: '::1', port: 9490 });
    expect(() => parseListenAddress('metrics-addr', '9490')).toThrow('--metrics-addr must be HOST:PORT');
    expect(() => parseListenAddress('metrics-addr', 'h:70000')).toThrow('--metrics-addr must be HOST:PORT');
  });
});

describe('the daemon log', () => {
  const t = new Date('2026-12-01T23:00:00.000Z');
  it('writes logfmt: one event per line, values quoted when they must be', () => {
    expect(formatLine('logfmt', t, 'info', 'listening on /run/bpfnet.sock', { datapath: 'ebpf', n: 3 })).toBe(
      'time=2026-12-01T23:00:00.000Z level=info msg="listening on /run/bpfnet.sock" datapath=ebpf n=3\n',
    );
    expect(formatLine('logfmt', t, 'error', 'a "b"\nc')).toBe('time=2026-12-01T23:00:00.000Z level=error msg="a \\"b\\"\\nc"\n');
  });

  it('writes JSON lines, and never lets a field replace time, level or msg', () => {
    const line = formatLine('json', t, 'warn', 'x', { level: 'debug', k: true });
    expect(line.endsWith('\n') && !line.slice(0, -1).includes('\n')).toBe(true);
    expect(JSON.parse(line)).toEqual({ time: '2026-12-01T23:00:00.000Z', level: 'warn', msg: 'x', k: true });
  });

  it('filters by level, and the level can change while running', () => {
    const lines: string[] = [];
    const log = createLogger('warn', 'json', (l) => lines.push(l));
    log.info('hidden');
    log.warn('shown');
    log.setLevel('debug');
    log.debug('now shown');
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(['shown', 'now shown']);
    expect(log.level).toBe('debug');
  });
});
