// One chaos run: a fresh namespace with 30 VMs, the run(s) under test started, the scenario's disturbance
// acting meanwhile, then every invariant checked on what the recorder saw and what is at the location.
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isFinished } from "../../src/api/phases.js";
import { LABEL_BACKUP } from "../../src/api/labels.js";
import type { FederatedBackup, NodeSnapshot } from "../../src/api/v1alpha1/index.js";
import { Resources, type ResourceType } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { fnv1a32 } from "../../src/planning/fnv1a.js";
import { mulberry32 } from "../../src/planning/seeded-shuffle.js";
import { NODE_MOUNT_PATH } from "../harness/workloads.js";
import { chaosBackupSpec, type ChaosBackupSpec } from "./backup-spec.js";
import { checkCaptures } from "./invariants/captures.js";
import { checkCapturedFiles } from "./invariants/checksums.js";
import { checkFreezesBalanced, checkFrozenOneNodeAtATime, type FreezeCall } from "./invariants/freezes.js";
import { checkOneInstance } from "./invariants/instances.js";
import { checkTerminal, type RunEnd } from "./invariants/terminal.js";
import { checkOneTurnAtATime, handOffsDuringExtraction, turnsOf } from "./invariants/turns.js";
import type { Violation } from "./invariants/violation.js";
import { describeNamespace } from "./diagnose.js";
import { readCapturedFiles, vmsWithManifests } from "./location-files.js";
import { RunRecorder } from "./recorder.js";
import type { Scenario } from "./scenarios.js";
import type { ChaosWorld, RunEnv } from "./world.js";

type Backup = FederatedBackup & KubeObject;
type Step = NodeSnapshot & KubeObject;

export interface RunResult {
  scenario: string;
  index: number;
  seed: number;
  namespace: string;
  /** From the runs' creation until all of them finished (or the bound passed). */
  elapsedMs: number;
  phases: string[];
  notes: string[];
  violations: Violation[];
}

/** The seed of one run: the same CHAOS_SEED, scenario and index always give the same run. */
export const runSeed = (seed: number, scenario: string, index: number): number =>
  fnv1a32(`${seed}/${scenario}/${index}`);

function backupManifest(env: RunEnv, name: string, options: ChaosBackupSpec): Backup {
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "FederatedBackup",
    metadata: { name, namespace: env.namespace },
    spec: {
      sharedVolume: { claimName: env.shared.claimName, nodeMountPath: NODE_MOUNT_PATH },
      location: { persistentVolumeClaim: { claimName: env.location.claimName } },
      deletionPolicy: "Retain",
      ...options,
    },
  };
}

interface Started {
  type: ResourceType;
  kind: string;
  name: string;
  createdAt: number;
}

async function waitFinished(world: ChaosWorld, env: RunEnv, runs: Started[], boundMs: number): Promise<RunEnd[]> {
  const deadline = Math.max(...runs.map((r) => r.createdAt)) + boundMs;
  const ends = new Map<string, RunEnd>();
  for (;;) {
    for (const r of runs) {
      if (ends.has(r.name)) continue;
      const live = await world.admin
        .get<KubeObject & { status?: { phase?: string } }>(r.type, env.namespace, r.name)
        .catch(() => undefined);
      const phase = live?.status?.phase;
      if (isFinished(phase) || Date.now() > deadline)
        ends.set(r.name, {
          run: `${r.kind}/${r.name}`,
          ...(phase ? { phase } : {}),
          elapsedMs: Date.now() - r.createdAt,
        });
    }
    if (ends.size === runs.length) return runs.map((r) => ends.get(r.name)!);
    await sleep(250);
  }
}

async function startBackup(world: ChaosWorld, env: RunEnv, name: string, options: ChaosBackupSpec): Promise<Started> {
  await world.admin.create(Resources.FederatedBackup, backupManifest(env, name, options));
  return { type: Resources.FederatedBackup, kind: "FederatedBackup", name, createdAt: Date.now() };
}

