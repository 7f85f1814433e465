/**
 * The daemon's log: one event per line on stderr (for the journal), logfmt by default or JSON
 * lines, each with a time, a level and a message, plus optional fields. The level can change
 * while running (SIGHUP reload).
 */
const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
export type Level = keyof typeof LEVELS;
export type LogFormat = 'logfmt' | 'json';
export type LogFields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

export interface DaemonLogger extends Logger {
  setLevel(level: Level): void;
  readonly level: Level;
}

/** A logfmt value: bare when it is a plain token, else quoted with \\ " and newlines escaped. */
function logfmtValue(v: string | number | boolean): string {
  const s = String(v);
  return /^[^\s"=\\]+$/.test(s) ? s : `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

export function formatLine(format: LogFormat, time: Date, level: Level, msg: string, fields: LogFields = {}): string {
  const all: Record<string, string | number | boolean> = { time: time.toISOString(), level, msg };
  for (const [k, v] of Object.entries(fields)) if (v !== undefined && !(k in all)) all[k] = v;
  if (format === 'json') return `${JSON.stringify(all)}\n`;
  return `${Object.entries(all)
    .map(([k, v]) => `${k}=${logfmtValue(v)}`)
    .join(' ')}\n`;
}

export function createLogger(level: Level, format: LogFormat = 'logfmt', write: (line: string) => void = (l) => void process.stderr.write(l)): DaemonLogger {
  let min: number = LEVELS[level];
  let current = level;
  const at = (l: Level) => (msg: string, fields?: LogFields) => {
    if (LEVELS[l] >= min) write(formatLine(format, new Date(), l, msg, fields));
  };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    setLevel(l: Level) {
      min = LEVELS[l];
      current = l;
    },
    get level() {
      return current;
    },
  };
}
