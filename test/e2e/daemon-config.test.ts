// The daemon reads its config file (flags win over it), refuses a bad one at start naming the
// key, logs JSON lines when asked to, and on SIGHUP applies what can change live (log level,
// DNS upstreams, proven by a query answered only by the new upstream; connection-table timeouts
// in the running datapath) and names what cannot.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { projectRoot } from '../../src/paths.js';
import { sandboxNs } from '../support/traffic.js';
import { LabDaemon } from '../../src/lab/daemon.js';
import { readTimeouts } from '../../src/daemon/live-timeouts.js';

const DNS_SERVER = join(projectRoot, 'test', 'support', 'dns-server.mjs');
const DNS_QUERY = join(projectRoot, 'test', 'support', 'dns-query.mjs');

async function waitLog(d: LabDaemon, from: number, pattern: RegExp): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const m = pattern.exec(d.log.slice(from));
    if (m) return m[0];
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`daemon log never matched ${pattern}:\n${d.log.slice(from)}`);
}

describe('the daemon config file and SIGHUP', () => {
  let lab: Lab;
  let d: LabDaemon;
  let file: string;

  beforeAll(async () => {
    lab = await Lab.create();
    file = join(lab.tmpDir(), 'daemon.json');
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('refuses to start on an unknown key or a bad value, naming it', async () => {
    writeFileSync(file, JSON.stringify({ 'log-level': 'info', 'ebpf-timeout': 'udp=5' }));
    await expect(LabDaemon.start(lab, { datapath: 'ebpf', name: 'bad1', extraArgs: ['--config-file', file] })).rejects.toThrow(`${file}: unknown key "ebpf-timeout"`);
    writeFileSync(file, JSON.stringify({ bip: '300.1.1.1/16' }));
    await expect(LabDaemon.start(lab, { datapath: 'ebpf', name: 'bad2', extraArgs: ['--config-file', file] })).rejects.toThrow(/--bip must be .*not "300\.1\.1\.1\/16".*config file/);
  });

  it('reads the file, with flags over it, and logs JSON lines', async () => {
    writeFileSync(file, JSON.stringify({ 'log-format': 'json', 'log-level': 'debug', dns: ['10.9.9.9'], 'ebpf-timeouts': 'udp=44' }));
    d = await LabDaemon.start(lab, { datapath: 'ebpf', extraArgs: ['--config-file', file, '--log-level', 'info'] });
    const lines = d.log.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThan(2);
    for (const l of lines) expect(Object.keys(l).slice(0, 3)).toEqual(['time', 'level', 'msg']);
    // --log-level info won over the file's debug: no debug line.
    expect(lines.filter((l) => l.level === 'debug')).toEqual([]);
    expect(lines.map((l) => l.msg).join('\n')).toMatch(/upstreams 10\.9\.9\.9$/m);
    expect(readTimeouts(`/sys/fs/bpf/${d.instance}`).udp).toBe(44);
  });

  it('applies log level, DNS upstreams and timeouts on SIGHUP, and names what needs a restart', async () => {
    // An upstream in the external namespace that knows one name; the file's 10.9.9.9 does not answer.
    const upstream = lab.spawn(lab.external, process.execPath, [DNS_SERVER, UPLINK.externalAddress, '53', JSON.stringify({ 'upstream.test': ['203.0.113.9'] })]);
    let heard = '';
    upstream.stdout?.on('data', (x: Buffer) => (heard += x.toString()));
    for (let i = 0; i < 200 && !heard.includes('ready'); i++) await new Promise((r) => setTimeout(r, 25));
    await d.bpfnet('network', 'create', '--subnet', '10.48.0.0/24', 'cfgnet');
    await d.bpfnet('run', '-d', '--name', 'cq', '--network', 'cfgnet');
    const ask = async () => JSON.parse(await lab.exec(await sandboxNs(d, 'cq'), process.execPath, [DNS_QUERY, '10.48.0.1', 'upstream.test', 'A', 'udp', '6000']));
    expect((await ask()).rcode).toBe('SERVFAIL');
    writeFileSync(file, JSON.stringify({ 'log-format': 'json', 'log-level': 'warn', dns: [UPLINK.externalAddress], 'ebpf-timeouts': 'udp=12,tcp-established=600', bip: '172.30.0.1/16' }));
    const from = d.log.length;
    process.kill(d.pid!, 'SIGHUP');
    const line = JSON.parse(await waitLog(d, from, /^\{.*SIGHUP.*\}$/m));
    expect(line.level).toBe('info');
    // The typed --log-level info still wins over the file, so the level does not change.
    expect(line.applied).toBe(`dns=${UPLINK.externalAddress} ebpf-timeouts=udp=12,tcp-established=600`);
    expect(await ask()).toMatchObject({ rcode: 'NOERROR', answers: ['203.0.113.9'] });
    expect(line.not_applied).toBe('bip');
    expect(line.msg).toContain('cannot change while running (restart to apply): bip');
    const t = readTimeouts(`/sys/fs/bpf/${d.instance}`);
    expect({ udp: t.udp, est: t['tcp-established'], syn: t['tcp-syn'] }).toEqual({ udp: 12, est: 600, syn: 60 });
  });

  it('keeps running on a broken file at SIGHUP, saying so', async () => {
    writeFileSync(file, '{"dns": "10.9.9.7"');
    const from = d.log.length;
    process.kill(d.pid!, 'SIGHUP');
    const line = JSON.parse(await waitLog(d, from, /^\{.*SIGHUP.*\}$/m));
    expect(line.level).toBe('error');
    expect(line.msg).toContain(`configuration refused, keeping the running one: ${file}: not valid JSON`);
    expect(await d.bpfnet('network', 'ls', '-q')).toMatch(/^[0-9a-f]{12}$/m);
  });

  it('changes the log level live when no flag pins it', async () => {
    await d.stop();
    writeFileSync(file, JSON.stringify({ 'log-format': 'json', 'log-level': 'warn' }));
    d = await LabDaemon.start(lab, { datapath: 'ebpf', extraArgs: ['--config-file', file] });
    // At warn, the start-up's info lines are not written.
    expect(d.log).not.toMatch(/"level":"info"/);
    writeFileSync(file, JSON.stringify({ 'log-format': 'json', 'log-level': 'info' }));
    const from = d.log.length;
    process.kill(d.pid!, 'SIGHUP');
    // The reload's own info line shows only because the level moved to info first.
    const line = JSON.parse(await waitLog(d, from, /^\{.*SIGHUP.*\}$/m));
    expect(line).toMatchObject({ level: 'info', applied: 'log-level=info', not_applied: '' });
  });
});
