// The operator as its own process (`fedbackup operator` from source, as its ServiceAccount with the RBAC of
// deploy/), which a chaos scenario can SIGKILL at any moment and start again, as a node failure or an OOM
// kill and the Deployment's restart would.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, writeFileSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT } from "../harness/binaries.js";
import type { ControlPlane } from "../harness/control-plane.js";

export const OPERATOR_NAMESPACE = "fedbackup-system";

export class OperatorProcess {
  private child?: ChildProcess;
  private exited?: Promise<void>;
  /** How many times it was started. */
  starts = 0;
  /** Exits nobody asked for (a crash), with their code or signal. */
  readonly crashes: string[] = [];
  private killing = false;

  constructor(
    private readonly cp: ControlPlane,
    private readonly dir: string,
  ) {}

  async start(): Promise<void> {
    if (this.child) return;
    const kubeconfig = path.join(this.dir, "operator.kubeconfig");
    // A whole `make chaos` takes hours: a one-hour token ran out in the middle of it (every request then
    // Unauthorized), which a Deployment's operator never sees, its token being rotated by the kubelet.
    const config = await this.cp.serviceAccountKubeconfigYaml(OPERATOR_NAMESPACE, "fedbackup-operator", 24 * 3600);
    writeFileSync(kubeconfig, config, {
      mode: 0o600,
    });
    const log = createWriteStream(path.join(this.dir, "operator.log"), { flags: "a" });
    const child = spawn(
      "setpriv",
      [
        "--pdeathsig",
        "KILL",
        "--",
        process.execPath,
        "--import",
        "tsx",
        path.join(REPO_ROOT, "src/cli/main.ts"),
        "operator",
        `--kubeconfig=${kubeconfig}`,
        `--namespace=${OPERATOR_NAMESPACE}`,
        "--agent-image=fedbackup:test",
        "--metrics-bind-address=0",
        "--health-bind-address=0",
        "--lease-duration=15",
      ],
      {
        cwd: REPO_ROOT,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, FEDBACKUP_LOG_LEVEL: process.env.CHAOS_OPERATOR_LOG_LEVEL ?? "warn" },
      },
    );
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.child = child;
    this.starts++;
    this.exited = new Promise<void>((resolve) =>
      child.once("exit", (code, signal) => {
        if (!this.killing) this.crashes.push(`exited with ${signal ?? `code ${code}`}`);
        if (this.child === child) this.child = undefined;
        resolve();
      }),
    );
  }

  /** SIGKILL, and wait until it is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.killing = true;
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await this.exited;
    this.killing = false;
    this.child = undefined;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }
}
