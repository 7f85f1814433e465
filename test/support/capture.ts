/** tcpdump inside a lab namespace, started and known to be listening before the traffic it watches. */
import type { ChildProcess } from 'node:child_process';
import { start, stop } from '../../src/system/exec.js';

export interface Capture {
  /** Lets the last packets arrive, ends tcpdump and returns its non-empty lines. */
  finish(): Promise<string[]>;
  /** Ends it now, whatever happened (for finally blocks; harmless after finish). */
  kill(): void;
}

export async function startCapture(netnsPath: string, args: readonly string[]): Promise<Capture> {
  const dump: ChildProcess = start('nsenter', [`--net=${netnsPath}`, 'tcpdump', '-nn', '-l', ...args]);
  let err = '';
  let out = '';
  dump.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  dump.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  const kill = () => {
    if (dump.exitCode === null) dump.kill('SIGKILL');
  };
  for (let i = 0; i < 100 && !/listening on/.test(err); i++) await new Promise((r) => setTimeout(r, 50));
  if (!/listening on/.test(err)) {
    kill();
    throw new Error(`tcpdump ${args.join(' ')} in ${netnsPath} is not listening: ${err}`);
  }
  return {
    async finish() {
      await new Promise((r) => setTimeout(r, 300));
      await stop(dump, 2000);
      return out.split('\n').filter((l) => l.trim() !== '');
    },
    kill,
  };
}
