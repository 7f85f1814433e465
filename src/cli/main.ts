/** Entry of the `bpfnet` executable (bin/bpfnet): one command line, one exit status. */
import { processIo } from './io.js';
import { runCli } from './program.js';

// exitCode rather than exit(): pending writes to a piped stdout are flushed before Node exits.
process.exitCode = await runCli(process.argv.slice(2), processIo());
