/**
 * What a process costs, read from /proc: CPU seconds (user + system, children not included) and
 * resident memory, now and at its peak (VmHWM, which the kernel keeps for the process's life).
 */
import { readFileSync } from 'node:fs';

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
const TICKS_PER_SECOND = 100;

export function cpuSeconds(pid: number): number {
  // The command name may hold spaces and parentheses: fields are counted after its last ')'.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

function statusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith(`${field}:`));
  if (!line) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(line.split(/\s+/)[1]);
}

export const peakRssMiB = (pid: number): number => statusKiB(pid, 'VmHWM') / 1024;
export const rssMiB = (pid: number): number => statusKiB(pid, 'VmRSS') / 1024;

/** CPU seconds each named process spent between `start()` and `stop()`. */
export function cpuMeter(pids: Record<string, number>): { stop(): Record<string, number> } {
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
  return {
    stop: () =>
      Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid) - (before[name] ?? 0)])),
  };
}
