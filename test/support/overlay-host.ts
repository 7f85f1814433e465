// The test's side of one simulated overlay host (overlay-host.mjs is the daemon's side): the
// host's namespace, its VTEP, its daemon driven over stdin, its CLI, and what the cluster state
// would hold for its sandboxes, which the test plays to the other hosts with `remote-add`.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Lab } from '../../src/lab/lab.js';
import { projectRoot } from '../../src/paths.js';
import { netns, type Netns } from '../../src/system/ip.js';
import { HarnessDaemon } from './harness-daemon.js';

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

/** One simulated host: its namespace, its uplink `up0` with its address (its VTEP) and its daemon. */
export class OverlayHost {
  #daemon?: HarnessDaemon;
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

  /** The daemon's process, once started. */
  get child(): ChildProcess | undefined {
    return this.#daemon?.child;
  }

  get log(): string {
    return this.#daemon?.log ?? '';
  }

  async start(): Promise<void> {
    const flags = { root: join(this.lab.tmpDir(), `${this.name}-root`), socket: this.socket, datapath: 'ebpf', uplink: 'up0', instance: `${this.lab.prefix}${this.name}` };
    this.#daemon = await HarnessDaemon.start(this.lab, this.ns, HARNESS, flags, `overlay host ${this.name}`);
  }

  async call(op: string, args: unknown): Promise<void> {
    const a = await this.#daemon!.call(op, args);
    if (!a.ok) throw new Error(`${op} on ${this.name} failed: ${a.message}\n${this.log}`);
  }

  cli(...args: string[]): Promise<string> {
    return this.#daemon!.cli(...args);
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
