/**
 * Demo, part 2: Docker's networking walkthrough with bpfnet — a user-defined network, sandboxes
 * on it and on the default bridge, isolation, a sandbox on two networks, masquerade and a
 * published port reached from outside — each command shown as a user would type it.
 */
import { join } from 'node:path';
import type { LabDaemon } from '../lab/daemon.js';
import { UPLINK, type Lab } from '../lab/lab.js';
import { netns } from '../system/ip.js';
import { projectRoot } from '../paths.js';
import { commandEcho } from './terminal.js';

const ECHO = join(projectRoot, 'test', 'support', 'echo-server.mjs');
const PROBE = join(projectRoot, 'test', 'support', 'probe-client.mjs');

export async function walkthrough(lab: Lab, d: LabDaemon, say: (line?: string) => void): Promise<void> {
  const show = commandEcho(d, say);
  const ping = async (from: string, target: string, label: string) => {
    const r = await d.cli(['exec', from, 'ping', '-c', '1', '-W', '1', '-q', target]);
    say(`  ${from} -> ${label.padEnd(22)} ${r.code === 0 ? 'reachable' : 'unreachable'}`);
  };
  const ipOf = async (name: string, network: string) => JSON.parse((await d.cli(['inspect', name])).stdout)[0].NetworkSettings.Networks[network].IPAddress as string;

  await show('network', 'create', '--driver', 'bridge', 'alpine-net');
  await show('network', 'ls');
  for (const [name, net] of [['alpine1', 'alpine-net'], ['alpine2', 'alpine-net'], ['alpine3', 'bridge'], ['alpine4', 'alpine-net']]) {
    await show('run', '-d', '--name', name, '--network', net);
  }
  await show('network', 'connect', 'bridge', 'alpine4');
  await show('ps');
  const ip = { a1: await ipOf('alpine1', 'alpine-net'), a2: await ipOf('alpine2', 'alpine-net'), a3: await ipOf('alpine3', 'bridge') };
  say('\nWho reaches whom (ping by address):');
  await ping('alpine1', ip.a2, `alpine2 ${ip.a2}`);
  await ping('alpine1', ip.a3, `alpine3 ${ip.a3}`);
  await ping('alpine4', ip.a1, `alpine1 ${ip.a1}`);
  await ping('alpine4', ip.a3, `alpine3 ${ip.a3}`);
  await ping('alpine3', ip.a1, `alpine1 ${ip.a1}`);

  say('\nThe outside world (a server in the external namespace answers with the address it sees):');
  lab.spawn(lab.external, process.execPath, [ECHO, 'tcp', '7000']);
  await new Promise((r) => setTimeout(r, 300));
  const out = await d.cli(['exec', 'alpine1', process.execPath, PROBE, 'tcp', UPLINK.externalAddress, '7000']);
  say(`  alpine1 -> ${UPLINK.externalAddress}:7000 seen as ${out.stdout.trim()} (masqueraded to the host's uplink address)`);

  say('\nA published port:');
  await show('run', '-d', '--name', 'web', '--network', 'alpine-net', '-p', '8080:80', '--', process.execPath, ECHO, 'tcp', '80');
  let seen = '';
  for (let i = 0; i < 30 && !seen; i++) {
    const r = await lab.execRaw(lab.external, process.execPath, [PROBE, 'tcp', UPLINK.hostAddress, '8080', '500']);
    seen = r.code === 0 ? r.stdout.trim() : '';
  }
  say(`  external client -> ${UPLINK.hostAddress}:8080 reaches web, which sees the client as ${seen || '(no answer)'}`);
  const local = await lab.execRaw(netns(lab.host.name), process.execPath, [PROBE, 'tcp', '127.0.0.1', '8080']);
  say(`  the host itself -> 127.0.0.1:8080 ${local.code === 0 ? 'reaches web' : 'fails'} (no userland proxy)`);
}
