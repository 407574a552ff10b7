import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = '/sys/fs/cgroup/memory';

/** A cgroup v1 memory group with a hard limit, as the unit's `MemoryMax` puts on the service (TOOLCHAIN.md). */
export interface MemoryCgroup {
  add(pid: number): void;
  /** Times the kernel's OOM killer acted in this group. */
  oomKills(): number;
  /** Needs every process in it gone. */
  remove(): void;
}

export function createMemoryCgroup(name: string, limitBytes: number): MemoryCgroup {
  if (!existsSync(join(ROOT, 'cgroup.procs')))
    throw new Error(`${ROOT} is not a cgroup v1 memory hierarchy: this test needs one, and root, to put the service under a memory limit`);
  const dir = join(ROOT, `${name}-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'memory.limit_in_bytes'), String(limitBytes));
  return {
    add(pid) {
      writeFileSync(join(dir, 'cgroup.procs'), String(pid));
    },
    oomKills() {
      const line = readFileSync(join(dir, 'memory.oom_control'), 'utf8').match(/^oom_kill (\d+)$/m);
      return line === null ? 0 : Number(line[1]);
    },
    remove() {
      if (existsSync(dir)) rmdirSync(dir);
    },
  };
}