async function startRestore(
  world: ChaosWorld,
  env: RunEnv,
  name: string,
  from: string,
  vms: string[],
): Promise<Started> {
  await world.admin.create(Resources.WorkloadRestore, {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "WorkloadRestore",
    metadata: { name, namespace: env.namespace },
    spec: { backupRef: { name: from }, workloads: vms.map((vm) => ({ namespace: env.namespace, name: vm })) },
  });
  return { type: Resources.WorkloadRestore, kind: "WorkloadRestore", name, createdAt: Date.now() };
}

/** Agent pods of the namespace still running: their freezes and writes are part of the run. */
async function agentsSettled(world: ChaosWorld, namespace: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!world.runner.runs.some((r) => r.namespace === namespace && r.endedAt === undefined)) return true;
    await sleep(200);
  }
  return false;
}

/** The capture and checksum invariants of one finished backup. */
async function checkBackup(world: ChaosWorld, env: RunEnv, recorder: RunRecorder, name: string): Promise<Violation[]> {
  const fb = await world.admin.get<Backup>(Resources.FederatedBackup, env.namespace, name);
  const steps = (
    await world.admin.list<Step>(Resources.NodeSnapshot, {
      namespace: env.namespace,
      labelSelector: `${LABEL_BACKUP}=${name}`,
    })
  ).items;
  const at = (v: string) => `${name}: ${v}`;
  const violations = checkCaptures({
    wholeRunVms: recorder.wholeRunVms(),
    steps: steps.map((s) => ({
      step: s.metadata.name!,
      round: s.spec.round,
      captured: (s.status?.captured ?? []).map((c) => `${c.namespace}/${c.name}`),
    })),
    missing: (fb.status?.missing ?? []).map((m) => ({
      vm: `${m.namespace}/${m.name}`,
      ...(m.reason ? { reason: m.reason } : {}),
    })),
    ...(fb.status?.missingTruncated ? { missingTruncated: fb.status.missingTruncated } : {}),
  }).map((v) => ({ ...v, detail: at(v.detail) }));
  if (!fb.status?.backupPath) return violations;
  const backupDir = path.join(env.location.hostDir, fb.status.backupPath);
  const captured = steps.flatMap((s) => (s.status?.captured ?? []).map((c) => `${c.namespace}/${c.name}`));
  let present: string[] = [];
  try {
    present = vmsWithManifests(backupDir);
  } catch {
    // no directory: every captured VM is then reported without its manifest
  }
  const { files, problems } = readCapturedFiles(
    backupDir,
    [...new Set([...captured, ...present])].sort(),
    env.sourceSha256,
  );
  return [...violations, ...checkCapturedFiles(files, problems).map((v) => ({ ...v, detail: at(v.detail) }))];
}

