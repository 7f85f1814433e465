/**
 * The process around a command: its streams, environment, clock and Ctrl-C. Commands take
 * this instead of touching `process`, so tests run them in-process with fake streams.
 */
export interface Io {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly stdin: NodeJS.ReadableStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls listener on Ctrl-C instead of dying; returns the function that stops listening. */
  onInterrupt(listener: () => void): () => void;
}

export function processIo(): Io {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      // The reader went away (`bpfnet exec x yes | head -1`): end as a Go program does on SIGPIPE,
      // silently, instead of Node's unhandled-error trace.
      if (err.code === 'EPIPE') process.exit(128 + 13);
      throw err;
    });
  }
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    now: () => Date.now(),
    onInterrupt(listener) {
      process.on('SIGINT', listener);
      return () => process.off('SIGINT', listener);
    },
  };
}

/** Writes a chunk and waits when the stream is full, so a chatty exec cannot balloon memory. */
export function writeChunk(stream: NodeJS.WritableStream, chunk: string | Uint8Array): Promise<void> {
  if (stream.write(chunk)) return Promise.resolve();
  return new Promise((resolve) => stream.once('drain', () => resolve()));
}

/** Reads one line (without its newline) from stdin; at end of input, what was read so far. */
export function readLine(stdin: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const finish = (line: string) => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.off('error', onError);
      // A paused stdin no longer holds the event loop open once the command is done.
      stdin.pause();
      resolve(line);
    };
    const onData = (chunk: Buffer | string) => {
      text += chunk.toString();
      const newline = text.indexOf('\n');
      if (newline >= 0) finish(text.slice(0, newline).replace(/\r$/, ''));
    };
    const onEnd = () => finish(text);
    const onError = (err: Error) => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      reject(err);
    };
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.on('error', onError);
    stdin.resume();
  });
}
