/**
 * A command line run by the daemon for the thin client (client/bpfnet.c, what bin/bpfnet
 * starts): the same commander tree and renderers as the Node CLI, so output and exit statuses
 * are the Node CLI's byte for byte, without Node's ~100 ms start-up in every command. The
 * command's stdout and stderr go back as frames in the order written, its exit status last.
 *
 * A frame is docker's multiplexed-stream header (the stream, three zero bytes, the payload length
 * big-endian) and the payload; the exit frame carries the status in decimal. Commands that need
 * the user's own process (marked runsLocally: becoming the daemon, a question on the terminal)
 * are refused before anything runs, and the thin client runs the Node CLI for them.
 */
import { Readable, Writable } from 'node:stream';
import type { Client } from './client.js';
import type { CliCommand } from './command.js';
import type { Io } from './io.js';
import { buildProgram, commandOf, runCli } from './program.js';

export const FRAME_STDOUT = 1;
export const FRAME_STDERR = 2;
export const FRAME_EXIT = 3;

export function frame(stream: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** Where frames go: the HTTP response, which says when it has room again. */
export interface FrameSink {
  write(chunk: Buffer): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

let probe: CliCommand | undefined;

/** True when the command line names a command the daemon must not run for the client. */
export function runsLocally(argv: readonly string[]): boolean {
  // One tree for every check: finding a command parses nothing, so it stays as built.
  probe ??= buildProgram(quietIo(), { loadDaemon: refuseDaemon });
  return commandOf(probe, argv).local;
}

/**
 * Runs argv as `bpfnet` would with env as its environment and an empty stdin, writing frames to
 * sink; gone (the client left) is Ctrl-C. Resolves with the exit status once its frame is written.
 */
export async function runForThinClient(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  sink: FrameSink,
  connect: () => Client,
  gone: AbortSignal,
): Promise<number> {
  const stream = (kind: number) =>
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        if (gone.aborted || sink.write(frame(kind, chunk))) return done();
        const onDrain = () => {
          gone.removeEventListener('abort', onDrain);
          done();
        };
        sink.once('drain', onDrain);
        gone.addEventListener('abort', onDrain, { once: true });
      },
    });
  const stdout = stream(FRAME_STDOUT);
  const stderr = stream(FRAME_STDERR);
  const io: Io = {
    stdout,
    stderr,
    stdin: Readable.from([]),
    env,
    now: () => Date.now(),
    onInterrupt(listener) {
      if (gone.aborted) {
        queueMicrotask(listener);
        return () => undefined;
      }
      gone.addEventListener('abort', listener, { once: true });
      return () => gone.removeEventListener('abort', listener);
    },
  };
  const status = await runCli(argv, io, { loadDaemon: refuseDaemon, connect });
  await Promise.all([stdout, stderr].map((s) => new Promise<void>((resolve) => s.end(() => resolve()))));
  if (!gone.aborted) sink.write(frame(FRAME_EXIT, Buffer.from(String(status))));
  return status;
}

function refuseDaemon(): never {
  throw new Error('bpfnet daemon runs in its own process, not inside another daemon');
}

function quietIo(): Io {
  const sink = new Writable({ write: (_c, _e, done) => done() });
  return { stdout: sink, stderr: sink, stdin: Readable.from([]), env: {}, now: () => Date.now(), onInterrupt: () => () => undefined };
}