export async function runOnce(
  world: ChaosWorld,
  scenario: Scenario,
  seed: number,
  index: number,
  boundMs: number,
): Promise<RunResult> {
  const s = runSeed(seed, scenario.name, index);
  const random = mulberry32(s);
  const victimNode = world.nodes[Math.floor(random() * world.nodes.length)]!;
  const env = await world.newRun(scenario.name.split("-")[0]!, random, scenario.bigDisks ? victimNode : undefined);
  const notes: string[] = [];
  const recorder = new RunRecorder(world.admin, env.namespace);
  const options = chaosBackupSpec(world.onXfs, scenario.needsCopy ?? false);
  notes.push(
    options.pipeline
      ? `backups: snapshot ${options.snapshot?.method}, pipeline lookAhead ${options.pipeline.lookAhead}, maxExtractions ${options.pipeline.maxExtractions}`
      : "backups: default snapshot method (Auto), not pipelined (no XFS)",
  );
  try {
    const backups = scenario.concurrent ? ["first", "second"] : ["nightly"];
    const runs: Started[] = [];
    if (scenario.concurrent) {
      const base = await startBackup(world, env, "base", options);
      const [baseEnd] = await waitFinished(world, env, [base], boundMs);
      notes.push(`backup base ${baseEnd!.phase ?? "unfinished"} before the concurrent runs`);
      backups.unshift("base");
    }
    await recorder.start();
    const callsFrom = world.double.calls.length;
    const crashesFrom = world.operator.crashes.length;
    if (scenario.concurrent) {
      const restored = env.vms.filter(() => random() < 0.15).map((v) => v.name);
      if (restored.length === 0) restored.push(env.vms[0]!.name);
      runs.push(await startBackup(world, env, "first", options));
      runs.push(await startBackup(world, env, "second", options));
      runs.push(await startRestore(world, env, "restore", "base", restored));
      notes.push(`restore of ${restored.length} VMs from base while first and second back up`);
    } else {
      runs.push(await startBackup(world, env, "nightly", options));
    }
    let over = false;
    const disturbance = scenario
      .disturb({ world, env, random, victimNode, over: () => over, note: (m) => notes.push(m) })
      .catch((err: unknown) => notes.push(`disturbance failed: ${String(err)}`));
    const ends = await waitFinished(world, env, runs, boundMs);
    over = true;
    await disturbance;
    if (!world.operator.running) await world.operator.start();
    if (!(await agentsSettled(world, env.namespace, 60_000))) notes.push("agent pods still running 60 s after the end");
    // Let the watches deliver the last states.
    await sleep(1_000);
    const endOfRun = Date.now();

    const violations: Violation[] = [...checkTerminal(ends, boundMs)];
    if (violations.length > 0) notes.push(...(await describeNamespace(world.admin, env.namespace, world.runner.runs)));
    for (const name of backups) violations.push(...(await checkBackup(world, env, recorder, name)));
    const calls: FreezeCall[] = world.double.calls
      .slice(callsFrom)
      .filter((c) => c.namespace === env.namespace && (c.op === "freeze" || c.op === "unfreeze"))
      .map((c) => ({
        op: c.op as FreezeCall["op"],
        vm: `${c.namespace}/${c.name}`,
        status: c.status,
        at: c.at,
        ...(c.node ? { node: c.node } : {}),
      }));
    const now = recorder.instancesNow();
    violations.push(...checkFreezesBalanced(calls, now.existing, now.frozen));
    violations.push(...checkFrozenOneNodeAtATime(calls, endOfRun));
    const ours = new Set(recorder.stepEndList.map((e) => e.step));
    const leases = new Set(recorder.leaseStates.filter((l) => l.step && ours.has(l.step)).map((l) => l.lease));
    const turns = turnsOf(
      recorder.leaseStates.filter((l) => leases.has(l.lease)),
      recorder.stepEndList,
    );
    violations.push(...checkOneTurnAtATime(turns));
    const pods = world.runner.runs.filter((r) => r.namespace === env.namespace && r.endedAt !== undefined);
    const podSeconds = pods.map((r) => (r.endedAt! - r.startedAt) / 1000).sort((a, b) => a - b);
    notes.push(
      `agent pods: ${pods.length}, lifetimes ${podSeconds.map((x) => x.toFixed(1)).join(" ")} s`,
      `seen: ${recorder.stepEndList.length} steps (${recorder.stepEndList.filter((e) => e.cutDoneRevision !== undefined).length} with cutCompletionTime), ${turns.length} turns (${handOffsDuringExtraction(turns, recorder.stepEndList)} handed on while the previous step extracted), ${calls.length} freeze calls, ${recorder.instanceStates.length} VMI states`,
    );
    violations.push(...checkOneInstance(recorder.instanceStates));
    for (const crash of world.operator.crashes.slice(crashesFrom))
      violations.push({ invariant: "operator-alive", detail: `the operator ${crash} without being killed` });
    return {
      scenario: scenario.name,
      index,
      seed: s,
      namespace: env.namespace,
      elapsedMs: Math.max(...ends.map((e) => e.elapsedMs)),
      phases: ends.map((e) => `${e.run} ${e.phase ?? "-"}`),
      notes,
      violations,
    };
  } finally {
    await recorder.stop();
    if (!process.env.CHAOS_KEEP) await world.disposeRun(env).catch(() => {});
  }
}
