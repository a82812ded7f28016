/**
 * A server process's figures, from procfs: CPU time (utime + stime of every
 * thread, /proc/PID/stat fields 14 and 15, in clock ticks) and memory
 * (VmRSS, and VmHWM: the peak RSS since start or since the last reset
 * through /proc/PID/clear_refs, fs/proc/task_mmu.c CLEAR_REFS_MM_HIWATER_RSS).
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';

/** Clock ticks per second (sysconf(_SC_CLK_TCK)); 100 on every Linux this runs on, asked anyway. */
const CLK_TCK = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** The tick length, the resolution of cpuMicros(). */
export const CPU_TICK_MICROS = 1e6 / CLK_TCK;

/** CPU time the process has used so far, all threads (dead ones included), in µs. */
export async function cpuMicros(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // comm (field 2) may contain spaces and parentheses: count fields after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return ((utime + stime) * 1e6) / CLK_TCK;
}

export interface Memory {
  rssKiB: number;
  peakKiB: number;
  /** The parts of rssKiB: private memory (heap, stacks) and pages of mapped files (the executable, libraries), which every process mapping them shares. */
  anonKiB: number;
  fileKiB: number;
}

export async function memory(pid: number): Promise<Memory> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKiB: kib('VmRSS'), peakKiB: kib('VmHWM'), anonKiB: kib('RssAnon'), fileKiB: kib('RssFile') };
}

/** Makes VmHWM start again from the current RSS, so the next peak read covers one run only. */
export async function resetPeak(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}
