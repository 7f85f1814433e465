/**
 * The shape of every request body and query the API accepts (see validate.ts), one schema per
 * route, next to the wire types of types.ts. Bounds are generous for real clients (the docker
 * CLI, bpfnet's) and small enough that no request makes the daemon work without limit.
 */
import { bool, dict, flag, int, list, obj, opt, str, type Infer } from './validate.js';

const name = str({ max: 256 });
const address = str({ max: 64 });
const stringMap = dict(str(), 256);

export const ipamConfigSchema = obj({
  Subnet: opt(address),
  IPRange: opt(address),
  Gateway: opt(address),
  AuxiliaryAddresses: opt(dict(address, 256, 255)),
});

export const networkCreateSchema = obj({
  Name: name,
  Driver: opt(str({ max: 64 })),
  Scope: opt(str({ max: 16 })),
  EnableIPv4: opt(bool()),
  EnableIPv6: opt(bool()),
  IPAM: opt(
    obj({
      Driver: opt(str({ max: 64 })),
      Options: opt(stringMap),
      Config: opt(list(ipamConfigSchema, 16)),
    }),
  ),
  Internal: opt(bool()),
  Attachable: opt(bool()),
  Ingress: opt(bool()),
  ConfigOnly: opt(bool()),
  ConfigFrom: opt(obj({ Network: opt(name) })),
  Options: opt(stringMap),
  Labels: opt(stringMap),
  CheckDuplicate: opt(bool()),
});

const aliases = list(str({ max: 255 }), 64);

export const networkConnectSchema = obj({
  Container: str({ min: 1, max: 256 }),
  EndpointConfig: opt(
    obj({
      IPAMConfig: opt(obj({ IPv4Address: opt(address), IPv6Address: opt(address), LinkLocalIPs: opt(list(address, 16)) })),
      Aliases: opt(aliases),
      Links: opt(list(str({ max: 512 }), 64)),
      MacAddress: opt(str({ max: 64 })),
      DriverOpts: opt(stringMap),
      GwPriority: opt(int(-2147483648, 2147483647)),
    }),
  ),
});

export const networkDisconnectSchema = obj({
  Container: str({ min: 1, max: 256 }),
  Force: opt(bool()),
});

export const sandboxCreateSchema = obj({
  Name: name,
  Network: opt(name),
  IPv4Address: opt(address),
  IPv6Address: opt(address),
  Aliases: opt(aliases),
  Publish: opt(list(str({ max: 64 }), 1024)),
  Hostname: opt(str({ max: 255 })),
  ExtraHosts: opt(list(str({ max: 512 }), 256)),
  Dns: opt(list(address, 16)),
  DnsSearch: opt(list(str({ max: 255 }), 16)),
  Cmd: opt(list(str({ max: 65536 }), 1024)),
  Start: opt(bool()),
});

export const execSchema = obj({
  Cmd: list(str({ max: 65536 }), 1024),
  Env: opt(list(str({ max: 32768 }), 1024)),
});

/** ?filters=JSON: its content is checked by networks/filters.ts. */
export const filtersQuery = { filters: opt(str({ max: 65536 })) };
export const forceQuery = { force: flag() };
export const attachQuery = { attach: flag() };
export const renameQuery = { name: str({ max: 256 }) };

export type NetworkCreateBody = Infer<typeof networkCreateSchema>;
export type SandboxCreateBody = Infer<typeof sandboxCreateSchema>;
