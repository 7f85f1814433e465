/** /_ping and /version. */
import { release } from 'node:os';
import { API_VERSION, MIN_API_VERSION, sendJson, type Router } from '../router.js';

export const BPFNET_VERSION = '0.1.0';

export function systemRoutes(router: Router): void {
  const ping = (method: 'HEAD' | 'GET') => (_req: unknown, res: import('node:http').ServerResponse) => {
    res.setHeader('Cache-Control', 'no-cache, no-store, must-revalidate');
    res.setHeader('Pragma', 'no-cache');
    res.setHeader('Builder-Version', '1');
    res.setHeader('Swarm', 'inactive');
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    if (method === 'HEAD') {
      res.setHeader('Content-Length', '0');
      res.writeHead(200);
      res.end();
    } else {
      res.setHeader('Content-Length', '2');
      res.writeHead(200);
      res.end('OK');
    }
  };
  router.on('HEAD', '/_ping', ping('HEAD'));
  router.on('GET', '/_ping', ping('GET'));
  router.on('GET', '/version', (_req, res) => {
    const details = {
      ApiVersion: API_VERSION,
      Arch: process.arch === 'x64' ? 'amd64' : process.arch,
      BuildTime: '',
      Experimental: 'false',
      GitCommit: '',
      GoVersion: `node ${process.version}`,
      KernelVersion: release(),
      MinAPIVersion: MIN_API_VERSION,
      Os: 'linux',
    };
    sendJson(res, 200, {
      Platform: { Name: 'bpfnet' },
      Components: [{ Name: 'Engine', Version: BPFNET_VERSION, Details: details }],
      Version: BPFNET_VERSION,
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: '',
      GoVersion: `node ${process.version}`,
      Os: 'linux',
      Arch: details.Arch,
      KernelVersion: release(),
      BuildTime: '',
    });
  });
}
