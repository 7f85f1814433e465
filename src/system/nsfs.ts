/**
 * Whether a path is a network namespace, by its file system (nothing else imported: the CNI
 * plugin's bundle uses it too).
 */
import { statfsSync } from 'node:fs';

/** statfs(2) type of a namespace file (a bind mount of one, or /proc/PID/ns/net). */
const NSFS_MAGIC = 0x6e736673;

/**
 * Whether path holds a live network namespace. A name under /run/netns can outlive its
 * namespace: a process killed between unmounting and unlinking (or between creating the
 * file and mounting onto it) leaves a plain empty file, which is not one.
 */
export function isNetnsFile(path: string): boolean {
  try {
    return statfsSync(path).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}
