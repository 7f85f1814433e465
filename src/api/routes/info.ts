/**
 * GET /info: moby's system info with bpfnet's view where `docker info` prints it (the storage
 * driver's status lines carry the datapath, uplink, tables and kernel features), and the whole
 * of it under "Bpfnet" for `bpfnet info`.
 */
import { cpus, hostname, release, totalmem } from 'node:os';
import type { KernelFeature } from '../../observe/kernel-features.js';
import { sendJson, type Router } from '../router.js';

export interface TableUse {
  name: string;
  entries: number;
  capacity: number;
}

export interface BpfnetInfo {
  Version: string;
  Datapath: string;
  Instance: string;
  Uplink: { Interface: string; Address: string };
  Root: string;
  Counts: { Networks: number; Sandboxes: number; SandboxesRunning: number; Endpoints: number; PublishedPorts: number };
  /** Datapath tables (empty for the iptables datapath). */
  Tables: TableUse[];
  KernelFeatures: KernelFeature[];
}

export type InfoSource = () => Promise<BpfnetInfo> | BpfnetInfo;

export function infoRoutes(router: Router, source: InfoSource): void {
  router.on('GET', '/info', async (_req, res) => {
    const b = await source();
    const status: Array<[string, string]> = [
      ['Datapath', b.Datapath],
      ['Instance', b.Instance],
      ['Uplink', `${b.Uplink.Interface} ${b.Uplink.Address}`],
      ['Networks', String(b.Counts.Networks)],
      ['Published ports', String(b.Counts.PublishedPorts)],
      ...b.Tables.map((t): [string, string] => [`Table ${t.name}`, `${t.entries}/${t.capacity}`]),
      ['Kernel features', b.KernelFeatures.filter((f) => f.available).map((f) => f.name).join(' ') || 'none'],
      ['Missing features', b.KernelFeatures.filter((f) => !f.available).map((f) => f.name).join(' ') || 'none'],
    ];
    sendJson(res, 200, {
      ID: b.Instance,
      Containers: b.Counts.Sandboxes,
      ContainersRunning: b.Counts.SandboxesRunning,
      ContainersPaused: 0,
      ContainersStopped: b.Counts.Sandboxes - b.Counts.SandboxesRunning,
      Images: 0,
      Driver: 'bpfnet',
      DriverStatus: status,
      Plugins: { Volume: [], Network: ['bridge', 'host', 'null'], Authorization: null, Log: [] },
      MemoryLimit: false,
      SwapLimit: false,
      CpuCfsPeriod: false,
      CpuCfsQuota: false,
      CPUShares: false,
      CPUSet: false,
      PidsLimit: false,
      IPv4Forwarding: true,
      Debug: false,
      NFd: 0,
      NGoroutines: 0,
      SystemTime: new Date().toISOString(),
      LoggingDriver: '',
      CgroupDriver: '',
      NEventsListener: 0,
      KernelVersion: release(),
      OperatingSystem: 'bpfnet',
      OSVersion: '',
      OSType: 'linux',
      Architecture: process.arch === 'x64' ? 'x86_64' : process.arch,
      IndexServerAddress: '',
      NCPU: cpus().length,
      MemTotal: totalmem(),
      DockerRootDir: b.Root,
      Name: hostname(),
      Labels: [`bpfnet.datapath=${b.Datapath}`],
      ExperimentalBuild: false,
      ServerVersion: b.Version,
      Runtimes: {},
      DefaultRuntime: '',
      Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
      LiveRestoreEnabled: true,
      Isolation: '',
      InitBinary: '',
      SecurityOptions: [],
      Warnings: b.KernelFeatures.filter((f) => !f.available && ['btf', 'bpffs', 'bpf_redirect_peer', 'ringbuf'].includes(f.name)).map((f) => `WARNING: kernel feature ${f.name} is missing: ${f.note}`),
      Bpfnet: b,
    });
  });
}
