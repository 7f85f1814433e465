/**
 * The programs every setup runs, identical everywhere: the C HTTP responder and iperf3 as
 * servers, and the client-namespace settings the measurements need.
 */
import { join } from 'node:path';
import type { Lab } from '../../src/lab/lab.js';
import { projectRoot } from '../../src/paths.js';
import type { Netns } from '../../src/system/ip.js';
import { writeSysctls } from '../../src/system/sysctl.js';

export const TOOLS = join(projectRoot, 'build', 'bench');
export const HTTPD = join(TOOLS, 'httpd');
export const CONNRATE = join(TOOLS, 'connrate');

/** The ports the servers listen on inside their namespace. */
export const SERVER_PORTS = { http: 80, iperf: 5201 } as const;
/** The host ports the sandboxes' servers are published on. */
export const PUBLISHED_PORTS = { http: 8080, iperf: 5201 } as const;

/** The shell command that runs both servers as one process tree (a sandbox's main process). */
export function serverCommand(httpPort: number = SERVER_PORTS.http, iperfPort: number = SERVER_PORTS.iperf): string[] {
  return ['sh', '-c', `${HTTPD} ${httpPort} & exec iperf3 -s -p ${iperfPort}`];
}

/** Starts both servers in ns as lab processes (ended by lab.destroy()). */
export function spawnServers(lab: Lab, ns: Netns): void {
  lab.spawn(ns, HTTPD, [String(SERVER_PORTS.http)]);
  lab.spawn(ns, 'iperf3', ['-s', '-p', String(SERVER_PORTS.iperf)]);
}

/**
 * Client namespaces get the whole port range and TIME_WAIT reuse, so connection-rate runs are
 * limited by the datapath rather than by ephemeral ports (toolchain.md). Only client namespaces.
 */
export async function tuneClient(ns: Netns): Promise<void> {
  await writeSysctls({ netnsPath: ns.path }, { 'net.ipv4.ip_local_port_range': '1024 65535', 'net.ipv4.tcp_tw_reuse': '1' });
}

/** Resolves once every port in ports has a TCP listener in ns (servers start asynchronously). */
export async function waitListening(lab: Lab, ns: Netns, ports: readonly number[], timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = await lab.exec(ns, 'ss', ['-Hltn']);
    const listening = new Set(
      out
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[3])
        .filter(Boolean)
        .map((addr) => Number(addr.slice(addr.lastIndexOf(':') + 1))),
    );
    if (ports.every((p) => listening.has(p))) return;
    if (Date.now() > deadline) throw new Error(`servers in ${ns.name} are not listening on ${ports.filter((p) => !listening.has(p)).join(', ')} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The servers of a setup's paths: both servers in `server` (published and same-network paths)
 * and in `external` (egress; the lab's external namespace unless given), `client` and `external`
 * tuned as clients; resolves once both listen.
 */
export async function startServers(lab: Lab, ns: { server: Netns; client: Netns; external?: Netns }): Promise<void> {
  const external = ns.external ?? lab.external;
  spawnServers(lab, ns.server);
  spawnServers(lab, external);
  await tuneClient(external);
  await tuneClient(ns.client);
  await waitListening(lab, ns.server, [SERVER_PORTS.http, SERVER_PORTS.iperf]);
  await waitListening(lab, external, [SERVER_PORTS.http, SERVER_PORTS.iperf]);
}
