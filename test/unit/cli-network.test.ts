// `bpfnet network ...` against a fake daemon: the requests docker 28 sends (bodies byte for byte
// from reference/engine-api-networks.md) and the output and exit statuses it gives.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bpfnet, FakeDaemon } from './cli-fake-daemon.js';

let daemon: FakeDaemon;
beforeEach(async () => {
  daemon = await FakeDaemon.start();
});
afterEach(async () => {
  await daemon.close();
});

const ID = (c: string) => c.repeat(64);

function network(name: string, id: string, extra: Record<string, unknown> = {}) {
  return {
    Name: name,
    Id: id,
    Created: '2026-11-22T06:38:18.520000000Z',
    Scope: 'local',
    Driver: name === 'host' ? 'host' : name === 'none' ? 'null' : 'bridge',
    EnableIPv4: true,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: [] },
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: {},
    Options: {},
    Labels: {},
    ...extra,
  };
}

describe('network create', () => {
  it("sends docker's body for the full example, key for key, and prints the Id only", async () => {
    daemon.reply('POST', '/networks/create', 201, { Id: ID('a'), Warning: 'ignored' });
    const r = await bpfnet(
      [
        'network', 'create', '--driver', 'bridge', '--subnet', '172.29.0.0/16', '--ip-range', '172.29.5.0/24',
        '--gateway', '172.29.0.1', '--aux-address', 'host1=172.29.1.5', '--internal',
        '-o', 'com.docker.network.bridge.name=br-x', '--label', 'a=b', 'alpine-net',
      ],
      daemon,
    );
    expect(r).toEqual({ code: 0, stdout: `${ID('a')}\n`, stderr: '' });
    expect(daemon.requests[0].body).toBe(
      '{"Driver":"bridge","Scope":"","IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"172.29.0.0/16",' +
        '"IPRange":"172.29.5.0/24","Gateway":"172.29.0.1","AuxiliaryAddresses":{"host1":"172.29.1.5"}}]},' +
        '"Internal":true,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,' +
        '"Options":{"com.docker.network.bridge.name":"br-x"},"Labels":{"a":"b"},"Name":"alpine-net"}',
    );
  });

  it('sends empty IPAM config, options and labels for a bare create', async () => {
    daemon.reply('POST', '/networks/create', 201, { Id: ID('b'), Warning: '' });
    await bpfnet(['network', 'create', 'n1'], daemon);
    expect(daemon.requests[0].body).toBe(
      '{"Driver":"bridge","Scope":"","IPAM":{"Driver":"default","Options":{},"Config":[]},"Internal":false,' +
        '"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{},"Labels":{},"Name":"n1"}',
    );
  });

  it('sends EnableIPv6/EnableIPv4 only when asked, after Scope', async () => {
    daemon.reply('POST', '/networks/create', 201, { Id: ID('c'), Warning: '' });
    await bpfnet(['network', 'create', '--ipv6', 'n6'], daemon);
    await bpfnet(['network', 'create', '--ipv4=false', 'n4'], daemon);
    expect(daemon.requests[0].body).toMatch(/^\{"Driver":"bridge","Scope":"","EnableIPv6":true,"IPAM"/);
    expect(daemon.requests[1].body).toMatch(/^\{"Driver":"bridge","Scope":"","EnableIPv4":false,"IPAM"/);
  });

  it('maps labels, ipam options, config-from, attachable and scope as docker does', async () => {
    daemon.reply('POST', '/networks/create', 201, { Id: ID('d'), Warning: '' });
    await bpfnet(
      ['network', 'create', '--label', 'x', '--label', 'z=1', '--ipam-opt', 'foo=bar', '--config-from', 'n5', '--attachable', '--scope', 'local', '-d', 'macvlan', '-o', 'parent=eth0', 'n'],
      daemon,
    );
    const body = JSON.parse(daemon.requests[0].body);
    expect(body).toMatchObject({
      Driver: 'macvlan',
      Scope: 'local',
      IPAM: { Options: { foo: 'bar' } },
      Attachable: true,
      ConfigFrom: { Network: 'n5' },
      Options: { parent: 'eth0' },
      Labels: { x: '', z: '1' },
    });
  });

  it('pairs several subnets with their ranges and gateways (comma lists too)', async () => {
    daemon.reply('POST', '/networks/create', 201, { Id: ID('e'), Warning: '' });
    await bpfnet(['network', 'create', '--subnet', '10.1.0.0/16,10.2.0.0/16', '--gateway', '10.2.0.1', '--gateway', '10.1.0.1', 'n'], daemon);
    expect(JSON.parse(daemon.requests[0].body).IPAM.Config).toEqual([
      { Subnet: '10.1.0.0/16', Gateway: '10.1.0.1' },
      { Subnet: '10.2.0.0/16', Gateway: '10.2.0.1' },
    ]);
  });

  it.each([
    [['--ip-range', '10.0.0.0/24'], 'every ip-range or gateway must have a corresponding subnet'],
    [['--subnet', '10.0.0.0/16', '--gateway', '10.1.0.1'], 'no matching subnet for gateway 10.1.0.1'],
    [['--subnet', '10.0.0.0/16', '--gateway', 'notanip'], 'no matching subnet for gateway notanip'],
    [['--subnet', '10.0.0.0/16', '--aux-address', 'h=10.9.0.1'], 'no matching subnet for aux-address 10.9.0.1'],
    [['--subnet', '10.0.0.0/16', '--ip-range', '10.9.0.0/24'], 'no matching subnet for range 10.9.0.0/24'],
    [['--subnet', '10.0.0.0/16', '--subnet', '10.0.1.0/24'], 'multiple overlapping subnet configuration is not supported'],
    [['--subnet', 'notacidr', '--gateway', '10.0.0.1'], 'invalid subnet: invalid CIDR address: notacidr'],
    [['--subnet', '10.0.0.0/16', '--ip-range', 'bad'], 'invalid CIDR address: bad'],
    [['--subnet', '10.0.0.0/16', '--gateway', '10.0.0.1', '--gateway', '10.0.0.2'], 'every ip-range or gateway must have a corresponding subnet'],
  ])("refuses %j client-side with docker's message", async (flags, message) => {
    const r = await bpfnet(['network', 'create', ...flags, 'n'], daemon);
    expect(r).toEqual({ code: 125, stdout: '', stderr: `${message}\n` });
    expect(daemon.requests).toEqual([]);
  });

  it('passes what docker does not check through to the daemon', async () => {
    daemon.fail('POST', '/networks/create', 400, 'invalid network config:\ninvalid subnet notacidr: invalid CIDR block notation');
    const r = await bpfnet(['network', 'create', '--subnet', 'notacidr', 'bad name!'], daemon);
    expect(JSON.parse(daemon.requests[0].body)).toMatchObject({ Name: 'bad name!', IPAM: { Config: [{ Subnet: 'notacidr' }] } });
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: 'Error response from daemon: invalid network config:\ninvalid subnet notacidr: invalid CIDR block notation\n',
    });
  });

  it('refuses an empty label name as a usage error', async () => {
    const r = await bpfnet(['network', 'create', '--label', '=v', 'n'], daemon);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("invalid label '=v': empty name");
    expect(r.stderr).toContain("See 'bpfnet network create --help'.");
  });

  it('needs exactly one name', async () => {
    expect((await bpfnet(['network', 'create'], daemon)).code).toBe(125);
    expect((await bpfnet(['network', 'create', 'a', 'b'], daemon)).code).toBe(125);
    expect(daemon.requests).toEqual([]);
  });
});

