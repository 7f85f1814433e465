/** bpfnet's own /sandboxes endpoints (see api/types.ts), plus the container lookup docker needs. */
import type { ChildProcess } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { invalid } from '../../errors.js';
import type { EndpointRecord, NetworkRecord, PortRecord, SandboxRecord } from '../../networks/model.js';
import type { SandboxService } from '../../sandboxes/service.js';
import type { Store } from '../../store/store.js';
import { sandboxInspect, sandboxSummary, type SandboxView } from '../render.js';
import { sendEmpty, sendJson, type Router } from '../router.js';
import { attachQuery, execSchema, forceQuery, renameQuery, sandboxCreateSchema } from '../schemas.js';
import type { ExecFrame } from '../types.js';
import { checkBody, checkQuery } from '../validate.js';

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

function frame(res: ServerResponse, f: ExecFrame): void {
  res.write(`${JSON.stringify(f)}\n`);
}

/** Streams a child's output as ExecFrames and ends with its exit code. */
function streamChild(res: ServerResponse, child: ChildProcess): Promise<void> {
  res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
  return new Promise((resolve) => {
    child.stdout?.on('data', (d: Buffer) => frame(res, { Stream: 'stdout', Data: d.toString('base64') }));
    child.stderr?.on('data', (d: Buffer) => frame(res, { Stream: 'stderr', Data: d.toString('base64') }));
    child.once('error', (err) => {
      frame(res, { Error: err.message });
      res.end();
      resolve();
    });
    child.once('close', (code, signal) => {
      frame(res, { ExitCode: code ?? (signal ? 128 + 9 : 1) });
      res.end();
      resolve();
    });
    res.once('close', () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
  });
}

export function sandboxRoutes(router: Router, sandboxes: SandboxService, store: Store, sandboxKey: (netns: string | null) => string): void {
  const viewOf = (sandbox: SandboxRecord, endpoints: EndpointRecord[], network: (id: string) => NetworkRecord | undefined, ports: PortRecord[]): SandboxView => {
    const networks = new Map<string, NetworkRecord>();
    for (const e of endpoints) {
      const n = network(e.networkId);
      if (n) networks.set(n.id, n);
    }
    return { sandbox, endpoints, networks, ports, sandboxKey: sandboxKey(sandbox.netns) };
  };
  const view = (id: string): SandboxView => {
    const sandbox = sandboxes.refresh(store.sandboxes.get(id)!);
    const endpoints = store.endpoints.forSandbox(id).filter((e) => e.state === 'active');
    return viewOf(sandbox, endpoints, (n) => store.networks.get(n), store.ports.forSandbox(id));
  };
  /** Every listed sandbox's view from one read of each table, not several reads per sandbox (ps at 4,000 sandboxes). */
  const views = (list: readonly SandboxRecord[]): SandboxView[] => {
    const endpoints = groupBy(store.endpoints.all().filter((e) => e.state === 'active'), (e) => e.sandboxId);
    const networks = new Map(store.networks.all().map((n) => [n.id, n]));
    const ports = groupBy(store.ports.all(), (p) => p.sandboxId);
    return list.map((sb) => viewOf(sb, (endpoints.get(sb.id) ?? []).sort((a, b) => a.seq - b.seq), (n) => networks.get(n), ports.get(sb.id) ?? []));
  };

  router.on('POST', '/sandboxes/create', async (req, res) => {
    const body = checkBody(sandboxCreateSchema, await req.body());
    const result = await sandboxes.create({
      name: body.Name,
      network: body.Network,
      ipv4: body.IPv4Address || undefined,
      ipv6: body.IPv6Address || undefined,
      aliases: body.Aliases,
      publish: body.Publish,
      hostname: body.Hostname,
      extraHosts: body.ExtraHosts,
      dns: body.Dns,
      dnsSearch: body.DnsSearch,
      cmd: body.Cmd,
      start: body.Start !== false,
    });
    sendJson(res, 201, { Id: result.id, Warnings: result.warnings });
  });

  router.on('GET', '/sandboxes', (_req, res) => {
    sendJson(res, 200, views(sandboxes.list()).map(sandboxSummary));
  });

  router.on('GET', '/sandboxes/{id}', (req, res) => {
    sendJson(res, 200, sandboxInspect(view(sandboxes.resolve(req.params.id).id)));
  });

  router.on('POST', '/sandboxes/{id}/start', async (req, res) => {
    const { attach } = checkQuery(req.query, attachQuery);
    const { sandbox, child } = await sandboxes.start(req.params.id);
    if (!attach) return sendEmpty(res, 204);
    if (!child) throw invalid(`sandbox ${sandbox.name} was started by an earlier daemon: its output is in its log`);
    // The main process writes to its log file; follow the file until the process ends.
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
    const log = sandboxes.logPath(sandbox);
    let offset = 0;
    const pump = async () => {
      if (!existsSync(log)) return;
      await new Promise<void>((resolve) => {
        const s = createReadStream(log, { start: offset });
        s.on('data', (d: Buffer | string) => {
          const b = Buffer.isBuffer(d) ? d : Buffer.from(d);
          offset += b.length;
          frame(res, { Stream: 'stdout', Data: b.toString('base64') });
        });
        s.on('close', () => resolve());
        s.on('error', () => resolve());
      });
    };
    // One read at a time: two overlapping reads from the same offset sent the output twice.
    let reading = Promise.resolve();
    const next = () => (reading = reading.then(pump));
    const timer = setInterval(() => void next(), 50);
    if (child.exitCode === null && child.signalCode === null) await new Promise<void>((resolve) => child.once('exit', () => resolve()));
    clearInterval(timer);
    await next();
    const done = sandboxes.refresh(store.sandboxes.get(sandbox.id) ?? sandbox);
    frame(res, { ExitCode: done.exitCode ?? 0 });
    res.end();
  });

  router.on('POST', '/sandboxes/{id}/exec', async (req, res) => {
    const body = checkBody(execSchema, await req.body());
    const child = sandboxes.exec(req.params.id, body.Cmd, body.Env);
    await streamChild(res, child);
  });

  const rename = async (req: { params: Record<string, string>; query: URLSearchParams }, res: ServerResponse) => {
    await sandboxes.rename(req.params.id, checkQuery(req.query, renameQuery).name);
    sendEmpty(res, 204);
  };
  router.on('POST', '/sandboxes/{id}/rename', rename);
  // docker rename speaks to this one.
  router.on('POST', '/containers/{id}/rename', rename);

  router.on('DELETE', '/sandboxes/{id}', async (req, res) => {
    const { force } = checkQuery(req.query, forceQuery);
    await sandboxes.remove(req.params.id, force);
    sendEmpty(res, 204);
  });

  // Enough of Docker's container lookup for clients that inspect a container by name.
  router.on('GET', '/containers/{id}/json', (req, res) => {
    sendJson(res, 200, sandboxInspect(view(sandboxes.resolve(req.params.id).id)));
  });
}
