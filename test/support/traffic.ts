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

/**
 * True once one echo reply comes back within 2 s, probing every 200 ms (either family). A single
 * probe with a 1 s wait failed a reachable gateway in CI while the other test file ran a wrk
 * load on both vCPUs; an unreachable address still answers false, a second later.
 */
export async function ping(lab: Lab, ns: Netns, host: string): Promise<boolean> {
  const r = await lab.execRaw(ns, 'ping', ['-c', '1', '-w', '2', '-i', '0.2', '-q', host]);
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

// Flows from one sandbox, one after the other, each held open once the server has spoken (a
// closed flow leaves the assured connection table): prints "ok" or "refused" (no answer within
// 1.2 s) per flow as one JSON line, then holds them until killed.
const HELD_FLOWS = (host: string, port: number, n: number) =>
  `const net=require('net');const held=[];(async()=>{const r=[];for(let i=0;i<${n};i++)r.push(await new Promise((res)=>{const s=net.connect(${port},'${host}');held.push(s);` +
  `const t=setTimeout(()=>{s.destroy();res('refused')},1200);s.once('data',()=>{clearTimeout(t);res('ok')});` +
  `s.on('error',(e)=>{clearTimeout(t);res(e.code)})}));console.log(JSON.stringify(r));setInterval(()=>{},1e6)})()`;

/** Starts, in ns, a server that greets every connection and keeps it open (both families); resolves once it listens. */
export async function holdServer(lab: Lab, ns: Netns, port: number): Promise<ChildProcess> {
  const child = lab.spawn(ns, process.execPath, ['-e', `require('net').createServer((s)=>{s.on('error',()=>{});s.write('hi\\n')}).listen(${port},'::',()=>console.log('ready'))`]);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (x: Buffer) => x.toString().includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`hold server ${port} in ${ns.name} exited (${code})`)));
  });
  return child;
}

/** Opens n flows from ns to a holdServer, one after the other; resolves with the verdicts and a way to close them. */
export async function holdFlows(lab: Lab, ns: Netns, host: string, port: number, n: number): Promise<{ flows: string[]; close: () => Promise<void> }> {
  const child = lab.spawn(ns, process.execPath, ['-e', HELD_FLOWS(host, port, n)]);
  const flows = await new Promise<string[]>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (x: Buffer) => {
      out += x.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!));
    });
    child.once('exit', (code) => reject(new Error(`held flows exited (${code}) before reporting`)));
  });
  const close = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  };
  return { flows, close };
}
