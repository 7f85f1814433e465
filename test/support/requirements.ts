// What the kernel tests need, checked up front: a missing piece fails the run with its
// name and the package that provides it, never a silent skip.
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Everything missing for the kernel project, as sentences; empty when it can run. */
export function missingForKernelTests(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('it needs root (real namespaces, BPF programs and packets): run `npm test` as root');
  else if (!readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === '/sys/fs/bpf' && l.split(' ')[2] === 'bpf'))
    missing.push('bpffs is not mounted at /sys/fs/bpf: run scripts/bootstrap.sh');
  return missing;
}

/** The path of an executable on PATH (what `command -v` finds), or undefined. */
export function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* not in this directory */
    }
  }
  return undefined;
}

/** The path of a required executable; throws naming it and its Debian package when absent. */
export function requireTool(name: string, aptPackage: string): string {
  const path = findOnPath(name);
  if (path === undefined) throw new Error(`${name} is not installed (apt package ${aptPackage}; scripts/bootstrap.sh installs it)`);
  return path;
}

/** Requires every file to exist and be executable; throws naming the first missing one. */
export function requireFiles(files: readonly string[], aptPackage: string): void {
  for (const f of files) {
    try {
      accessSync(f, constants.X_OK);
    } catch {
      throw new Error(`${f} is missing (apt package ${aptPackage}; scripts/bootstrap.sh installs it)`);
    }
  }
}
