/**
 * Wire shapes of the HTTP API over the unix socket. The /networks shapes are the Docker
 * Engine API's (see ../shared/reference/engine-api-networks.md); the /sandboxes shapes are
 * bpfnet's own, modelled on Docker's container objects. The daemon (api/) produces them, the
 * CLI (cli/) consumes them; nothing else depends on them.
 *
 * Errors: any 4xx/5xx carries `{"message": "..."}` (application/json). 400 invalid input,
 * 403 forbidden (predefined network, overlap, address in use), 404 not found, 409 conflict
 * (duplicate name, already attached, running sandbox without force), 500 other.
 *
 * Sandbox endpoints (all also under /vX.Y/):
 *   POST   /sandboxes/create            body SandboxCreateRequest -> 201 SandboxCreateResponse
 *   POST   /sandboxes/{ref}/start       -> 204; with ?attach=1 -> 200 ExecFrame stream of the main process
 *   POST   /sandboxes/{ref}/exec        body ExecRequest -> 200 ExecFrame stream (NDJSON, one frame per line)
 *   GET    /sandboxes                   -> SandboxSummary[] (every state), ?filters={"name":{"x":true}}
 *   GET    /sandboxes/{ref}             -> SandboxInspect
 *   DELETE /sandboxes/{ref}?force=1     -> 204 (409 if running and not forced)
 *   POST   /sandboxes/{ref}/rename?name=NEW -> 204 (400 invalid or same name, 404 unknown, 409 name in use)
 *   GET    /sandboxes/{ref}/stats       -> SandboxStats (datapath counters; ebpf datapath)
 *   GET    /events/drops                -> DropEvent stream (NDJSON) until the client closes
 * {ref} is a name, a full id or a unique id prefix, as for networks.
 *
 * What the daemon accepts is checked against the schemas of schemas.ts (types, lengths, sizes)
 * before any service sees it; these interfaces are the shapes clients send and receive.
 */

// ---------- Engine API: networks ----------

export interface IpamConfigJson {
  Subnet?: string;
  IPRange?: string;
  Gateway?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

export interface NetworkCreateRequest {
  Name: string;
  Driver?: string;
  Scope?: string;
  EnableIPv4?: boolean;
  EnableIPv6?: boolean;
  IPAM?: { Driver?: string; Options?: Record<string, string> | null; Config?: IpamConfigJson[] | null };
  Internal?: boolean;
  Attachable?: boolean;
  Ingress?: boolean;
  ConfigOnly?: boolean;
  ConfigFrom?: { Network: string } | null;
  Options?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
  CheckDuplicate?: boolean;
}

export interface NetworkCreateResponse {
  Id: string;
  Warning: string;
}

export interface NetworkContainerJson {
  Name: string;
  EndpointID: string;
  MacAddress: string;
  IPv4Address: string;
  IPv6Address: string;
}

/** moby's network.Inspect, key order as moby sends it. */
export interface NetworkInspectJson {
  Name: string;
  Id: string;
  Created: string;
  Scope: string;
  Driver: string;
  EnableIPv4: boolean;
  EnableIPv6: boolean;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: IpamConfigJson[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: boolean;
  Containers: Record<string, NetworkContainerJson>;
  Options: Record<string, string>;
  Labels: Record<string, string>;
}

export interface NetworkConnectRequest {
  Container: string;
  EndpointConfig?: {
    IPAMConfig?: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] } | null;
    Aliases?: string[] | null;
    Links?: string[] | null;
    MacAddress?: string;
    DriverOpts?: Record<string, string> | null;
    GwPriority?: number;
  } | null;
}

export interface NetworkDisconnectRequest {
  Container: string;
  Force?: boolean;
}

export interface NetworkPruneResponse {
  NetworksDeleted: string[];
}

// ---------- bpfnet: sandboxes ----------

export interface SandboxCreateRequest {
  Name: string;
  /** "bridge" (default when empty), "host", "none" or a user-defined network. */
  Network?: string;
  /** Static IPv4 on that network (user-defined networks only). */
  IPv4Address?: string;
  IPv6Address?: string;
  /** Network-scoped aliases on that network. */
  Aliases?: string[];
  /** Docker -p syntax: [IP:]HOST[-HOST]:CONT[-CONT][/tcp|udp], or CONT[/proto] for an ephemeral host port. */
  Publish?: string[];
  Hostname?: string;
  /** NAME:IP entries for /etc/hosts. */
  ExtraHosts?: string[];
  Dns?: string[];
  DnsSearch?: string[];
  /** Process to run inside; empty: the sandbox only holds its namespace. */
  Cmd?: string[];
  /** Start the process at once (run -d). Default true. */
  Start?: boolean;
}

export interface SandboxCreateResponse {
  Id: string;
  Warnings: string[];
}

export interface ExecRequest {
  Cmd: string[];
  Env?: string[];
}

/** One line of an exec/attach stream: output chunks, then exactly one ExitCode (or Error) frame. */
export type ExecFrame =
  | { Stream: 'stdout' | 'stderr'; Data: string /* base64 */ }
  | { ExitCode: number }
  | { Error: string };

export interface PortJson {
  IP: string;
  PrivatePort: number;
  PublicPort: number;
  Type: 'tcp' | 'udp';
}

export interface SandboxSummary {
  Id: string;
  Name: string;
  Command: string;
  Created: string;
  /** created | running | exited */
  State: string;
  /** "Up 5 seconds", "Exited (0) 2 minutes ago", "Created" */
  Status: string;
  Ports: PortJson[];
  Networks: string[];
}

export interface SandboxEndpointJson {
  NetworkID: string;
  EndpointID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  IPv6Gateway: string;
  GlobalIPv6Address: string;
  GlobalIPv6PrefixLen: number;
  MacAddress: string;
  Aliases: string[];
  DNSNames: string[];
  InterfaceName: string;
}

export interface SandboxInspect {
  Id: string;
  Name: string;
  Created: string;
  State: { Status: string; Running: boolean; Pid: number; ExitCode: number; StartedAt: string; FinishedAt: string; Error?: string };
  Config: { Hostname: string; Cmd: string[]; ExtraHosts: string[]; Dns: string[]; DnsSearch: string[] };
  HostConfig: { NetworkMode: string };
  NetworkSettings: {
    /** /run/netns/NAME, or the daemon's own namespace for host mode. */
    SandboxKey: string;
    /** "80/tcp" -> bindings */
    Ports: Record<string, Array<{ HostIp: string; HostPort: string }>>;
    Networks: Record<string, SandboxEndpointJson>;
  };
}

export interface SandboxStats {
  Id: string;
  Name: string;
  Endpoints: Array<{ Network: string; InterfaceName: string; RxPackets: number; RxBytes: number; TxPackets: number; TxBytes: number; Drops: Record<string, number> }>;
}

export interface DropEvent {
  Time: string;
  Reason: string;
  Protocol: string;
  Source: string;
  Destination: string;
  Interface: string;
}
