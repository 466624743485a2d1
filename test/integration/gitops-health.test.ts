// The Argo CD health checks in deploy/gitops/ run by a real Lua interpreter (Debian's lua5.4 or lua5.3,
// installed by `make test-tools`; lua5.1 too, if installed) against the status objects a real backup and
// restore produce: Progressing while they run, Healthy when Completed, Degraded when Failed or
// PartiallyFailed. And what a GitOps tool does on every sync, re-applying an unchanged FederatedBackup,
// starts no new work.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as yaml from "js-yaml";
import type { FederatedBackup, WorkloadRestore } from "../../src/api/v1alpha1/index.js";
import { Resources, type ResourceType } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { REPO_ROOT } from "../harness/binaries.js";
import { SimulatedVmController } from "../harness/kubevirt-vms.js";
import { createVirtualMachine, createVm, NODE_MOUNT_PATH } from "../harness/workloads.js";
import { BackupObserver } from "./backup-observer.js";
import {
  adminClient,
  backupEnv,
  kubevirtDouble,
  podRunner,
  startOperator,
  waitFor,
  type BackupEnv,
  type RunningOperator,
  withoutLocationValidations,
} from "./operator-env.js";
import { cluster } from "./setup.js";

type Kind = "FederatedBackup" | "WorkloadRestore";
type Backup = FederatedBackup & KubeObject;
type Restore = WorkloadRestore & KubeObject;
type Health = { status: string; message: string };
const FINISHED = ["Completed", "PartiallyFailed", "Failed"];

/** Every Lua interpreter on PATH, newest first: lua5.4 or lua5.3 (make test-tools), and lua5.1 (Argo CD's dialect) if there. */
function findLuas(): string[] {
  const found: string[] = [];
  for (const name of ["lua5.4", "lua5.3", "lua5.1"]) {
    for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
      try {
        accessSync(path.join(dir, name), constants.X_OK);
        found.push(path.join(dir, name));
        break;
      } catch {
        // not here
      }
    }
  }
  return found;
}

/** A Lua string literal of `s`: printable ASCII as is, every other byte as a decimal escape (any Lua version). */
function luaString(s: string): string {
  let out = '"';
  for (const byte of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(byte);
    out += byte >= 0x20 && byte < 0x7f && c !== '"' && c !== "\\" ? c : `\\${String(byte).padStart(3, "0")}`;
  }
  return `${out}"`;
}

/** JSON as a Lua table constructor, as Argo CD hands a resource to a health script (`obj`). */
export function luaValue(v: unknown): string {
  if (v === null || v === undefined) return "nil";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toString();
  if (typeof v === "string") return luaString(v);
  if (Array.isArray(v)) return `{${v.map(luaValue).join(", ")}}`;
  return `{${Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== null && x !== undefined)
    .map(([k, x]) => `[${luaString(k)}] = ${luaValue(x)}`)
    .join(", ")}}`;
}

