/** The demo's way of showing a command: the line a user would type, then what it printed. */
import type { LabDaemon } from '../lab/daemon.js';
import type { RunResult } from '../system/exec.js';

export type Say = (line?: string) => void;

/** Returns show(...args): runs `bpfnet ARGS` against d, echoing it and its output (indented by `indent`). */
export function commandEcho(d: LabDaemon, say: Say, indent = ''): (...args: string[]) => Promise<RunResult> {
  return async (...args: string[]) => {
    say(`$ bpfnet ${args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
    const r = await d.cli(args);
    const text = `${r.stdout}${r.stderr}`.trimEnd();
    if (text) say(indent ? text.replace(/^/gm, indent) : text);
    return r;
  };
}
