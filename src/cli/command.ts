/**
 * commander's Command, taught docker's `--flag=true|false` spelling for boolean flags
 * (`network create --ipv4=false`, `ps --no-trunc=true`): pflag accepts it, commander does not.
 */
import { Command, type Option, type ParseOptionsResult } from 'commander';

// strconv.ParseBool, which pflag uses for boolean flags.
const GO_BOOLS: Record<string, boolean> = {
  '1': true, t: true, T: true, TRUE: true, true: true, True: true,
  '0': false, f: false, F: false, FALSE: false, false: false, False: false,
};

export class CliCommand extends Command {
  #passThrough = false;
  #local = false;

  /**
   * This command needs the user's own process (it becomes the daemon, or asks a question on the
   * terminal): the daemon never runs it for the thin client (src/cli/remote.ts).
   */
  runsLocally(): this {
    this.#local = true;
    return this;
  }

  get local(): boolean {
    return this.#local;
  }

  override createCommand(name?: string): CliCommand {
    return new CliCommand(name);
  }

  override passThroughOptions(passThrough = true): this {
    this.#passThrough = passThrough;
    return super.passThroughOptions(passThrough);
  }

  override parseOptions(argv: string[]): ParseOptionsResult {
    return super.parseOptions(this.#rewriteBooleans(argv));
  }

  /** `--x=true` -> `--x`; `--x=false` -> `--no-x` when defined, else nothing (the default). */
  #rewriteBooleans(argv: readonly string[]): string[] {
    const out: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i];
      if (arg === '--') {
        out.push(...argv.slice(i));
        break;
      }
      const assignment = /^(--[^=]+)=(.*)$/.exec(arg);
      const flag = assignment ? this.#option(assignment[1]) : undefined;
      if (assignment && flag && !flag.required && !flag.optional && Object.hasOwn(GO_BOOLS, assignment[2])) {
        out.push(...this.#spell(flag, GO_BOOLS[assignment[2]]));
        continue;
      }
      out.push(arg);
      if (arg.length > 1 && arg.startsWith('-')) {
        // Skip an option's separate value so it is never mistaken for a flag or an operand.
        if (this.#option(arg)?.required && i + 1 < argv.length) out.push(argv[++i]);
        continue;
      }
      // An operand: run/exec hand everything after it to the command they start.
      if (this.#passThrough) {
        out.push(...argv.slice(i + 1));
        break;
      }
    }
    return out;
  }

  #option(flag: string): Option | undefined {
    return this.options.find((o) => o.long === flag || o.short === flag);
  }

  #spell(option: Option, value: boolean): string[] {
    const long = option.long ?? '';
    if (option.negate) return value ? [long] : [];
    if (value) return [long];
    const negation = `--no-${long.slice(2)}`;
    return this.options.some((o) => o.long === negation) ? [negation] : [];
  }
}
