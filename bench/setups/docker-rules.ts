/**
 * Docker 28's own rules, not bpfnet's rendering of them: a Linux bridge "bridge1" with the
 * server and a client sandbox on it, and the iptables rule set dockerd 28 installs with
 * userland-proxy=false for that network plus its default bridge docker0 (the DOCKER-FORWARD /
 * DOCKER-CT / DOCKER-BRIDGE layout, as moby's integration/network/bridge/iptablesdoc/generated/
 * documents it), the FORWARD policy DROP dockerd sets when it turns forwarding on, and
 * route_localnet on the bridge. Everything lives in the lab's host namespace: the root
 * namespace's tables are never read or written.
 */
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { ensureAddress, ensureVeth, ip, type Netns } from '../../src/system/ip.js';
import { writeSysctls } from '../../src/system/sysctl.js';
import { PUBLISHED_PORTS, SERVER_PORTS, startServers } from './servers.js';
import type { Setup } from './setup.js';

const NET = { bridge: 'bridge1', gateway: '192.0.2.1', server: '192.0.2.2', client: '192.0.2.3', subnet: '192.0.2.0/24', prefix: 24 } as const;

/** The iptables-restore input: Docker 28's rules for docker0 (empty) and bridge1 with the server's two published TCP ports. */
export function dockerRules(): string {
  const br = NET.bridge;
  const srv = NET.server;
  const ports: Array<[number, number]> = [
    [PUBLISHED_PORTS.http, SERVER_PORTS.http],
    [PUBLISHED_PORTS.iperf, SERVER_PORTS.iperf],
  ];
  const tcp = (p: number) => `-p tcp -m tcp --dport ${p}`;
  return [
    '*raw',
    `-A PREROUTING -d ${srv}/32 ! -i ${br} -j DROP`,
    'COMMIT',
    '*filter',
    ':FORWARD DROP [0:0]',
    ':DOCKER - [0:0]',
    ':DOCKER-BRIDGE - [0:0]',
    ':DOCKER-CT - [0:0]',
    ':DOCKER-FORWARD - [0:0]',
    ':DOCKER-INTERNAL - [0:0]',
    ':DOCKER-USER - [0:0]',
    '-A FORWARD -j DOCKER-USER',
    '-A FORWARD -j DOCKER-FORWARD',
    ...ports.map(([, c]) => `-A DOCKER -d ${srv}/32 ! -i ${br} -o ${br} ${tcp(c)} -j ACCEPT`),
    '-A DOCKER ! -i docker0 -o docker0 -j DROP',
    `-A DOCKER ! -i ${br} -o ${br} -j DROP`,
    '-A DOCKER-BRIDGE -o docker0 -j DOCKER',
    `-A DOCKER-BRIDGE -o ${br} -j DOCKER`,
    '-A DOCKER-CT -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    `-A DOCKER-CT -o ${br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    '-A DOCKER-FORWARD -j DOCKER-CT',
    '-A DOCKER-FORWARD -j DOCKER-INTERNAL',
    '-A DOCKER-FORWARD -j DOCKER-BRIDGE',
    '-A DOCKER-FORWARD -i docker0 -j ACCEPT',
    `-A DOCKER-FORWARD -i ${br} -j ACCEPT`,
    'COMMIT',
    '*nat',
    ':DOCKER - [0:0]',
    '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
    '-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER',
    `-A POSTROUTING -o ${br} -m addrtype --src-type LOCAL -j MASQUERADE`,
    `-A POSTROUTING -s ${NET.subnet} ! -o ${br} -j MASQUERADE`,
    '-A POSTROUTING -o docker0 -m addrtype --src-type LOCAL -j MASQUERADE',
    '-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE',
    ...ports.map(([, c]) => `-A POSTROUTING -s ${srv}/32 -d ${srv}/32 ${tcp(c)} -j MASQUERADE`),
    ...ports.map(([h, c]) => `-A DOCKER ${tcp(h)} -j DNAT --to-destination ${srv}:${c}`),
    'COMMIT',
    '',
  ].join('\n');
}

export class DockerRulesSetup implements Setup {
  readonly name = 'docker28' as const;
  readonly description =
    "Docker 28's own iptables rules (userland-proxy=false, DOCKER-FORWARD layout, FORWARD policy DROP) on a Linux bridge, written by hand from moby's generated rule documentation: the baseline the issue's independent harness used";
  readonly lab: Lab;
  targets: Setup['targets'] = {};

  private constructor(lab: Lab) {
    this.lab = lab;
  }

  static async create(): Promise<DockerRulesSetup> {
    const lab = await Lab.create();
    const s = new DockerRulesSetup(lab);
    try {
      const h = lab.host;
      await ip(h, ['link', 'add', 'name', NET.bridge, 'type', 'bridge']);
      await ensureAddress(h, NET.bridge, `${NET.gateway}/${NET.prefix}`);
      await ip(h, ['link', 'set', NET.bridge, 'up']);
      const attach = async (name: string, hostIf: string, addr: string): Promise<Netns> => {
        const ns = await lab.addNamespace(name);
        await ensureVeth(h, hostIf, ns, 'eth0');
        await ip(h, ['link', 'set', hostIf, 'master', NET.bridge, 'up']);
        await ensureAddress(ns, 'eth0', `${addr}/${NET.prefix}`);
        await ip(ns, ['link', 'set', 'eth0', 'up']);
        await ip(ns, ['link', 'set', 'lo', 'up']);
        await ip(ns, ['route', 'add', 'default', 'via', NET.gateway]);
        return ns;
      };
      const srv = await attach('srv', 'vsrv', NET.server);
      const cli = await attach('cli', 'vcli', NET.client);
      // dockerd sets this on the bridge with userland-proxy=false (hairpin to 127.0.0.1-published ports).
      await writeSysctls({ netnsPath: h.path }, { [`net.ipv4.conf.${NET.bridge}.route_localnet`]: '1' });
      await lab.exec(h, 'iptables-restore', ['--noflush'], { input: dockerRules() });
      await startServers(lab, { server: srv, client: cli });
      s.targets = {
        published: { client: lab.external, address: UPLINK.hostAddress, httpPort: PUBLISHED_PORTS.http, iperfPort: PUBLISHED_PORTS.iperf },
        'same-network': { client: cli, address: NET.server, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf },
        egress: { client: cli, address: UPLINK.externalAddress, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf },
      };
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return s;
  }

  async info(): Promise<Record<string, string>> {
    return { iptables: (await this.lab.exec(this.lab.host, 'iptables', ['--version'])).trim() };
  }

  async destroy(): Promise<void> {
    await this.lab.destroy();
  }
}
