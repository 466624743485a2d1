// The operator of the scale benchmark: `fedbackup operator` as its own process, as its ServiceAccount with
// the chart's RBAC (deploy/rbac.yaml), of the committed HEAD (default) or the working tree, either compiled
// with tsc (the default: what a container runs) or from source through tsx. Its memory is sampled while it runs: resident set from /proc (VmRSS, and VmHWM, the
// kernel's peak), heap from its own /metrics (prom-client's nodejs_heap_size_used_bytes).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as yaml from "js-yaml";
import type { KubeClient } from "../../../src/k8s/client.js";
import { Resources, type ResourceType } from "../../../src/k8s/resources.js";
import type { KubeObject } from "../../../src/k8s/types.js";
import type { ControlPlane } from "../../harness/control-plane.js";
import { operatorDeployment, operatorEnv } from "../../harness/operator-deployment.js";
import { freePort } from "../../harness/ports.js";
import { REPO_ROOT, run } from "../common.js";
import { parsePrometheus, valueOf, type Sample } from "./prometheus.js";

export const OPERATOR_NAMESPACE = "fedbackup-system";
export type OperatorBuild = "compiled" | "tsx";
/** head: the committed HEAD (what main has), taken out with git archive; tree: the working tree as it is. */
export type OperatorSource = "head" | "tree";

const WORK_DIR = path.join(REPO_ROOT, "bench-results", "scale-operator");

export interface PreparedOperator {
  /** The command that runs the CLI (`operator` and its flags follow). */
  command: string[];
  /** The CRDs and the operator's RBAC (deploy/rbac.yaml) of the same source. */
  crds: string;
  rbac: string;
  /** The commit, and whether uncommitted changes were included. */
  commit: string;
  /** The NODE_OPTIONS the operator runs with (operatorNodeOptions). */
  nodeOptions: string;
}

const git = (args: string[]) => run("git", args, { cwd: REPO_ROOT, capture: true }).then((s) => s.trim());

/**
 * The operator to run, of `source`. Its files stay inside the repository (bench-results/, ignored by git)
 * so that their imports find node_modules. Compiled: tsc of src/ (tsconfig.build.json); type errors (a
 * change under way in the working tree) are reported but do not stop the run while tsc emitted.
 */
export async function prepareOperator(
  source: OperatorSource,
  build: OperatorBuild,
  log: (m: string) => void,
): Promise<PreparedOperator> {
  const head = await git(["rev-parse", "--short=12", "HEAD"]);
  let root = REPO_ROOT;
  let commit = head;
  if (source === "head") {
    root = path.join(WORK_DIR, head);
    if (!existsSync(path.join(root, "package.json"))) {
      rmSync(root, { recursive: true, force: true });
      mkdirSync(root, { recursive: true });
      const files = ["src", "crds", "deploy", "package.json", "tsconfig.json", "tsconfig.build.json"];
      await run("sh", ["-c", 'git archive HEAD "$@" | tar -x -C "$0"', root, ...files], { cwd: REPO_ROOT });
    }
  } else if (await git(["status", "--porcelain", "--untracked-files=no", "--", "src", "crds", "deploy"])) {
    commit = `${head} with uncommitted changes`;
  }
  const paths = {
    crds: path.join(root, "crds"),
    rbac: path.join(root, "deploy/rbac.yaml"),
    commit,
    nodeOptions: operatorNodeOptions(root),
  };
  if (build === "tsx")
    return { ...paths, command: [process.execPath, "--import", "tsx", path.join(root, "src/cli/main.ts")] };
  const outDir = path.join(WORK_DIR, source === "head" ? path.join(head, "dist") : "tree-dist");
  rmSync(outDir, { recursive: true, force: true });
  try {
    await run(
      path.join(REPO_ROOT, "node_modules/.bin/tsc"),
      ["-p", path.join(root, "tsconfig.build.json"), "--outDir", outDir],
      {
        capture: true,
      },
    );
  } catch (err) {
    log(`tsc reported errors (the operator is run as emitted): ${String(err).slice(0, 400)}`);
  }
  const main = path.join(outDir, "src/cli/main.js");
  if (!existsSync(main)) throw new Error(`tsc emitted no ${main}`);
  return { ...paths, command: [process.execPath, main] };
}

const rbacType = (plural: string, kind: string, namespaced: boolean): ResourceType => ({
  group: "rbac.authorization.k8s.io",
  version: "v1",
  plural,
  kind,
  namespaced,
});
const RBAC_TYPES: Record<string, ResourceType> = {
  Namespace: Resources.Namespace,
  ServiceAccount: Resources.ServiceAccount,
  ClusterRole: rbacType("clusterroles", "ClusterRole", false),
  ClusterRoleBinding: rbacType("clusterrolebindings", "ClusterRoleBinding", false),
  Role: rbacType("roles", "Role", true),
  RoleBinding: Resources.RoleBinding,
};