describe('network ls', () => {
  const list = [
    network('net10', ID('c')),
    network('bridge', ID('7')),
    network('net2', ID('d'), { Labels: { team: 'a' }, Internal: true }),
    network('host', ID('9')),
  ];

  it('prints the table sorted by name, ids cut to 12, with no query', async () => {
    daemon.reply('GET', '/networks', 200, list);
    const r = await bpfnet(['network', 'ls'], daemon);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      'NETWORK ID     NAME      DRIVER    SCOPE\n' +
        '777777777777   bridge    bridge    local\n' +
        '999999999999   host      host      local\n' +
        'dddddddddddd   net2      bridge    local\n' +
        'cccccccccccc   net10     bridge    local\n',
    );
    expect(daemon.requests[0].path).toBe('/networks');
    expect([...daemon.requests[0].query.keys()]).toEqual([]);
  });

  it('sends filters as docker encodes them and applies --format', async () => {
    daemon.reply('GET', '/networks', 200, [list[1]]);
    const r = await bpfnet(['network', 'ls', '--filter', 'driver=bridge', '--filter', 'label=a=b', '--format', '{{.Name}}'], daemon);
    expect(r.stdout).toBe('bridge\n');
    expect(daemon.requests[0].query.get('filters')).toBe('{"driver":{"bridge":true},"label":{"a=b":true}}');
  });

  it('prints ids with -q, full with --no-trunc', async () => {
    daemon.reply('GET', '/networks', 200, list);
    expect((await bpfnet(['network', 'ls', '-q'], daemon)).stdout).toBe(`${'7'.repeat(12)}\n${'9'.repeat(12)}\n${'d'.repeat(12)}\n${'c'.repeat(12)}\n`);
    expect((await bpfnet(['network', 'ls', '-q', '--no-trunc'], daemon)).stdout.split('\n')[0]).toBe(ID('7'));
  });

  it('prints one JSON object of strings per line with --format json', async () => {
    daemon.reply('GET', '/networks', 200, [list[2]]);
    const r = await bpfnet(['network', 'ls', '--format', 'json'], daemon);
    expect(r.stdout).toBe(
      `{"CreatedAt":"2026-11-22 06:38:18.52 +0000 UTC","Driver":"bridge","ID":"${'d'.repeat(12)}","IPv4":"true","IPv6":"false","Internal":"true","Labels":"team=a","Name":"net2","Scope":"local"}\n`,
    );
  });

  it('supports docker template fields (Label, IPv4, CreatedAt)', async () => {
    daemon.reply('GET', '/networks', 200, [list[2]]);
    const r = await bpfnet(['network', 'ls', '--format', '{{.Name}} {{.Label "team"}} {{.IPv4}} {{.CreatedAt}}'], daemon);
    expect(r.stdout).toBe('net2 a true 2026-11-22 06:38:18.52 +0000 UTC\n');
  });

  it('exits 1 with the template error for an unknown field', async () => {
    daemon.reply('GET', '/networks', 200, list);
    const r = await bpfnet(['network', 'ls', '--format', '{{.Bogus}}'], daemon);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^template parsing error: .*Bogus/);
  });

  it('refuses a filter without "="', async () => {
    const r = await bpfnet(['network', 'ls', '--filter', 'driver'], daemon);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('bad format of filter (expected name=value)');
  });

  it('reports a daemon error and exits 1', async () => {
    daemon.fail('GET', '/networks', 400, "invalid filter 'bogus'");
    const r = await bpfnet(['network', 'ls', '-f', 'bogus=1'], daemon);
    expect(r).toEqual({ code: 1, stdout: '', stderr: "Error response from daemon: invalid filter 'bogus'\n" });
  });
});

