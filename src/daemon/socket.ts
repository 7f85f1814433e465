/**
 * The daemon's API socket path: a stale socket left by a killed daemon is removed, but never a
 * file or directory that happens to sit there, and never a socket another daemon answers on.
 */
import { lstatSync, unlinkSync, type Stats } from 'node:fs';
import { connect } from 'node:net';

function kind(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a socket';
}

/** Whether something accepts connections on the unix socket at path (within timeoutMs). */
export function socketAnswers(path: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (v: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(true), timeoutMs); // a listener too busy to accept is still alive
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Makes path free for listen(): removes a dead socket; refuses anything else that is there. */
export async function claimSocketPath(path: string): Promise<void> {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) throw new Error(`refusing to use --socket ${path}: it exists and is ${kind(st)}, not a socket; remove it or choose another path`);
  if (await socketAnswers(path)) throw new Error(`another daemon is already listening on ${path}`);
  unlinkSync(path);
}

/** Removes path at stop only if it is still a socket (ours), never a file put there since. */
export function releaseSocketPath(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    /* already gone */
  }
}
