/**
 * The exec/attach stream (NDJSON ExecFrame lines): output chunks to stdout/stderr as they
 * come, then the exit code the process ended with.
 */
import type { CallOptions } from './client.js';
import type { CliContext } from './context.js';
import { writeChunk } from './io.js';

/** docker's status when the command could not be run at all. */
export const EXIT_CANNOT_RUN = 126;

export async function relayFrames(cli: CliContext, method: string, path: string, options: CallOptions): Promise<number> {
  let exitCode: number | undefined;
  let failure: string | undefined;
  await cli.client().stream(method, path, options, async (value) => {
    const frame = (value ?? {}) as { Stream?: unknown; Data?: unknown; ExitCode?: unknown; Error?: unknown };
    if ((frame.Stream === 'stdout' || frame.Stream === 'stderr') && typeof frame.Data === 'string') {
      await writeChunk(frame.Stream === 'stderr' ? cli.io.stderr : cli.io.stdout, Buffer.from(frame.Data, 'base64'));
    } else if (typeof frame.ExitCode === 'number') {
      exitCode = frame.ExitCode;
    } else if (typeof frame.Error === 'string') {
      failure = frame.Error;
    }
    // Frames of other shapes are newer than this client: skipped.
  });
  if (failure !== undefined) {
    cli.printErr(`${failure}\n`);
    return EXIT_CANNOT_RUN;
  }
  if (exitCode === undefined) throw new Error('the daemon closed the stream before the process exited');
  // A process status is a byte; the daemon may report a signal death as 128+n or as negative.
  return exitCode < 0 ? 128 + Math.min(-exitCode, 127) : exitCode & 0xff;
}