describe('network inspect', () => {
  it("prints the daemon's objects in an array indented by 4, one GET per name in order", async () => {
    daemon.reply('GET', '/networks/n1', 200, network('n1', ID('1')));
    daemon.reply('GET', '/networks/n2', 200, network('n2', ID('2')));
    const r = await bpfnet(['network', 'inspect', 'n2', 'n1'], daemon);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(JSON.stringify([network('n2', ID('2')), network('n1', ID('1'))], null, 4) + '\n');
    expect(daemon.requests.map((q) => q.path)).toEqual(['/networks/n2', '/networks/n1']);
  });

  it('prints what it found, then the errors, and exits 1', async () => {
    daemon.reply('GET', '/networks/n1', 200, network('n1', ID('1')));
    daemon.fail('GET', '/networks/nope', 404, 'network nope not found');
    const r = await bpfnet(['network', 'inspect', 'nope', 'n1'], daemon);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual([network('n1', ID('1'))]);
    expect(r.stderr).toBe('Error response from daemon: network nope not found\n');
  });

  it('prints [] when nothing was found, and an empty line with -f', async () => {
    daemon.fail('GET', '/networks/nope', 404, 'network nope not found');
    expect((await bpfnet(['network', 'inspect', 'nope'], daemon)).stdout).toBe('[]\n');
    expect((await bpfnet(['network', 'inspect', '-f', '{{.Name}}', 'nope'], daemon)).stdout).toBe('\n');
  });

  it('applies -f to each object', async () => {
    daemon.reply('GET', '/networks/n1', 200, network('n1', ID('1'), { IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: '10.0.0.0/24' }] } }));
    const r = await bpfnet(['network', 'inspect', '-f', '{{.Name}} {{json .IPAM.Config}} {{.Internal}}', 'n1'], daemon);
    expect(r.stdout).toBe('n1 [{"Subnet":"10.0.0.0/24"}] false\n');
  });

  it('exits 64 for a template it cannot parse, before any request', async () => {
    const r = await bpfnet(['network', 'inspect', '-f', '{{.Name', 'n1'], daemon);
    expect(r.code).toBe(64);
    expect(daemon.requests).toEqual([]);
  });

  it('asks for verbose output with -v', async () => {
    daemon.reply('GET', '/networks/n1', 200, network('n1', ID('1')));
    await bpfnet(['network', 'inspect', '-v', 'n1'], daemon);
    expect(daemon.requests[0].query.get('verbose')).toBe('true');
  });
});

