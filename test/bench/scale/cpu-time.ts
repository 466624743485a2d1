// Where the machine's CPU went during a backup: each process's user and system time, from /proc (the
// control plane's processes, the operator) and from process.cpuUsage() (this harness: the simulated agents,
// the timeline's watches). At 1,000 nodes the whole simulation shares the machine's cores with the operator,
// so the CPU it leaves is what bounds the backup once nothing waits for anything else.
import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) the process has used, undefined when it is gone. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its end.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

const harnessCpuSeconds = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

/** CPU seconds of each named process at one moment. */
export type CpuSample = Record<string, number>;

export function sampleCpu(processes: ReadonlyArray<{ name: string; pid: number | undefined }>): CpuSample {
  const sample: CpuSample = { harness: harnessCpuSeconds() };
  for (const { name, pid } of processes) {
    const seconds = pid === undefined ? undefined : processCpuSeconds(pid);
    if (seconds !== undefined) sample[name] = seconds;
  }
  return sample;
}

/** CPU seconds each process used between two samples, largest first. */
export function cpuBetween(before: CpuSample, after: CpuSample): Array<{ name: string; seconds: number }> {
  return Object.keys(after)
    .filter((name) => before[name] !== undefined)
    .map((name) => ({ name, seconds: after[name]! - before[name]! }))
    .sort((a, b) => b.seconds - a.seconds);
}
