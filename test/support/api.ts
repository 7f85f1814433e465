// A minimal Engine API client over a unix socket, for tests that check wire-level behaviour.
import { request } from 'node:http';

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

export interface ApiOptions {
  /** A connection of its own (no keep-alive agent), so N concurrent calls are N connections. */
  readonly ownConnection?: boolean;
  /** Fail the call when no answer came within this many ms. */
  readonly timeoutMs?: number;
}

export function api(socket: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}, opts: ApiOptions = {}): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request(
      {
        socketPath: socket,
        method,
        path,
        ...(opts.ownConnection ? { agent: false as const } : {}),
        headers: { Host: 'bpfnet', ...(payload !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {}), ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    if (opts.timeoutMs !== undefined) req.setTimeout(opts.timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer within ${opts.timeoutMs} ms`)));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}
