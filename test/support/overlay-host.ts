// The test's side of one simulated overlay host (overlay-host.mjs is the daemon's side): the
// host's namespace, its VTEP, its daemon driven over stdin, its CLI, and what the cluster state
// would hold for its sandboxes, which the test plays to the other hosts with `remote-add`.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Lab } from '../../src/lab/lab.js';
import { cliPath, projectRoot } from '../../src/paths.js';
import { run } from '../../src/system/exec.js';
import { netns, type Netns } from '../../src/system/ip.js';

const HARNESS = join(projectRoot, 'test', 'support', 'overlay-host.mjs');

/** One endpoint of a sandbox on another host, as the cluster state holds it (what `remote-add` takes). */
export interface RemoteRecord {
  vni: number;
  ipv4: string;
  mac: string;
  vtep: string;
  sandboxId: string;
  name: string;
  aliases: string[];
}

interface Answer {
  seq: number;
  ok: boolean;
  message?: string;
}

/** One simulated host: its namespace, its uplink `up0` with its address (its VTEP) and its daemon. */
export class OverlayHost {
  #seq = 0;
  readonly #waiting = new Map<number, (a: Answer) => void>();
  log = '';
  child?: ChildProcess;
  readonly socket: string;

  /** `nets`: the overlay networks the test made, by name, with their VNIs. */
  constructor(
    readonly lab: Lab,
    readonly name: string,
    readonly ns: Netns,
    readonly vtep: string,
    readonly nets: Readonly<Record<string, { readonly vni: number }>>,
  ) {
    this.socket = join(lab.tmpDir(), `${name}.sock`);
  }

  async start(): Promise<void> {
    const flags = { root: join(this.lab.tmpDir(), `${this.name}-root`), socket: this.socket, datapath: 'ebpf', uplink: 'up0', instance: `${this.lab.prefix}${this.name}` };
    const child = this.lab.spawn(this.ns, process.execPath, [HARNESS, JSON.stringify(flags)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stderr?.on('data', (b: Buffer) => (this.log += b.toString()));
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! });
      lines.on('line', (line) => {
        const msg = JSON.parse(line) as Answer & { ready?: boolean };
        if (msg.ready) return resolve();
        this.#waiting.get(msg.seq)?.(msg);
        this.#waiting.delete(msg.seq);
      });
      child.once('exit', (code) => reject(new Error(`overlay host ${this.name} exited (${code}):\n${this.log}`)));
    });
  }

  async call(op: string, args: unknown): Promise<void> {
    const seq = ++this.#seq;
    const a = await new Promise<Answer>((resolve) => {
      this.#waiting.set(seq, resolve);
      this.child!.stdin!.write(JSON.stringify({ seq, op, args }) + '\n');
    });
    if (!a.ok) throw new Error(`${op} on ${this.name} failed: ${a.message}\n${this.log}`);
  }

  cli(...args: string[]): Promise<string> {
    return run(process.execPath, [cliPath, '-H', `unix://${this.socket}`, ...args]);
  }

  async sandboxNs(name: string): Promise<Netns> {
    const key: string = JSON.parse(await this.cli('inspect', name))[0].NetworkSettings.SandboxKey;
    return netns(key.slice('/run/netns/'.length));
  }

  /** What the cluster state would hold for a sandbox of this host: one record per overlay endpoint. */
  async endpointsOf(name: string): Promise<RemoteRecord[]> {
    const sb = JSON.parse(await this.cli('inspect', name))[0];
    return Object.entries(sb.NetworkSettings.Networks as Record<string, { IPAddress: string; MacAddress: string; Aliases?: string[] | null }>)
      .filter(([net]) => net in this.nets)
      .map(([net, ep]) => ({
        vni: this.nets[net].vni,
        ipv4: ep.IPAddress,
        mac: ep.MacAddress,
        vtep: this.vtep,
        sandboxId: sb.Id as string,
        name,
        aliases: ep.Aliases ?? [],
      }));
  }
}
