// The real docker CLI against bpfnet's socket: `docker network ...` must run with Docker's
// flags and print what it prints against Docker. Runs once per docker CLI installed — the one
// on PATH (`command -v docker`) and Debian's docker.io 20.10 at /usr/bin/docker, which the
// bootstrap installs — so API version negotiation is proven with an old and a new client.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { accessSync, constants, realpathSync } from 'node:fs';
import { Lab } from '../../src/lab/lab.js';
import { LabDaemon } from '../../src/lab/daemon.js';
import { runRaw } from '../../src/system/exec.js';
import { findOnPath } from '../support/requirements.js';

const executable = (f: string) => {
  try {
    accessSync(f, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};
const candidates = [findOnPath('docker'), '/usr/bin/docker', '/usr/local/bin/docker'].filter((f): f is string => f !== undefined && executable(f));
const CLIS = [...new Map(candidates.map((f) => [realpathSync(f), f])).values()];

it('finds a docker CLI to test (apt package docker.io; scripts/bootstrap.sh installs it)', () => {
  expect(CLIS.length, 'no docker CLI: neither `command -v docker` nor /usr/bin/docker').toBeGreaterThan(0);
});

describe.each(CLIS)('the docker CLI %s against bpfnet', (DOCKER) => {
  let lab: Lab;
  let d: LabDaemon;
  let clientApi = '';
  const docker = async (...args: string[]) => {
    const r = await runRaw(DOCKER, args, { env: { ...process.env, DOCKER_HOST: `unix://${d.socket}`, HOME: lab.tmpDir(), DOCKER_CONFIG: lab.tmpDir() } });
    return { code: r.code, out: r.stdout, err: r.stderr };
  };

  /** What the CLI prints for a 404 on a network: 20.10 words it itself, 28 shows the daemon's message. */
  const notFound = (name: string) =>
    clientApi === '1.41' ? new RegExp(`^Error: No such network: ${name}\n$`) : new RegExp(`Error response from daemon: network ${name} not found`);

  beforeAll(async () => {
    lab = await Lab.create();
    // The default bridge with IPv6 too, as dockerd --ipv6 --fixed-cidr-v6 makes it.
    d = await LabDaemon.start(lab, { datapath: 'ebpf', extraArgs: ['--ipv6', '--fixed-cidr-v6', 'fd00:17::/64'] });
    await d.bpfnet('run', '-d', '--name', 'c1');
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('talks to the daemon (ping, version), negotiating the API version', async () => {
    const r = await docker('version', '--format', '{{.Server.APIVersion}}');
    expect(r).toMatchObject({ code: 0, out: '1.50\n' });
    // The client speaks the lower of its own version and the daemon's: 1.41 for 20.10, 1.50 for 28.
    const client = (await docker('version', '--format', '{{.Client.Version}} {{.Client.APIVersion}}')).out.trim();
    clientApi = client.split(' ')[1];
    expect(client).toMatch(/^(20\.10\.\d+\S* 1\.41|28\.\d+\.\d+\S* 1\.50)$/);
    expect((await docker('network', 'ls', '-q')).code).toBe(0);
  });

  it('creates networks, printing the id', async () => {
    const plain = await docker('network', 'create', 'alpine-net');
    expect(plain.code).toBe(0);
    expect(plain.out).toMatch(/^[0-9a-f]{64}\n$/);
    const full = await docker(
      'network', 'create', '--driver', 'bridge', '--subnet', '172.29.0.0/16', '--ip-range', '172.29.5.0/24', '--gateway', '172.29.0.1',
      '--aux-address', 'host1=172.29.1.5', '--internal', '-o', 'com.docker.network.bridge.name=br-x', '--label', 'a=b', 'alpine-net2',
    );
    expect(full.code).toBe(0);
    expect(full.out).toMatch(/^[0-9a-f]{64}\n$/);
  });

  it('lists them sorted by name with 12-character ids, and filters', async () => {
    const r = await docker('network', 'ls');
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[1])).toEqual(['alpine-net', 'alpine-net2', 'bridge', 'host', 'none']);
    for (const l of lines.slice(1)) expect(l).toMatch(/^[0-9a-f]{12}\s/);
    expect(lines.find((l) => /\snone\s/.test(l))).toMatch(/\snull\s+local$/);
    const f = await docker('network', 'ls', '--filter', 'driver=bridge', '--format', '{{.Name}}');
    expect(f.out.split('\n').filter(Boolean).sort()).toEqual(['alpine-net', 'alpine-net2', 'bridge']);
    const l = await docker('network', 'ls', '--filter', 'label=a=b', '-q');
    expect(l.out.trim()).toMatch(/^[0-9a-f]{12}$/);
  });

  it('inspects in moby key order, echoing the IPAM config as given', async () => {
    const r = await docker('network', 'inspect', 'alpine-net2');
    expect(r.code).toBe(0);
    const [net] = JSON.parse(r.out);
    expect(Object.keys(net)).toEqual([
      'Name', 'Id', 'Created', 'Scope', 'Driver', 'EnableIPv4', 'EnableIPv6', 'IPAM', 'Internal', 'Attachable', 'Ingress', 'ConfigFrom', 'ConfigOnly', 'Containers', 'Options', 'Labels',
    ]);
    expect(net.IPAM).toEqual({
      Driver: 'default',
      Options: {},
      Config: [{ Subnet: '172.29.0.0/16', IPRange: '172.29.5.0/24', Gateway: '172.29.0.1', AuxiliaryAddresses: { host1: '172.29.1.5' } }],
    });
    expect(net).toMatchObject({ Internal: true, Options: { 'com.docker.network.bridge.name': 'br-x' }, Labels: { a: 'b' } });
    expect(r.out.startsWith('[\n    {\n        "Name": "alpine-net2",')).toBe(true);
    const t = await docker('network', 'inspect', '-f', '{{.Name}} {{.Driver}} {{.Internal}}', 'alpine-net2');
    expect(t.out).toBe('alpine-net2 bridge true\n');
    const missing = await docker('network', 'inspect', 'nope');
    expect(missing).toMatchObject({ code: 1, out: '[]\n' });
    expect(missing.err).toMatch(notFound('nope'));
  });

  it('connects and disconnects a sandbox by name, with a static address and an alias', async () => {
    expect((await docker('network', 'connect', '--ip', '172.29.5.9', '--alias', 'web', 'alpine-net2', 'c1')).code).toBe(0);
    const [net] = JSON.parse((await docker('network', 'inspect', 'alpine-net2')).out);
    expect(Object.values(net.Containers)).toEqual([expect.objectContaining({ Name: 'c1', IPv4Address: '172.29.5.9/16', MacAddress: '02:42:ac:1d:05:09' })]);
    const again = await docker('network', 'connect', 'alpine-net2', 'c1');
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/Error response from daemon: c1 is already attached to network alpine-net2/);
    const ghost = await docker('network', 'connect', 'alpine-net2', 'ghost');
    expect(ghost.err).toMatch(/No such container: ghost/);
    expect((await docker('network', 'disconnect', 'alpine-net2', 'c1')).code).toBe(0);
    expect((await docker('network', 'disconnect', '-f', 'alpine-net2', 'c1')).err).toMatch(/is not connected to network alpine-net2/);
  });

  it('IPv6: create --ipv6 (given subnet, default ULA pool), inspect as moby, connect --ip6, and refuses malformed IPv6 with moby\'s words', async () => {
    // A failed expectation must not leave these networks to the prune test below.
    onTestFinished(async () => {
      for (const n of ['v6dual', 'v6multi', 'v6auto']) {
        await docker('network', 'disconnect', '-f', n, 'c1');
        await docker('network', 'rm', n);
      }
    });
    const [bridge0] = JSON.parse((await docker('network', 'inspect', 'bridge')).out);
    expect(bridge0).toMatchObject({ EnableIPv6: true, IPAM: { Config: [{ Subnet: '172.17.0.0/16', Gateway: '172.17.0.1' }, { Subnet: 'fd00:17::/64', Gateway: 'fd00:17::1' }] } });
    expect(Object.values(bridge0.Containers)).toEqual([expect.objectContaining({ Name: 'c1', IPv4Address: '172.17.0.2/16', IPv6Address: 'fd00:17::2/64' })]);
    const dual = await docker('network', 'create', '--ipv6', '--subnet', '172.30.0.0/24', '--subnet', 'fd00:db8:1::/64', '--ip-range', 'fd00:db8:1::100/120', '--aux-address', 'r6=fd00:db8:1::fe', 'v6dual');
    expect(dual).toMatchObject({ code: 0, out: expect.stringMatching(/^[0-9a-f]{64}\n$/) });
    const [net] = JSON.parse((await docker('network', 'inspect', 'v6dual')).out);
    expect(net).toMatchObject({ EnableIPv4: true, EnableIPv6: true });
    expect(net.IPAM.Config).toEqual([{ Subnet: '172.30.0.0/24' }, { Subnet: 'fd00:db8:1::/64', IPRange: 'fd00:db8:1::100/120', AuxiliaryAddresses: { r6: 'fd00:db8:1::fe' } }]);
    // The IPv6 gateway is on the bridge, without duplicate address detection (usable at once).
    const addrs = (await runRaw('ip', ['-n', lab.host.name, '-6', '-o', 'addr', 'show'])).stdout;
    expect(addrs).toMatch(/inet6 fd00:db8:1::1\/64 scope global nodad/);
    expect(addrs).toMatch(/inet6 fd00:17::1\/64 scope global nodad/);
    expect(addrs).toMatch(/inet6 fe80::1\/64 scope link nodad/);

    expect((await docker('network', 'connect', '--ip6', 'fd00:db8:1::42', 'v6dual', 'c1')).code).toBe(0);
    const [withC1] = JSON.parse((await docker('network', 'inspect', 'v6dual')).out);
    expect(Object.values(withC1.Containers)).toEqual([expect.objectContaining({ Name: 'c1', IPv4Address: '172.30.0.2/24', IPv6Address: 'fd00:db8:1::42/64', MacAddress: '02:42:ac:1e:00:02' })]);
    expect((await docker('network', 'disconnect', 'v6dual', 'c1')).code).toBe(0);

    // Several IPv6 subnets: one IPAM.Config entry each, a gateway for each on the bridge, --ip6 from the second.
    expect((await docker('network', 'create', '--ipv6', '--subnet', 'fd00:db8:a1::/64', '--subnet', 'fd00:db8:a2::/64', 'v6multi')).code).toBe(0);
    const [multi] = JSON.parse((await docker('network', 'inspect', 'v6multi')).out);
    // The CLI gathers --subnet flags in a Go map, so the two IPv6 entries arrive (and are kept) in either order.
    expect(multi.IPAM.Config[0]).toEqual({ Subnet: expect.stringMatching(/^172\.\d+\.0\.0\/16$/), Gateway: expect.stringMatching(/^172\.\d+\.0\.1$/) });
    expect(multi.IPAM.Config.slice(1).sort((a: { Subnet: string }, b: { Subnet: string }) => a.Subnet.localeCompare(b.Subnet))).toEqual([
      { Subnet: 'fd00:db8:a1::/64' },
      { Subnet: 'fd00:db8:a2::/64' },
    ]);
    const multiAddrs = (await runRaw('ip', ['-n', lab.host.name, '-6', '-o', 'addr', 'show'])).stdout;
    expect(multiAddrs).toMatch(/inet6 fd00:db8:a1::1\/64 scope global nodad/);
    expect(multiAddrs).toMatch(/inet6 fd00:db8:a2::1\/64 scope global nodad/);
    expect((await docker('network', 'connect', '--ip6', 'fd00:db8:a2::42', 'v6multi', 'c1')).code).toBe(0);
    const [multiC1] = JSON.parse((await docker('network', 'inspect', 'v6multi')).out);
    expect(Object.values(multiC1.Containers)).toEqual([expect.objectContaining({ Name: 'c1', IPv6Address: 'fd00:db8:a2::42/64' })]);
    const c1Net = JSON.parse((await docker('container', 'inspect', 'c1')).out)[0].NetworkSettings.Networks.v6multi;
    expect([c1Net.GlobalIPv6Address, c1Net.IPv6Gateway]).toEqual(['fd00:db8:a2::42', 'fd00:db8:a2::1']);
    expect((await docker('network', 'disconnect', 'v6multi', 'c1')).code).toBe(0);
    expect((await docker('network', 'rm', 'v6multi')).code).toBe(0);
    // The 20.10 CLI (API 1.41) has proven it carries the IPv6 fields; the rest is the daemon's, checked once with the 28 CLI.
    if (clientApi === '1.41') {
      expect((await docker('network', 'rm', 'v6dual')).code).toBe(0);
      return;
    }
    const taken = await docker('network', 'connect', '--ip6', 'fd00:db8:1::fe', 'v6dual', 'c1');
    expect(taken).toMatchObject({ code: 1, err: expect.stringMatching(/Address already in use: fd00:db8:1::fe on network v6dual is taken by auxiliary address r6/) });

    // Without --subnet: an IPv4 pool and a /64 of this host's ULA /48, both shown as {Subnet, Gateway}.
    expect((await docker('network', 'create', '--ipv6', 'v6auto')).code).toBe(0);
    const [auto] = JSON.parse((await docker('network', 'inspect', 'v6auto')).out);
    expect(auto.IPAM.Config).toEqual([
      { Subnet: expect.stringMatching(/^172\.\d+\.0\.0\/16$/), Gateway: expect.stringMatching(/^172\.\d+\.0\.1$/) },
      { Subnet: expect.stringMatching(/^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/64$/), Gateway: expect.stringMatching(/^fd[0-9a-f:]+::1$/) },
    ]);

    // --ipv4=false is sent as EnableIPv4 false by the 28 CLI (an IPv6-only network needs the IPv6 datapath
    // of the v6dp branch to be built; the model side is proven in test/unit/network-ipv6.test.ts).
    const noFamily = await docker('network', 'create', '--ipv4=false', 'v6none');
    expect(noFamily).toMatchObject({ code: 1, err: expect.stringMatching(/IPv4 or IPv6 must be enabled/) });

    // Malformed IPv6 is answered with moby's words.
    const badIp6 = await docker('network', 'connect', '--ip6', 'fd00::zz', 'v6dual', 'c1');
    expect(badIp6.err).toMatch(/invalid endpoint settings:\s+invalid IPv6 address: fd00::zz/);
    const badSub = await docker('network', 'create', '--ipv6', '--subnet', 'fd00:db8:9::1/64', 'v6bad');
    expect(badSub.err).toMatch(/invalid subnet fd00:db8:9::1\/64: it should be fd00:db8:9::\/64/);
    const overlap = await docker('network', 'create', '--ipv6', '--subnet', 'fd00:db8:1::/80', 'v6overlap');
    expect(overlap.err).toMatch(/Pool overlaps with other one on this address space/);

    for (const n of ['v6dual', 'v6auto']) expect((await docker('network', 'rm', n)).code).toBe(0);
  });

  it('refuses what Docker refuses, with its messages', async () => {
    const predefined = await docker('network', 'create', 'bridge');
    expect(predefined.code).toBe(1);
    expect(predefined.err).toMatch(/Error response from daemon: operation is not permitted on predefined bridge network/);
    const dup = await docker('network', 'create', 'alpine-net');
    expect(dup.err).toMatch(/network with name alpine-net already exists/);
    const cidr = await docker('network', 'create', '--subnet', '10.9.1.5/24', 'x');
    expect(cidr.err).toMatch(/invalid subnet 10\.9\.1\.5\/24: it should be 10\.9\.1\.0\/24/);
    const rmBuiltin = await docker('network', 'rm', 'host');
    expect(rmBuiltin.err).toMatch(/host is a pre-defined network and cannot be removed/);
  });

  it('removes networks: prints the name, fails for unknown ones unless -f', async () => {
    const r = await docker('network', 'rm', 'alpine-net');
    expect(r).toMatchObject({ code: 0, out: 'alpine-net\n' });
    const missing = await docker('network', 'rm', 'nope');
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(notFound('nope'));
    // `network rm -f` came with the 23.0 CLI: 20.10 refuses the flag itself, before any request.
    if (clientApi === '1.41') expect(await docker('network', 'rm', '-f', 'nope')).toMatchObject({ code: 125, err: expect.stringMatching(/unknown shorthand flag: 'f' in -f/) });
    else expect(await docker('network', 'rm', '-f', 'nope')).toMatchObject({ code: 0, out: '', err: '' });
  });

  it('prunes unused networks, honouring label filters', async () => {
    await docker('network', 'create', '--label', 'keep=no', 'p1');
    await docker('network', 'create', '--label', 'keep=yes', 'p2');
    const r = await docker('network', 'prune', '-f', '--filter', 'label=keep=no');
    expect(r).toMatchObject({ code: 0, out: 'Deleted Networks:\np1\n\n' });
    const all = await docker('network', 'prune', '-f');
    expect(all.out.split('\n').slice(1).filter(Boolean).sort()).toEqual(['alpine-net2', 'p2']);
    expect(await docker('network', 'prune', '-f')).toMatchObject({ code: 0, out: '' });
  });
});