describe("Argo CD health checks (deploy/gitops) against real status objects", function () {
  this.timeout(300_000);
  const luas = findLuas();
  let env: BackupEnv;
  let operator: RunningOperator;
  let sim: SimulatedVmController;
  let observer: BackupObserver;
  let dir: string;

  function health(kind: Kind, obj: unknown): Health {
    const script = path.join(REPO_ROOT, "deploy/gitops/fedbackup.io", kind, "health.lua");
    const program = `obj = ${luaValue(obj)}\nlocal hs = dofile(${luaString(script)})\nio.write(hs.status, "\\n", hs.message or "")\n`;
    // Every interpreter found must give the same answer (the scripts are meant for Lua 5.1 and later).
    const answers = luas.map((lua) => {
      const out = execFileSync(lua, ["-"], { input: program, encoding: "utf8" });
      const [status = "", ...message] = out.split("\n");
      return { status, message: message.join("\n") };
    });
    for (const [i, a] of answers.entries()) assert.deepEqual(a, answers[0], `${luas[i]} differs from ${luas[0]}`);
    return answers[0]!;
  }

  /** Runs kubectl as the harness admin; its warnings go to the returned stderr, not the test output. */
  function kubectl(...args: string[]): string {
    return execFileSync(cluster().binaries.kubectl.path, ["--kubeconfig", cluster().kubeconfigPath, ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  }

  /** Applies `obj` with kubectl (as a GitOps tool does), then records every version of it until it finishes. */
  async function applyAndWatch<T extends KubeObject>(type: ResourceType, obj: T, extra: string[] = []): Promise<T[]> {
    const file = path.join(dir, `${obj.metadata.name}.yaml`);
    writeFileSync(file, yaml.dump(obj));
    kubectl("apply", ...extra, "-f", file);
    const seen: T[] = [];
    await waitFor(`${obj.kind} ${obj.metadata.name} to finish`, 150_000, async () => {
      const now = await adminClient().get<T & { status?: { phase?: string } }>(
        type,
        obj.metadata.namespace,
        obj.metadata.name!,
      );
      if (seen.at(-1)?.metadata.resourceVersion !== now.metadata.resourceVersion) seen.push(now);
      return FINISHED.includes(now.status?.phase ?? "") ? now : undefined;
    });
    return seen;
  }

  function backup(name: string, spec: Partial<FederatedBackup["spec"]> = {}): Backup {
    return {
      apiVersion: "fedbackup.io/v1alpha1",
      kind: "FederatedBackup",
      metadata: { name, namespace: env.namespace },
      spec: {
        sharedVolume: { claimName: env.shared.claimName, nodeMountPath: NODE_MOUNT_PATH },
        location: { persistentVolumeClaim: { claimName: env.location.claimName } },
        snapshot: { method: "Copy" },
        ...spec,
      },
    };
  }

  function restore(name: string, spec: Partial<WorkloadRestore["spec"]>): Restore {
    return {
      apiVersion: "fedbackup.io/v1alpha1",
      kind: "WorkloadRestore",
      metadata: { name, namespace: env.namespace },
      spec: { backupRef: { name: "nightly" }, ...spec },
    };
  }

  /** Each distinct health the versions went through, in order: "Progressing", then "Healthy", say. */
  function healthPath(kind: Kind, versions: KubeObject[]): Array<{ phase: string; health: Health }> {
    const path: Array<{ phase: string; health: Health }> = [];
    for (const v of versions) {
      const phase = (v as { status?: { phase?: string } }).status?.phase ?? "";
      const h = health(kind, v);
      if (path.at(-1)?.phase !== phase || path.at(-1)?.health.status !== h.status) path.push({ phase, health: h });
    }
    return path;
  }

  const condition = (o: Backup | Restore, type: string) => o.status?.conditions?.find((c) => c.type === type);

  before(async function () {
    if (luas.length === 0) {
      console.log("    skipped: no Lua interpreter (lua5.4 or lua5.3) on PATH; `make test-tools` installs it as root");
      this.skip();
    }
    await kubevirtDouble();
    await podRunner();
    env = await backupEnv("gitops");
    dir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-gitops-"));
    sim = new SimulatedVmController(adminClient());
    await sim.start();
    observer = new BackupObserver([env.namespace]);
    await observer.start();
    operator = await startOperator();
    for (const [name, node] of [
      ["web", "node-a"],
      ["db", "node-b"],
    ] as const) {
      await createVirtualMachine(adminClient(), env.namespace, env.shared.hostDir, { name, node });
    }
  });

  after(async function () {
    await operator?.stop();
    await observer?.stop();
    await sim?.stop();
    env?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("FederatedBackup: Progressing while it runs, Healthy when Completed, with the conditions' messages", async () => {
    const versions = await applyAndWatch(Resources.FederatedBackup, backup("nightly"));
    const final = versions.at(-1)!;
    assert.equal(final.status?.phase, "Completed", JSON.stringify(final.status?.conditions));
    const steps = healthPath("FederatedBackup", versions);
    // Before the operator writes a status, then through its running phases, then Completed.
    assert.deepEqual(steps[0]?.health, {
      status: "Progressing",
      message: "Waiting for the fedbackup operator to pick up the backup",
    });
    const running = steps.filter((s) => s.phase !== "" && !FINISHED.includes(s.phase));
    assert.ok(running.length > 0, `no running phase was seen: ${JSON.stringify(steps)}`);
    for (const s of running) assert.equal(s.health.status, "Progressing", JSON.stringify(s));
    for (const v of versions.filter((x) => x.status?.phase && !FINISHED.includes(x.status.phase))) {
      const progressing = condition(v, "Progressing")?.message;
      if (progressing) assert.equal(health("FederatedBackup", v).message, `${v.status!.phase}: ${progressing}`);
    }
    assert.deepEqual(health("FederatedBackup", final), {
      status: "Healthy",
      message: condition(final, "Ready")!.message,
    });
    console.log(
      `      health path: ${steps.map((s) => `${s.phase || "(no status)"}=${s.health.status}`).join(" -> ")}`,
    );

    // A spec newer than the status (the operator has not acted on it yet) is not Healthy.
    const stale = structuredClone(final);
    stale.metadata.generation = (final.metadata.generation ?? 1) + 1;
    assert.deepEqual(health("FederatedBackup", stale), {
      status: "Progressing",
      message: `Waiting for the fedbackup operator to act on generation ${stale.metadata.generation} (the status is for generation ${final.status?.observedGeneration})`,
    });
  });

  it("re-applying the unchanged FederatedBackup (client-side and server-side apply) starts no new work", async () => {
    const before = await adminClient().get<Backup>(Resources.FederatedBackup, env.namespace, "nightly");
    const stepsBefore = (
      await adminClient().list(Resources.NodeSnapshot, {
        namespace: env.namespace,
        labelSelector: "fedbackup.io/backup=nightly",
      })
    ).items.map((s) => s.metadata.name);
    const jobsBefore = observer.jobs.map((j) => j.name);
    operator.client.stats.reset();
    const file = path.join(dir, "nightly.yaml");
    assert.match(kubectl("apply", "-f", file), /unchanged/);
    // Server-side apply, as Argo CD with ServerSideApply=true does. On an object created by client-side apply,
    // kubectl then also tries to migrate its last-applied annotation; the fedbackup.io-created-by admission
    // policy denies that patch (kubectl warns, non-fatal). The apply itself succeeds.
    kubectl("apply", "--server-side", "--field-manager=gitops-sync", "-f", file);
    // Give the operator the watch event and a pass.
    await new Promise((r) => setTimeout(r, 3_000));
    const after = await adminClient().get<Backup>(Resources.FederatedBackup, env.namespace, "nightly");
    assert.equal(after.metadata.generation, before.metadata.generation);
    assert.equal(after.status?.observedGeneration, before.status?.observedGeneration);
    assert.deepEqual(after.status, before.status);
    const stepsAfter = (
      await adminClient().list(Resources.NodeSnapshot, {
        namespace: env.namespace,
        labelSelector: "fedbackup.io/backup=nightly",
      })
    ).items.map((s) => s.metadata.name);
    assert.deepEqual(stepsAfter, stepsBefore);
    assert.deepEqual(
      observer.jobs.map((j) => j.name),
      jobsBefore,
    );
    // Reads aside, the leader's renewal of its election Lease (a PUT every few seconds, whatever happens) and
    // other tests' BackupLocations validated meanwhile: the steps, Jobs and status above show that no Lease of
    // a storage back end was taken for new work.
    const writes = Object.entries(withoutLocationValidations(operator.client.stats.snapshot())).filter(
      ([k]) => !/^(GET|LIST|WATCH) /i.test(k) && k !== "PUT leases",
    );
    assert.deepEqual(writes, [], `the operator wrote after the re-apply: ${JSON.stringify(writes)}`);
    assert.equal(health("FederatedBackup", after).status, "Healthy");
  });

  it("WorkloadRestore: Progressing while it runs, Healthy when Completed", async () => {
    const versions = await applyAndWatch(
      Resources.WorkloadRestore,
      restore("back", { workloads: [{ namespace: env.namespace, name: "web" }] }),
    );
    const final = versions.at(-1)!;
    assert.equal(final.status?.phase, "Completed", JSON.stringify(final.status?.conditions));
    const steps = healthPath("WorkloadRestore", versions);
    const running = steps.filter((s) => s.phase !== "" && !FINISHED.includes(s.phase));
    assert.ok(running.length > 0, `no running phase was seen: ${JSON.stringify(steps)}`);
    for (const s of running) assert.equal(s.health.status, "Progressing", JSON.stringify(s));
    assert.deepEqual(health("WorkloadRestore", final), {
      status: "Healthy",
      message: condition(final, "Ready")!.message,
    });
    console.log(
      `      health path: ${steps.map((s) => `${s.phase || "(no status)"}=${s.health.status}`).join(" -> ")}`,
    );
  });

  it("Degraded when Failed: a backup of a claim that does not exist, a restore of a backup that does not exist", async () => {
    const fb = (
      await applyAndWatch(
        Resources.FederatedBackup,
        backup("broken", { sharedVolume: { claimName: "no-such-claim", nodeMountPath: NODE_MOUNT_PATH } }),
      )
    ).at(-1)!;
    assert.equal(fb.status?.phase, "Failed");
    const h = health("FederatedBackup", fb);
    assert.equal(h.status, "Degraded");
    assert.equal(h.message, `Failed (SharedVolumeClaimNotFound): ${condition(fb, "Ready")!.message}`);
    assert.match(h.message, /no-such-claim .*does not exist/);

    const wr = (await applyAndWatch(Resources.WorkloadRestore, restore("typo", { backupRef: { name: "nightyl" } }))).at(
      -1,
    )!;
    assert.equal(wr.status?.phase, "Failed");
    const r = health("WorkloadRestore", wr);
    assert.equal(r.status, "Degraded");
    assert.match(r.message, /^Failed \(BackupNotFound\): .*nightyl does not exist/);
  });

  it("Degraded when PartiallyFailed: a backup naming a VM that is not running", async () => {
    await createVm(adminClient(), env.namespace, env.shared.hostDir, { name: "stopped" });
    const names = ["web", "stopped"].map((name) => ({ namespace: env.namespace, name }));
    const fb = (await applyAndWatch(Resources.FederatedBackup, backup("partial", { workloads: { names } }))).at(-1)!;
    assert.equal(fb.status?.phase, "PartiallyFailed", JSON.stringify(fb.status?.conditions));
    const h = health("FederatedBackup", fb);
    assert.equal(h.status, "Degraded");
    assert.equal(h.message, `PartiallyFailed (PartiallyFailed): ${condition(fb, "Ready")!.message}`);
  });
});
