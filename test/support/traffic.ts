// Real-traffic helpers for end-to-end tests: servers that echo the peer address they saw,
// one-shot clients, and ping, all inside lab namespaces.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Lab } from '../../src/lab/lab.js';
import type { LabDaemon } from '../../src/lab/daemon.js';
import { netns, type Netns } from '../../src/system/ip.js';
import { projectRoot } from '../../src/paths.js';

export const ECHO_SERVER = join(projectRoot, 'test', 'support', 'echo-server.mjs');
export const PROBE_CLIENT = join(projectRoot, 'test', 'support', 'probe-client.mjs');

/** The namespace of a sandbox, from `bpfnet inspect`. */
export async function sandboxNs(d: LabDaemon, name: string): Promise<Netns> {
  const key: string = JSON.parse(await d.bpfnet('inspect', name))[0].NetworkSettings.SandboxKey;
  return key.startsWith('/run/netns/') ? netns(key.slice('/run/netns/'.length)) : { name: 'host', path: key };
}

export async function sandboxIp(d: LabDaemon, name: string, network: string): Promise<string> {
  return JSON.parse(await d.bpfnet('inspect', name))[0].NetworkSettings.Networks[network].IPAddress;
}

/** Starts an echo server in ns; resolves once it listens. */
export async function echoServer(lab: Lab, ns: Netns, proto: 'tcp' | 'udp', port: number, host = '0.0.0.0'): Promise<ChildProcess> {
  const child = lab.spawn(ns, process.execPath, [ECHO_SERVER, proto, String(port), host]);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`echo server ${proto}/${port} in ${ns.name} exited (${code})`)));
  });
  return child;
}

/** Connects once from ns (from localPort when given); resolves with the "ip:port" the server saw, or null if unreachable. */
export async function probe(lab: Lab, ns: Netns, proto: 'tcp' | 'udp', host: string, port: number, timeoutMs = 1500, localPort = 0): Promise<string | null> {
  const r = await lab.execRaw(ns, process.execPath, [PROBE_CLIENT, proto, host, String(port), String(timeoutMs), String(localPort)], { timeoutMs: timeoutMs + 5000 });
  return r.code === 0 ? r.stdout.trim() : null;
}

/** The IP part of an echoed "ip:port". */
export function peerIp(answer: string | null): string | null {
  return answer === null ? null : answer.slice(0, answer.lastIndexOf(':'));
}

export async function ping(lab: Lab, ns: Netns, host: string): Promise<boolean> {
  const r = await lab.execRaw(ns, 'ping', ['-c', '1', '-W', '1', '-q', host]);
  return r.code === 0;
}

/** Resolves once a TCP connect from ns to host:port succeeds (a server is listening). */
export async function waitPort(lab: Lab, ns: Netns, host: string, port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const script = `const s=require('net').connect(${port},'${host}');s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1));setTimeout(()=>process.exit(1),500)`;
  while (Date.now() < deadline) {
    if ((await lab.execRaw(ns, process.execPath, ['-e', script])).code === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${host}:${port} in ${ns.name}`);
}
