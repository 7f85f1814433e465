/**
 * The offline container image the engine suites, the demo and the bench run: Debian's static
 * busybox in an otherwise empty root filesystem. There is no registry on these machines, so
 * dockerd and podman get it by `import` of the tarball built here (`docker import`/`podman import`).
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runRaw } from '../system/exec.js';

/** Debian's busybox-static installs here; the dynamic `busybox` package would fail inside the image. */
export const STATIC_BUSYBOX = '/bin/busybox';

/** Applets the suites use inside containers (shell, networking tools, a web server). */
const APPLETS = [
  'sh', 'ash', 'cat', 'echo', 'ls', 'sleep', 'true', 'false', 'hostname', 'ip', 'ifconfig', 'route',
  'ping', 'ping6', 'nc', 'wget', 'httpd', 'nslookup', 'udhcpc', 'sed', 'grep', 'awk', 'head', 'tail',
  'env', 'id', 'ps', 'kill', 'mkdir', 'rm', 'tee', 'timeout', 'seq', 'printf', 'arp', 'netstat',
];

async function assertStatic(): Promise<void> {
  if (!existsSync(STATIC_BUSYBOX)) throw new Error(`${STATIC_BUSYBOX} is missing: install busybox-static (scripts/bootstrap.sh does)`);
  // A static binary has no program interpreter (ELF PT_INTERP); ldd says so in every locale.
  const r = await runRaw('ldd', [STATIC_BUSYBOX]);
  if (r.code === 0 && /=>|ld-linux/.test(r.stdout)) {
    throw new Error(`${STATIC_BUSYBOX} is dynamically linked: install busybox-static, which works inside an empty image`);
  }
}

/** Lays out the image's root filesystem in `dir` (created if missing). */
export async function buildBusyboxRootfs(dir: string): Promise<void> {
  await assertStatic();
  for (const sub of ['bin', 'etc', 'tmp', 'www', 'proc', 'sys', 'dev']) mkdirSync(join(dir, sub), { recursive: true });
  copyFileSync(STATIC_BUSYBOX, join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  for (const applet of APPLETS) {
    const link = join(dir, 'bin', applet);
    if (!existsSync(link)) symlinkSync('busybox', link);
  }
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  writeFileSync(join(dir, 'www/index.html'), 'bpfnet\n');
}

/** Writes the image as a tarball at `tarPath` (for `docker import` / `podman import`). */
export async function buildBusyboxTarball(tarPath: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bpfnet-rootfs-'));
  try {
    await buildBusyboxRootfs(dir);
    await run('tar', ['-C', dir, '-cf', tarPath, '.']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The command line that starts the image's web server in the foreground on `port` (default 80). */
export function busyboxHttpd(port = 80): string[] {
  return ['/bin/httpd', '-f', '-p', String(port), '-h', '/www'];
}
