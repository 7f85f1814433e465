/** A minimal client of the daemon's API over its unix socket: control-plane timings without a CLI process in the way. */
import { request } from 'node:http';

export interface ApiReply {
  status: number;
  body: any;
}

export function callApi(socket: string, method: string, path: string, body?: unknown): Promise<ApiReply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath: socket,
        method,
        path,
        headers: { Host: 'bpfnet', ...(payload !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            /* plain text */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** callApi that rejects on a non-2xx status, naming the call and the daemon's message. */
export async function mustCall(socket: string, method: string, path: string, body?: unknown): Promise<any> {
  const r = await callApi(socket, method, path, body);
  if (r.status < 200 || r.status >= 300) {
    const msg = typeof r.body === 'object' && r.body && 'message' in r.body ? (r.body as { message: string }).message : JSON.stringify(r.body);
    throw new Error(`${method} ${path}: ${r.status} ${msg}`);
  }
  return r.body;
}