describe('network rm', () => {
  it('deletes each network by the name typed and prints it', async () => {
    daemon.reply('DELETE', /^\/networks\/n[12]$/, 204);
    const r = await bpfnet(['network', 'rm', 'n1', 'n2'], daemon);
    expect(r).toEqual({ code: 0, stdout: 'n1\nn2\n', stderr: '' });
    expect(daemon.requests.map((q) => `${q.method} ${q.path}`)).toEqual(['DELETE /networks/n1', 'DELETE /networks/n2']);
  });

  it('still removes the others when one fails, then exits 1 as docker does', async () => {
    daemon.reply('DELETE', '/networks/n2', 204);
    daemon.fail('DELETE', '/networks/bridge', 403, 'bridge is a pre-defined network and cannot be removed');
    const r = await bpfnet(['network', 'rm', 'bridge', 'n2'], daemon);
    expect(r).toEqual({
      code: 1,
      stdout: 'n2\n',
      stderr: 'Error response from daemon: bridge is a pre-defined network and cannot be removed\nexit status 1\n',
    });
  });

  it('is silent about missing networks with -f, not about other errors', async () => {
    daemon.fail('DELETE', '/networks/gone', 404, 'network gone not found');
    expect(await bpfnet(['network', 'rm', '-f', 'gone'], daemon)).toEqual({ code: 0, stdout: '', stderr: '' });
    daemon.fail('DELETE', '/networks/busy', 403, 'error while removing network: network busy has active endpoints');
    expect((await bpfnet(['network', 'rm', '-f', 'busy'], daemon)).code).toBe(1);
  });
});

