/**
 * docker's inspect output (cli/command/inspect): one GET per reference, in order; the
 * daemon's JSON re-indented inside `[` `]`, or each object through -f; what was found is
 * printed even when some references fail, and then the errors, exit status 1.
 */
import { ApiError } from './client.js';
import type { CliContext } from './context.js';
import { ExitStatus } from './errors.js';
import { compactJson, indentJson } from './json-indent.js';
import { Template, TemplateError } from './template.js';

/** docker's status for an inspect template it cannot parse. */
const EXIT_BAD_TEMPLATE = 64;

export async function printInspect(
  cli: CliContext,
  refs: readonly string[],
  format: string | undefined,
  fetchRaw: (ref: string) => Promise<string>,
): Promise<void> {
  let template: Template | undefined;
  if (format && format !== 'json') {
    try {
      template = Template.parse(format);
    } catch (err) {
      if (err instanceof TemplateError) throw new ExitStatus(EXIT_BAD_TEMPLATE, err.message);
      throw err;
    }
  }

  const raws: string[] = [];
  const errors: string[] = [];
  for (const ref of refs) {
    try {
      raws.push(await fetchRaw(ref));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      errors.push(err.display);
    }
  }

  if (template) {
    let out = '';
    for (const raw of raws) {
      try {
        out += template.execute(JSON.parse(raw)) + '\n';
      } catch (err) {
        if (!(err instanceof TemplateError)) throw err;
        errors.push(err.message);
      }
    }
    cli.print(out === '' ? '\n' : out);
  } else if (raws.length === 0) {
    cli.print('[]\n');
  } else {
    const array = `[${raws.join(',')}]`;
    cli.print((format === 'json' ? compactJson(array) : indentJson(array)) + '\n');
  }

  if (errors.length > 0) throw new ExitStatus(1, errors.join('\n'));
}
