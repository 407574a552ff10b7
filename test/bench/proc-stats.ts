import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

// What /proc says about a process we measure: CPU ticks (whole and per thread) and memory.

/** utime and stime of a process, in clock ticks (/proc/<pid>/stat fields 14 and 15), and its thread count. */
function cpuTicks(pid: number): { user: number; system: number; threads: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its end.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]), system: Number(fields[12]), threads: Number(fields[17]) };
}

/** utime + stime per thread (/proc/<pid>/task/<tid>/stat), keyed by tid, with the thread's name. */
function threadTicks(pid: number): Map<string, { name: string; ticks: number }> {
  const threads = new Map<string, { name: string; ticks: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      threads.set(tid, { name: tid === String(pid) ? `${name} (main)` : name, ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // The thread ended between listing and reading.
    }
  }
  return threads;
}

/** CPU % of a core per thread name over the window; threads that came and went count from zero. */
function threadShares(
  first: Map<string, { name: string; ticks: number }>,
  last: Map<string, { name: string; ticks: number }>,
  ticksPerSecond: number,
  elapsedS: number,
): Array<{ name: string; percent: number }> {
  const byName = new Map<string, number>();
  for (const [tid, { name, ticks }] of last) byName.set(name, (byName.get(name) ?? 0) + ticks - (first.get(tid)?.ticks ?? 0));
  return [...byName.entries()]
    .map(([name, ticks]) => ({ name, percent: (ticks / ticksPerSecond / elapsedS) * 100 }))
    .filter((t) => t.percent > 0)
    .sort((a, b) => b.percent - a.percent);
}

export function memoryKb(pid: number): { rssKb: number; hwmKb: number; rssFileKb: number; rssAnonKb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssKb: field('VmRSS'), hwmKb: field('VmHWM'), rssFileKb: field('RssFile'), rssAnonKb: field('RssAnon') };
}

/**
 * How often the main thread went to sleep and was woken (voluntary context switches, from
 * /proc/<pid>/task/<pid>/status): a count, so unlike CPU time it does not vary with the machine's load.
 */
function mainThreadWakeUps(pid: number): number {
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  return Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN);
}

/** USER_HZ, the unit of /proc/<pid>/stat times. */
function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

export interface ProcessSample {
  elapsedS: number;
  /** utime + stime over the window, in % of one core. */
  cpuPercent: number;
  /** The kernel's share of cpuPercent (stime). */
  systemPercent: number;
  threads: number;
  /** VmRSS once a second, in kB. */
  rssKb: number[];
  /** CPU % of one core per thread name, busiest first. */
  threadCpu: Array<{ name: string; percent: number }>;
  /** Times per second the main thread slept and was woken (timer, I/O or lock). */
  wakeUpsPerS: number;
}

/**
 * CPU and RSS of a running process over `seconds`, RSS read once a second. `check` runs after each read
 * and may throw to abandon the window (the process died).
 */
export async function sampleProcess(pid: number, seconds: number, check: () => void = () => undefined): Promise<ProcessSample> {
  const ticksPerSecond = clockTicks();
  const first = cpuTicks(pid);
  const firstThreads = threadTicks(pid);
  const firstWakeUps = mainThreadWakeUps(pid);
  const startedAt = performance.now();
  const rssKb: number[] = [];
  while (performance.now() - startedAt < seconds * 1000) {
    await sleep(1000);
    rssKb.push(memoryKb(pid).rssKb);
    check();
  }
  const last = cpuTicks(pid);
  const lastThreads = threadTicks(pid);
  const lastWakeUps = mainThreadWakeUps(pid);
  const elapsedS = (performance.now() - startedAt) / 1000;
  return {
    elapsedS,
    cpuPercent: ((last.user + last.system - first.user - first.system) / ticksPerSecond / elapsedS) * 100,
    systemPercent: ((last.system - first.system) / ticksPerSecond / elapsedS) * 100,
    threads: last.threads,
    rssKb,
    threadCpu: threadShares(firstThreads, lastThreads, ticksPerSecond, elapsedS),
    wakeUpsPerS: (lastWakeUps - firstWakeUps) / elapsedS,
  };
}
