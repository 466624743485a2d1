// Child processes of the harness. Each runs under `setpriv --pdeathsig TERM`, so the kernel stops it
// when the process that started it dies, even by SIGKILL: an interrupted test run leaves nothing behind.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, readFileSync } from "node:fs";
import { once } from "node:events";

export class ManagedProcess {
  private exited = false;
  private readonly exitPromise: Promise<void>;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.exitPromise = once(child, "exit").then(() => {
      this.exited = true;
    });
  }

  static start(name: string, binary: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): ManagedProcess {
    const log = createWriteStream(logFile, { flags: "a" });
    const child = spawn("setpriv", ["--pdeathsig", "TERM", "--", binary, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: env ?? process.env,
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    return new ManagedProcess(name, child, logFile);
  }

  get running(): boolean {
    return !this.exited;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The last lines of the log, for error messages. */
  tail(lines = 20): string {
    try {
      return readFileSync(this.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  async stop(graceMs = 10_000): Promise<void> {
    if (this.exited) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exitPromise;
    clearTimeout(timer);
  }
}

/** Whether a process exists and is not a zombie waiting to be reaped (PID 1 here may never reap). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}
