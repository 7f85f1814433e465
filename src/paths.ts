import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The checkout's root: the nearest folder above this file holding package.json.
// Works from src/ (vitest, tsx) and from dist/src/ (compiled) alike.
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`bpfnet: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}

export const projectRoot = findRoot();

/** Where the BPF objects are built (bpf/Makefile). */
export const bpfObjectDir = join(projectRoot, 'build', 'bpf');

/** A built BPF object by its source name, e.g. bpfObject('probe_tc') -> build/bpf/probe_tc.bpf.o */
export function bpfObject(name: string): string {
  return join(bpfObjectDir, `${name}.bpf.o`);
}

/** The compiled native addon. */
export const addonPath = join(projectRoot, 'build', 'Release', 'bpfnet.node');

/** The thin client (client/bpfnet.c), which bin/bpfnet starts once the bootstrap has built it. */
export const thinClientPath = join(projectRoot, 'build', 'bin', 'bpfnet');

/** The compiled CLI entry point (the Node CLI). */
export const cliPath = join(projectRoot, 'dist', 'src', 'cli', 'main.js');
