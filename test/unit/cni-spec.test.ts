// The CNI protocol of bpfnet-cni without a daemon: environment checks, configuration parsing
// with the spec's error codes, and the ADD result per spec version, alone and after prevResult.
import { describe, expect, it } from 'vitest';
import { addResult, CniError, parseCniArgs, parseConf, parseJson, readEnv, type Attachment } from '../../src/cni/spec.js';

const att: Attachment = { hostIfname: 'bn-1234', ifname: 'eth0', mac: '02:42:0a:4d:00:02', netns: '/run/netns/x', ipv4: '10.77.0.2/24', gateway: '10.77.0.1', ipv6: '', gateway6: '' };
const conf = (extra: Record<string, unknown> = {}) => parseConf({ cniVersion: '1.0.0', name: 'n', type: 'bpfnet-cni', ...extra }, '/run/bpfnet.sock');
const codeOf = (fn: () => unknown): number | undefined => {
  try {
    fn();
  } catch (err) {
    return err instanceof CniError ? err.code : -1;
  }
  return undefined;
};

describe('bpfnet-cni protocol', () => {
  it('checks the environment a command needs (code 4)', () => {
    expect(codeOf(() => readEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_IFNAME: 'eth0' }))).toBe(4);
    expect(codeOf(() => readEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c', CNI_IFNAME: 'eth0' }))).toBeUndefined();
    expect(codeOf(() => readEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: '-c', CNI_IFNAME: 'eth0', CNI_NETNS: '/x' }))).toBe(4);
    expect(codeOf(() => readEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_IFNAME: 'lo', CNI_NETNS: '/x' }))).toBe(4);
    expect(codeOf(() => readEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_IFNAME: 'eth0', CNI_NETNS: 'x' }))).toBe(4);
    expect(codeOf(() => readEnv({ CNI_COMMAND: 'add' }))).toBe(4);
    expect(codeOf(() => readEnv({ CNI_COMMAND: 'VERSION' }))).toBeUndefined();
  });

  it('parses the configuration with the spec codes for what is wrong', () => {
    expect(codeOf(() => parseJson('[1]'))).toBe(6);
    expect(codeOf(() => parseJson('{'))).toBe(6);
    expect(codeOf(() => conf({ cniVersion: '0.2.0' }))).toBe(1);
    expect(codeOf(() => conf({ cniVersion: undefined }))).toBe(7);
    expect(codeOf(() => conf({ name: '' }))).toBe(7);
    expect(codeOf(() => conf({ ipam: { type: 'host-local' } }))).toBe(2);
    expect(codeOf(() => conf({ socket: 'relative.sock' }))).toBe(7);
    expect(codeOf(() => conf({ runtimeConfig: { portMappings: [{ hostPort: 0, containerPort: 80 }] } }))).toBe(7);
    expect(codeOf(() => conf({ runtimeConfig: { mac: 'zz' } }))).toBe(7);
    expect(codeOf(() => conf({ 'cni.dev/valid-attachments': [{ containerID: 1 }] }))).toBe(7);
    const c = conf({ network: 'bpf', runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80 }], ips: ['10.77.0.9/24'] } });
    expect(c).toMatchObject({ network: 'bpf', socket: '/run/bpfnet.sock', portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '' }], ips: ['10.77.0.9/24'] });
    expect(conf().network).toBe('n');
  });

  it('takes "subnet6" as one subnet or a list, with "gateway6" by position', () => {
    expect(conf()).toMatchObject({ subnet6: [], gateway6: [] });
    expect(conf({ subnet6: 'fd00:1::/64', gateway6: 'fd00:1::fe' })).toMatchObject({ subnet6: ['fd00:1::/64'], gateway6: ['fd00:1::fe'] });
    expect(conf({ subnet6: ['fd00:1::/64', 'fd00:2::/64'], gateway6: ['fd00:1::1'] })).toMatchObject({ subnet6: ['fd00:1::/64', 'fd00:2::/64'], gateway6: ['fd00:1::1'] });
    expect(codeOf(() => conf({ subnet6: [] }))).toBe(7);
    expect(codeOf(() => conf({ subnet6: [6] }))).toBe(7);
    expect(codeOf(() => conf({ subnet6: { a: 1 } }))).toBe(7);
    expect(codeOf(() => conf({ subnet6: Array.from({ length: 17 }, (_, i) => `fd00:${i}::/64`) }))).toBe(7);
    expect(codeOf(() => conf({ subnet6: 'fd00:1::/64', gateway6: ['fd00:1::1', 'fd00:2::1'] }))).toBe(7);
  });

  it('reads IP and MAC from CNI_ARGS as podman 4 passes them, refusing unknown keys unless IgnoreUnknown', () => {
    expect(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAME=client;MAC=02:00:00:aa:bb:cc;IP=10.79.0.77')).toEqual({ ips: ['10.79.0.77'], mac: '02:00:00:aa:bb:cc' });
    expect(parseCniArgs('')).toEqual({ ips: [] });
    expect(codeOf(() => parseCniArgs('FOO=1'))).toBe(4);
    expect(parseCniArgs('IgnoreUnknown=true;FOO=1')).toEqual({ ips: [] });
    expect(codeOf(() => parseCniArgs('MAC=zz'))).toBe(4);
    expect(codeOf(() => parseCniArgs('novalue'))).toBe(4);
  });

  it('writes the ADD result in the configuration version: ips carry "version" before 1.0.0 only', () => {
    const old = addResult(conf({ cniVersion: '0.3.1' }), att);
    expect(old).toEqual({
      cniVersion: '0.3.1',
      interfaces: [{ name: 'bn-1234' }, { name: 'eth0', mac: att.mac, sandbox: '/run/netns/x' }],
      ips: [{ version: '4', address: '10.77.0.2/24', gateway: '10.77.0.1', interface: 1 }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.77.0.1' }],
    });
    const v1 = addResult(conf({ dns: { nameservers: ['10.77.0.1'] } }), att);
    expect(v1.ips).toEqual([{ address: '10.77.0.2/24', gateway: '10.77.0.1', interface: 1 }]);
    expect(v1.dns).toEqual({ nameservers: ['10.77.0.1'] });
  });

  it('appends to a prevResult, numbering its interfaces after the previous ones, in the configuration version', () => {
    const prevResult = {
      cniVersion: '0.4.0',
      interfaces: [{ name: 'a0' }, { name: 'net0', sandbox: '/run/netns/x' }],
      ips: [{ version: '4', address: '192.168.0.5/24', interface: 1 }],
      routes: [{ dst: '192.168.0.0/16' }],
    };
    const r = addResult(conf({ prevResult }), att);
    expect(r.interfaces?.map((i) => i.name)).toEqual(['a0', 'net0', 'bn-1234', 'eth0']);
    expect(r.ips).toEqual([
      { address: '192.168.0.5/24', interface: 1 },
      { address: '10.77.0.2/24', gateway: '10.77.0.1', interface: 3 },
    ]);
    expect(r.routes).toEqual([{ dst: '192.168.0.0/16' }, { dst: '0.0.0.0/0', gw: '10.77.0.1' }]);
  });

  it('has IPv6 ready: a v6 address becomes its own ip entry and default route', () => {
    const r = addResult(conf(), { ...att, ipv6: 'fd00::2/64', gateway6: 'fd00::1' });
    expect(r.ips?.[1]).toEqual({ address: 'fd00::2/64', gateway: 'fd00::1', interface: 1 });
    expect(r.routes).toContainEqual({ dst: '::/0', gw: 'fd00::1' });
  });
});
