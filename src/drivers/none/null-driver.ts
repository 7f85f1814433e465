/** The null driver (network "none"): a namespace with loopback only. */
import type { EndpointRecord, NetworkRecord } from '../../networks/model.js';
import { ip } from '../../system/ip.js';
import type { Driver, SandboxTarget } from '../driver.js';

export class NullDriver implements Driver {
  readonly name = 'null' as const;
  readonly ownNamespace = true;
  async createNetwork(_net: NetworkRecord): Promise<void> {}
  async deleteNetwork(_net: NetworkRecord): Promise<void> {}
  async join(_net: NetworkRecord, ep: EndpointRecord, sb: SandboxTarget): Promise<EndpointRecord> {
    if (sb.netnsPath && sb.record.netns) await ip({ name: sb.record.netns, path: sb.netnsPath }, ['link', 'set', 'dev', 'lo', 'up']);
    return ep;
  }
  async leave(): Promise<void> {}
}
