import { execFile, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import type { BusFigures } from '../support/bus-monitor.ts';
import { BenchFailure } from './figures.ts';
import { mean } from '../support/stats.ts';
import { sampleProcess } from './proc-stats.ts';
import { openRtuLine } from './rtu-village.ts';
import { Teardown } from './teardown.ts';

/** floor-master.ts's two modes, and floor-master.c: the first one's loop without Node.js. */
export type FloorMode = 'reply-then-gap' | 'one-timer' | 'reply-then-gap-in-c';

export interface FloorOptions {
  terminals: number;
  mode: FloorMode;
  settleS: number;
  sampleS: number;
  nodeFlags: string[];
  progress: (text: string) => void;
}

export interface FloorResult {
  mode: FloorMode;
  cpuPercent: number;
  systemPercent: number;
  rssMeanMb: number;
  /** Times per second the master's main thread slept and was woken. */
  wakeUpsPerS: number;
  bus: BusFigures;
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
// Inside the repository, so that the bundle finds the native serial binding in node_modules/.
const bundleDir = join(repoRoot, 'node_modules/.cache/village-edge-bench');

/**
 * The CPU that keeping the same bus busy costs a process that does nothing else (floor-master.ts with the
 * unit's node flags, or floor-master.c): what the service's idle CPU is to be read against on a given machine.
 */
export async function measureFloor(options: FloorOptions): Promise<FloorResult> {
  const teardown = new Teardown();
  try {
    mkdirSync(bundleDir, { recursive: true });
    const master = options.mode === 'reply-then-gap-in-c' ? await compiledMaster() : await bundledMaster(options);
    const { pair, bus } = await openRtuLine(options.terminals, teardown);
    const child = spawn(master.command, [...master.args, pair.controllerPath, String(options.terminals), ...master.modeArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.stdout.resume();
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let alive = true;
    void exited.then(() => (alive = false));
    teardown.add('floor master', async () => {
      if (alive) child.kill('SIGKILL');
      await exited;
    });
    if (child.pid === undefined) throw new BenchFailure('could not start the floor master');
    const pid = child.pid;
    options.progress(`floor (${options.mode}): pid ${pid}; settling ${options.settleS} s, then sampling ${options.sampleS} s`);
    await sleep(options.settleS * 1000);
    bus.start();
    const sample = await sampleProcess(pid, options.sampleS, () => {
      if (!alive) throw new BenchFailure(`the floor master exited: ${stderr.slice(0, 2000)}`);
    });
    const figures = bus.stop();
    if (figures.requests === 0) throw new BenchFailure(`the floor master sent no request: ${stderr.slice(0, 2000)}`);
    return {
      mode: options.mode,
      cpuPercent: sample.cpuPercent,
      systemPercent: sample.systemPercent,
      rssMeanMb: mean(sample.rssKb) / 1024,
      wakeUpsPerS: sample.wakeUpsPerS,
      bus: figures,
    };
  } finally {
    const problems = await teardown.run();
    for (const problem of problems) console.error(`floor: ${problem}`);
  }
}

interface MasterCommand {
  command: string;
  /** Before the port path and unit count. */
  args: string[];
  /** After them. */
  modeArgs: string[];
}

/** floor-master.ts bundled (so it starts as the built service does), run with the unit's node flags. */
async function bundledMaster(options: FloorOptions): Promise<MasterCommand> {
  const script = join(bundleDir, 'floor-master.mjs');
  await build({
    entryPoints: [join(repoRoot, 'test/bench/floor-master.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    outfile: script,
    external: ['@serialport/bindings-cpp'],
    banner: { js: "import { createRequire as bundleRequire } from 'node:module'; const require = bundleRequire(import.meta.url);" },
    logLevel: 'warning',
  });
  return { command: process.execPath, args: [...options.nodeFlags, script], modeArgs: [options.mode] };
}

/** floor-master.c built with the machine's C compiler; a machine without one skips this row. */
async function compiledMaster(): Promise<MasterCommand> {
  const binary = join(bundleDir, 'floor-master-c');
  await promisify(execFile)('cc', ['-O2', '-o', binary, join(repoRoot, 'test/bench/floor-master.c')]).catch(
    (error: { message?: string; stderr?: string }) => {
      throw new BenchFailure(`cc could not build test/bench/floor-master.c: ${(error.stderr ?? error.message ?? '').trim().slice(0, 500)}`);
    },
  );
  return { command: binary, args: [], modeArgs: [] };
}
