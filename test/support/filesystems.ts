import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

/**
 * Real file systems for storage faults (TOOLCHAIN.md, "Faults a village meets"): a tmpfs that can be filled
 * to the last byte, and a loop-mounted ext4 with `errors=remount-ro` that can be made to turn read-only
 * while files on it are open. Both need root; `mountSkipReason` says why a test cannot run here.
 */

export function mountSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to mount file systems';
  return undefined;
}

export interface TestMount {
  readonly dir: string;
  unmount(): void;
}

function mountPoint(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A tmpfs of `sizeBytes` (read-only when asked: a data directory that takes no writes from the start). */
export function mountTmpfs(sizeBytes: number, options: { readOnly?: boolean } = {}): TestMount & { fill(): void; unfill(): void } {
  const dir = mountPoint('ve-tmpfs-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}${options.readOnly ? ',ro' : ''}`, 'tmpfs', dir]);
  const filler = join(dir, 'filler');
  return {
    dir,
    /** Takes every free byte, as journald or a media download would. */
    fill() {
      const fd = openSync(filler, 'a');
      const chunk = Buffer.alloc(4096, 1);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      } finally {
        closeSync(fd);
      }
    },
    unfill() {
      rmSync(filler, { force: true });
    },
    unmount() {
      unmountQuietly(dir);
    },
  };
}

/** An ext4 image on a loop device, mounted `errors=remount-ro`; `turnReadOnly` makes the kernel see an error. */
export function mountLoopExt4(sizeMb: number): TestMount & { turnReadOnly(): void } {
  const dir = mountPoint('ve-ext4-');
  const image = `${dir}.img`;
  writeFileSync(image, '');
  execFileSync('truncate', ['-s', `${sizeMb}M`, image]);
  execFileSync('mkfs.ext4', ['-q', '-F', image]);
  execFileSync('mount', ['-o', 'loop,errors=remount-ro', image, dir]);
  const device = basename(execFileSync('findmnt', ['-n', '-o', 'SOURCE', dir], { encoding: 'utf8' }).trim());
  return {
    dir,
    turnReadOnly() {
      writeFileSync(`/sys/fs/ext4/${device}/trigger_fs_error`, '1');
    },
    unmount() {
      unmountQuietly(dir);
      rmSync(image, { force: true });
    },
  };
}

function unmountQuietly(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'ignore' });
  } catch {
    // lazily, so a test that failed with files still open does not leave the mount behind
    execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
  }
  rmSync(dir, { recursive: true, force: true });
}
