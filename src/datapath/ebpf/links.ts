/**
 * Attachments of the datapath's programs, each a tcx link pinned under the instance's pin
 * root: pinned links keep forwarding while the daemon is down, and a restarted daemon swaps
 * its freshly loaded programs into them atomically.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BpfLink, interfaceIndex, isBpfError, type BpfProgram, type TcDirection } from '../libbpf/bpf.js';

export class LinkSet {
  readonly #dir: string;

  constructor(pinRoot: string) {
    this.#dir = join(pinRoot, 'links');
    mkdirSync(this.#dir, { recursive: true });
  }

  // bpffs refuses names with '.', which interface names may contain: encode it.
  #pin(ifname: string, direction: TcDirection): string {
    return join(this.#dir, `${ifname.replace(/%/g, '%25').replace(/\./g, '%2e')}@${direction}`);
  }

  /** Makes sure `program` is attached at ifname's tc hook in netns (null: ours). */
  ensure(netns: string | null, ifname: string, direction: TcDirection, program: BpfProgram): void {
    const pin = this.#pin(ifname, direction);
    const ifindex = interfaceIndex(netns, ifname);
    if (existsSync(pin)) {
      const link = BpfLink.openPinned(pin);
      try {
        // A link outlives its interface: if the device was recreated, attach afresh.
        if (link.info().ifindex === ifindex) {
          link.update(program);
          return;
        }
        rmSync(pin);
      } finally {
        link.close();
      }
    }
    const link = program.attachTc({ netns, ifname }, direction);
    try {
      link.pin(pin);
    } finally {
      link.close();
    }
  }

  /** Detaches and unpins; absent links are fine. */
  remove(ifname: string, direction: TcDirection): void {
    const pin = this.#pin(ifname, direction);
    if (!existsSync(pin)) return;
    try {
      const link = BpfLink.openPinned(pin);
      try {
        link.detach();
      } catch (err) {
        if (!isBpfError(err, 'EBADF')) throw err;
      }
    } finally {
      rmSync(pin, { force: true });
    }
  }

  /** Interface names with a pinned link. */
  pinned(): Array<{ ifname: string; direction: TcDirection }> {
    return readdirSync(this.#dir).map((n) => {
      const at = n.lastIndexOf('@');
      return { ifname: decodeURIComponent(n.slice(0, at)), direction: n.slice(at + 1) as TcDirection };
    });
  }
}