/** Applies a deploy/rbac.yaml, as `kubectl apply -f` would (test/harness/operator-rbac.ts, for any file). */
export async function applyRbac(client: KubeClient, file: string): Promise<void> {
  for (const doc of yaml.loadAll(readFileSync(file, "utf8")) as KubeObject[]) {
    const type = RBAC_TYPES[doc.kind!];
    if (!type) throw new Error(`${file}: unexpected kind ${doc.kind}`);
    await client.apply(type, doc);
  }
}

function getText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 5_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: ${res.statusCode}`))));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

/** A process's memory from /proc/<pid>/status, in bytes. */
export function procMemory(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
    return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
  } catch {
    return undefined;
  }
}

export interface MemoryPeaks {
  /** VmHWM when last read: the kernel's peak resident set. */
  hwmBytes: number;
  /** The largest heap in use seen on /metrics. */
  heapUsedBytes: number;
  /** The largest heap size (V8's total) seen on /metrics. */
  heapTotalBytes: number;
}

export class OperatorProcess {
  readonly peaks: MemoryPeaks = { hwmBytes: 0, heapUsedBytes: 0, heapTotalBytes: 0 };
  private sampling?: Promise<void>;
  private readonly abort = new AbortController();

  private constructor(
    readonly child: ChildProcess,
    readonly metricsUrl: string,
    private readonly dir: string,
    private readonly exited: Promise<void>,
  ) {}

  static async start(cp: ControlPlane, admin: KubeClient, prepared: PreparedOperator): Promise<OperatorProcess> {
    await applyRbac(admin, prepared.rbac);
    const dir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-scale-operator-"));
    const kubeconfig = path.join(dir, "kubeconfig");
    // Valid for longer than the slowest size's run (nothing rotates it as a kubelet would).
    const config = await cp.serviceAccountKubeconfigYaml(OPERATOR_NAMESPACE, "fedbackup-operator", 6 * 3600);
    writeFileSync(kubeconfig, config, { mode: 0o600 });
    const [metricsPort, healthPort] = [await freePort(), await freePort()];
    const [program, ...args] = prepared.command;
    const child = spawn(
      "setpriv",
      [
        "--pdeathsig",
        "KILL",
        "--",
        program!,
        ...args,
        "operator",
        `--kubeconfig=${kubeconfig}`,
        `--namespace=${OPERATOR_NAMESPACE}`,
        "--agent-image=fedbackup:bench",
        `--metrics-bind-address=127.0.0.1:${metricsPort}`,
        `--health-bind-address=127.0.0.1:${healthPort}`,
        "--lease-duration=15",
        "--log-level=error",
      ],
      {
        cwd: REPO_ROOT,
        stdio: ["ignore", "ignore", "inherit"],
        // Node's options for the operator alone: the chart's, or SCALE_OPERATOR_NODE_OPTIONS.
        env: {
          ...process.env,
          NODE_OPTIONS: prepared.nodeOptions,
        },
      },
    );
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const op = new OperatorProcess(child, `http://127.0.0.1:${metricsPort}/metrics`, dir, exited);
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error("the operator exited while starting");
      const ready = await getText(`http://127.0.0.1:${healthPort}/readyz`).then(
        () => true,
        () => false,
      );
      if (ready) break;
      if (Date.now() > deadline) throw new Error("the operator was not ready within 120 s");
      await sleep(200);
    }
    op.sampling = op.sample();
    return op;
  }

  get pid(): number {
    return this.child.pid!;
  }

  async metrics(): Promise<Sample[]> {
    return parsePrometheus(await getText(this.metricsUrl));
  }

  /** Memory every second: VmHWM from /proc, the heap from /metrics. */
  private async sample(): Promise<void> {
    while (!this.abort.signal.aborted) {
      this.readMemory();
      try {
        const samples = await this.metrics();
        this.peaks.heapUsedBytes = Math.max(
          this.peaks.heapUsedBytes,
          valueOf(samples, "fedbackup_nodejs_heap_size_used_bytes") ?? 0,
        );
        this.peaks.heapTotalBytes = Math.max(
          this.peaks.heapTotalBytes,
          valueOf(samples, "fedbackup_nodejs_heap_size_total_bytes") ?? 0,
        );
      } catch {
        // a scrape that fails (the operator busy) is skipped
      }
      await sleep(1_000, undefined, { signal: this.abort.signal }).catch(() => {});
    }
  }

  private readMemory(): void {
    const mem = procMemory(this.pid);
    if (mem) this.peaks.hwmBytes = Math.max(this.peaks.hwmBytes, mem.hwm);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.sampling;
    this.readMemory();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 15_000);
    await this.exited;
    clearTimeout(timer);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * The operator's NODE_OPTIONS: SCALE_OPERATOR_NODE_OPTIONS, else what the chart sets for its container with its
 * default values, in the rendered Deployment of the source that runs (`root`).
 */
function operatorNodeOptions(root: string): string {
  if (process.env.SCALE_OPERATOR_NODE_OPTIONS !== undefined) return process.env.SCALE_OPERATOR_NODE_OPTIONS;
  return operatorEnv(operatorDeployment(path.join(root, "deploy/workload.yaml")), "NODE_OPTIONS") ?? "";
}