describe('network connect / disconnect', () => {
  it("sends docker's full EndpointConfig", async () => {
    daemon.reply('POST', '/networks/alpine-net/connect', 200);
    const r = await bpfnet(['network', 'connect', '--ip', '172.29.5.9', '--alias', 'web', 'alpine-net', 'c1'], daemon);
    expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(daemon.requests[0].body).toBe(
      '{"Container":"c1","EndpointConfig":{"IPAMConfig":{"IPv4Address":"172.29.5.9"},"Links":null,"Aliases":["web"],' +
        '"MacAddress":"","DriverOpts":{},"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"",' +
        '"IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}',
    );
  });

  it('maps the other connect flags', async () => {
    daemon.reply('POST', '/networks/n/connect', 200);
    await bpfnet(['network', 'connect', '--ip6', 'fd00::9', '--link', 'c2:db', '--link-local-ip', '169.254.0.9', '--driver-opt', 'k=v', '--gw-priority', '10', 'n', 'c1'], daemon);
    expect(JSON.parse(daemon.requests[0].body).EndpointConfig).toMatchObject({
      IPAMConfig: { IPv6Address: 'fd00::9', LinkLocalIPs: ['169.254.0.9'] },
      Links: ['c2:db'],
      Aliases: [],
      DriverOpts: { k: 'v' },
      GwPriority: 10,
    });
  });

  it('passes a bad --ip through to the daemon, which refuses it', async () => {
    daemon.fail('POST', '/networks/n/connect', 400, 'invalid IPv4 address: notanip');
    const r = await bpfnet(['network', 'connect', '--ip', 'notanip', 'n', 'c1'], daemon);
    expect(r).toEqual({ code: 1, stdout: '', stderr: 'Error response from daemon: invalid IPv4 address: notanip\n' });
  });

  it('sends Force on disconnect', async () => {
    daemon.reply('POST', '/networks/alpine-net/disconnect', 200);
    await bpfnet(['network', 'disconnect', '-f', 'alpine-net', 'c1'], daemon);
    await bpfnet(['network', 'disconnect', 'alpine-net', 'c1'], daemon);
    expect(daemon.requests.map((q) => q.body)).toEqual(['{"Container":"c1","Force":true}', '{"Container":"c1","Force":false}']);
  });
});

describe('network prune', () => {
  const prompt =
    'WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ';

  it('prints the deleted networks with -f, with a blank line after', async () => {
    daemon.reply('POST', '/networks/prune', 200, { NetworksDeleted: ['p1', 'p2'] });
    const r = await bpfnet(['network', 'prune', '-f'], daemon);
    expect(r).toEqual({ code: 0, stdout: 'Deleted Networks:\np1\np2\n\n', stderr: '' });
    expect(daemon.requests[0].query.get('filters')).toBeNull();
  });

  it('prints nothing when nothing was deleted (null or [])', async () => {
    daemon.reply('POST', '/networks/prune', 200, { NetworksDeleted: null });
    expect((await bpfnet(['network', 'prune', '-f'], daemon)).stdout).toBe('');
  });

  it('sends --filter as docker encodes it', async () => {
    daemon.reply('POST', '/networks/prune', 200, { NetworksDeleted: [] });
    await bpfnet(['network', 'prune', '-f', '--filter', 'until=24h', '--filter', 'label=keep=no'], daemon);
    expect(daemon.requests[0].query.get('filters')).toBe('{"label":{"keep=no":true},"until":{"24h":true}}');
  });

  it('asks first; anything but y sends nothing and exits 0', async () => {
    const r = await bpfnet(['network', 'prune'], daemon, { stdin: 'n\n' });
    expect(r).toEqual({ code: 0, stdout: prompt, stderr: '' });
    expect((await bpfnet(['network', 'prune'], daemon, { stdin: '' })).code).toBe(0);
    expect(daemon.requests).toEqual([]);
  });

  it('prunes when the answer is y', async () => {
    daemon.reply('POST', '/networks/prune', 200, { NetworksDeleted: ['p1'] });
    const r = await bpfnet(['network', 'prune'], daemon, { stdin: ' Y \n' });
    expect(r.stdout).toBe(`${prompt}Deleted Networks:\np1\n\n`);
  });
});
