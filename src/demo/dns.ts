/**
 * Demo part: names. Runs after Docker's walkthrough (alpine1..4 on alpine-net and the default
 * bridge exist): sandboxes find each other by name and alias through the embedded DNS on the
 * network's gateway, names follow a rename at once, other names are forwarded upstream — here
 * to a small DNS server in the lab's external namespace, the sandboxes' own --dns, so nothing
 * is ever sent to the machine's real resolvers.
 */
import { join } from 'node:path';
import type { LabDaemon } from '../lab/daemon.js';
import { UPLINK, type Lab } from '../lab/lab.js';
import { projectRoot } from '../paths.js';
import { commandEcho } from './terminal.js';

const DNS_SERVER = join(projectRoot, 'test', 'support', 'dns-server.mjs');

export async function dnsDemo(lab: Lab, d: LabDaemon, say: (line?: string) => void): Promise<void> {
  const show = commandEcho(d, say, '  ');

  // The "internet" of this lab: one authoritative server in the external namespace.
  const upstream = lab.spawn(lab.external, process.execPath, [DNS_SERVER, UPLINK.externalAddress, '53', JSON.stringify({ 'www.example.test': ['192.0.2.80'] })]);
  await new Promise<void>((resolve) => {
    upstream.stdout?.on('data', (b: Buffer) => b.toString().includes('ready') && resolve());
    setTimeout(resolve, 3000);
  });

  say('Two more sandboxes on alpine-net; their --dns is the lab\'s external DNS server, where names we do not know are forwarded:');
  await show('run', '-d', '--name', 'db', '--network', 'alpine-net', '--network-alias', 'database', '--dns', UPLINK.externalAddress);
  await show('run', '-d', '--name', 'app', '--network', 'alpine-net', '--dns', UPLINK.externalAddress);
  say('\nTheir resolver is the network\'s gateway, served by the daemon itself (no process per sandbox):');
  await show('exec', 'app', 'cat', '/etc/resolv.conf');
  const listening = await lab.execRaw(lab.host, 'ss', ['-H', '-ulnp', 'sport', '=', ':53']);
  say(`  in the host: ${listening.stdout.trim().split('\n').map((l) => l.split(/\s+/)[3]).join(', ')} (udp; tcp too)`);

  say('\nBy name and by alias (ping names the reply by a reverse lookup, NAME.NETWORK):');
  await show('exec', 'app', 'getent', 'hosts', 'db');
  await show('exec', 'app', 'ping', '-c', '1', '-W', '1', 'database');
  await show('exec', 'alpine1', 'getent', 'hosts', 'app');
  say('\nNames are scoped to shared networks: alpine3 is on the default bridge, which has no embedded names (Docker\'s rule):');
  await show('exec', 'app', 'busybox', 'ping', '-c', '1', '-W', '1', 'alpine3');
  say('\nEverything else is forwarded upstream:');
  await show('exec', 'app', 'getent', 'hosts', 'www.example.test');

  say('\nA rename changes the answers at once:');
  await show('rename', 'db', 'postgres');
  await show('exec', 'app', 'getent', 'hosts', 'postgres');
  const gone = await d.cli(['exec', 'app', 'getent', 'hosts', 'db']);
  say(`$ bpfnet exec app getent hosts db\n  (exit ${gone.code}: no such name any more)`);
}
