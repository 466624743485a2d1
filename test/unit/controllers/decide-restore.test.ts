import assert from "node:assert/strict";
import type {
  FederatedBackup,
  NodeRestore,
  NodeRestoreStatus,
  NodeRestoreStatusResult,
  NodeSnapshot,
  WorkloadRestore,
} from "../../../src/api/v1alpha1/index.js";
import { backupPath, buildNodeSnapshot } from "../../../src/controllers/federatedbackup/builders.js";
import type { JobView } from "../../../src/controllers/runtime/job-view.js";
import type { LeaseState } from "../../../src/controllers/runtime/lease-state.js";
import { buildRestoreJob, restoreOwnerId } from "../../../src/controllers/workloadrestore/builders.js";
import {
  decideRestore,
  type RestoreAction,
  type RestoreDecision,
  type RestoreWorld,
} from "../../../src/controllers/workloadrestore/decide.js";
import {
  resolveWorkloads,
  type ResolvedWorkload,
  type Resolution,
} from "../../../src/controllers/workloadrestore/resolve.js";
import type { VmHold, VmView } from "../../../src/controllers/workloadrestore/vm-hold.js";
import type { ObservedNode, ObservedWorkload, WorkloadRef } from "../../../src/planning/index.js";
import { parseCrds, readCrdTexts, storageVersion, type JSONSchemaProps } from "../../../hack/gen-api-types.js";

const NOW = Date.parse("2026-11-25T12:00:00Z");
const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
const settings = { leaseRenewMs: 10 * SECOND };

interface PodVolume {
  name: string;
  persistentVolumeClaim?: { claimName: string; readOnly?: boolean };
}
interface Container {
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
  volumeDevices?: { name: string; devicePath: string }[];
}
const BACKUP_PATH = "vms/nightly-01234567";

// ---------------------------------------------------------------------------------------------------------------
// Builders

/** The spec schema of the WorkloadRestore CRD, whose defaults the API server fills in. */
const SPEC_SCHEMA = storageVersion(parseCrds(readCrdTexts()).find((c) => c.spec.names.kind === "WorkloadRestore")!)
  .schema!.openAPIV3Schema!.properties!.spec!;

/** Fills in the schema's defaults as the API server does: an absent field with a default gets it, then its inside. */
function withDefaults(schema: JSONSchemaProps, value: unknown): void {
  if (schema.type === "array" && Array.isArray(value) && schema.items) {
    for (const item of value) withDefaults(schema.items, item);
  }
  if (schema.type !== "object" || typeof value !== "object" || value === null || Array.isArray(value)) return;
  const fields = value as Record<string, unknown>;
  for (const [name, field] of Object.entries(schema.properties ?? {})) {
    if (fields[name] === undefined && field.default !== undefined) fields[name] = structuredClone(field.default);
    withDefaults(field, fields[name]);
  }
}

/** A WorkloadRestore as the API server serves it: the spec given, with the CRD's defaults. */
function restore(spec: Partial<WorkloadRestore["spec"]> = {}): WorkloadRestore {
  const full = { backupRef: { name: "nightly" }, ...structuredClone(spec) };
  withDefaults(SPEC_SCHEMA, full);
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "WorkloadRestore",
    metadata: { name: "r1", namespace: "vms", uid: "uid-r1", generation: 1, creationTimestamp: iso(NOW - MINUTE) },
    spec: full,
  };
}

const ME = restoreOwnerId(restore());
const OTHER_RESTORE = "WorkloadRestore/vms/r0/uid-r0";

const node = (name: string, ready = true): ObservedNode => ({
  name,
  ready,
  schedulable: true,
  controlPlane: false,
  freeCpuMilli: 1000,
  freeMemoryBytes: 1e9,
  recentFailures: 0,
});
const NODES = [node("n1"), node("n2"), node("n3")];

const ref = (key: string): WorkloadRef => {
  const [namespace = "", name = ""] = key.split("/");
  return { namespace, name };
};
const keyOf = (w: WorkloadRef): string => `${w.namespace}/${w.name}`;

/** A VMI running on `on`, as the planner observes it. */
const vmi = (key: string, on: string): ObservedWorkload => ({
  ...ref(key),
  uid: key,
  phase: "Running",
  node: on,
  migrating: false,
  critical: false,
  priority: 0,
  files: [`${key}/disk.img`],
});

/** A VM with its capture, as resolveWorkloads hands it over. */
const resolved = (key: string, fields: Partial<ResolvedWorkload> = {}): ResolvedWorkload => ({
  ...ref(key),
  backup: "nightly",
  backupPath: BACKUP_PATH,
  sharedClaim: "vmdisks",
  nodeMountPath: "/var/lib/vms",
  location: { persistentVolumeClaim: { claimName: "backups" } },
  capture: { files: [`${key}/disk.img`], claims: [], definition: false },
  ...fields,
});

const hold = (activeNode: string, fields: Partial<VmHold> = {}): VmHold => ({
  owner: ME,
  runStrategy: "Always",
  activeNode,
  ...fields,
});

/** A VM running on `on`, not held. */
const running = (on: string, fields: Partial<VmView> = {}): VmView => ({
  exists: true,
  runStrategy: "Always",
  vmi: { node: on, phase: "Running", migrating: false },
  ...fields,
});

/** A VM this restore stopped (it ran on `activeNode`); its instance is gone unless fields say otherwise. */
const held = (activeNode: string, fields: Partial<VmView> = {}, holdFields: Partial<VmHold> = {}): VmView => ({
  exists: true,
  runStrategy: "Halted",
  hold: hold(activeNode, holdFields),
  ...fields,
});

const vms = (entries: Record<string, VmView>): Map<string, VmView> => new Map(Object.entries(entries));

const leaseOurs = (holderNode = "n1", renewedAt = NOW): LeaseState => ({
  ours: true,
  free: false,
  owner: ME,
  renewedAt,
  holderNode,
});
const LEASE_FREE: LeaseState = { ours: false, free: true };
const LEASE_OTHER: LeaseState = { ours: false, free: false, owner: "FederatedBackup/vms/nightly" };

/** Every action of a decision in the order the reconciler carries them out: the status is written in between. */
const carriedOut = (d: RestoreDecision): RestoreAction[] => [...d.actions, ...d.statusEvents];
function only<K extends RestoreAction["kind"]>(
  d: RestoreDecision,
  kind: K,
): Array<Extract<RestoreAction, { kind: K }>> {
  return carriedOut(d).filter((a): a is Extract<RestoreAction, { kind: K }> => a.kind === kind);
}
const kinds = (d: RestoreDecision): string[] => carriedOut(d).map((a) => a.kind);
const records = (d: RestoreDecision) => only(d, "RecordStep").map((a) => a.status);
const condition = (d: RestoreDecision, type: string) => d.status.conditions?.find((c) => c.type === type);
const VM_KINDS = new Set(["HoldVm", "StartVm", "ReleaseVm", "CreateMigration"]);
/** The actions on VMs, compactly: "HoldVm a", "StartVm a@n1 Always", "ReleaseVm a Halted", "CreateMigration c@n1". */
const vmActions = (d: RestoreDecision): string[] =>
  d.actions.flatMap((a) => {
    switch (a.kind) {
      case "HoldVm":
        return [`HoldVm ${a.vm.name}`];
      case "StartVm":
        return [`StartVm ${a.vm.name}@${a.node} ${a.runStrategy}`];
      case "ReleaseVm":
        return [`ReleaseVm ${a.vm.name}${a.runStrategy ? ` ${a.runStrategy}` : ""}`];
      case "CreateMigration":
        return [`CreateMigration ${a.vm.name}@${a.node}`];
      default:
        return [];
    }
  });

interface Planned {
  restore: WorkloadRestore;
  steps: NodeRestore[];
}

/** Plans with decideRestore itself (phase New) and returns the restore InProgress with its new steps. */
function plan(
  workloads: ResolvedWorkload[],
  observed: ObservedWorkload[],
  spec: Partial<WorkloadRestore["spec"]> = {},
  over: Partial<RestoreWorld> = {},
): Planned {
  const r = restore(spec);
  const d = decideRestore(
    {
      now: NOW - 10 * MINUTE,
      restore: r,
      steps: [],
      vms: new Map(),
      nodes: NODES,
      lease: LEASE_FREE,
      resolution: { workloads, unrestorable: [] },
      observed,
      ...over,
    },
    settings,
  );
  assert.equal(d.status.phase, "InProgress", JSON.stringify(d.status.conditions));
  return { restore: { ...r, status: d.status }, steps: only(d, "CreateStep").map((a) => a.step) };
}

/** VMs a and b, both running on n1: one step, r1-n1. */
const onN1 = (spec: Partial<WorkloadRestore["spec"]> = {}): Planned =>
  plan([resolved("vms/a"), resolved("vms/b")], [vmi("vms/a", "n1"), vmi("vms/b", "n1")], spec);

/** The world of the first step in the given state (a fresh copy each time). */
function stepWorld(
  p: Planned,
  status: NodeRestoreStatus | undefined,
  over: Partial<RestoreWorld> & { job?: JobView } = {},
): RestoreWorld {
  const [first, ...rest] = p.steps.map((s) => structuredClone(s));
  if (status) first!.status = structuredClone(status);
  const { job, ...fields } = over;
  return {
    now: NOW,
    restore: structuredClone(p.restore),
    steps: [{ step: first!, ...(job ? { job } : {}) }, ...rest.map((step) => ({ step }))],
    vms: new Map(),
    nodes: NODES,
    lease: leaseOurs("n1"),
    ...fields,
  };
}

const result = (key: string, fields: Partial<NodeRestoreStatusResult> = {}): NodeRestoreStatusResult => ({
  ...ref(key),
  restored: true,
  files: 3,
  bytes: 2048,
  verified: true,
  ...fields,
});
const CHECKSUM = {
  restored: false,
  reason: "ChecksumMismatch",
  message: "disk.img: sha256 differs from the backup",
  verified: false,
} as const;

// ---------------------------------------------------------------------------------------------------------------

describe("decideRestore", () => {
  describe("planning (phase New)", () => {
    const newWorld = (over: Partial<RestoreWorld> = {}): RestoreWorld => ({
      now: NOW,
      restore: restore(),
      steps: [],
      vms: new Map(),
      nodes: NODES,
      lease: LEASE_FREE,
      resolution: {
        workloads: ["vms/a", "vms/b", "vms/c", "vms/d", "vms/e"].map((k) => resolved(k)),
        unrestorable: [],
      },
      observed: [vmi("vms/a", "n1"), vmi("vms/b", "n1"), vmi("vms/c", "n2"), vmi("vms/d", "n2"), vmi("vms/e", "n2")],
      ownedFiles: new Map([["vms/c", ["vms/c/disk.img"]]]),
      ...over,
    });

    it("lists in each step the claims a VM may be restored to, and its Job mounts them read-write", () => {
      const root = { volume: "root", claimName: "c-root", sourceKind: "DataVolume", volumeMode: "Filesystem" } as const;
      const data = {
        volume: "data",
        claimName: "c-data",
        sourceKind: "PersistentVolumeClaim",
        volumeMode: "Block",
      } as const;
      const d = decideRestore(newWorld({ ownedClaims: new Map([["vms/c", [data, root]]]) }), settings);
      const [first] = only(d, "CreateStep").map((a) => a.step);
      assert.deepEqual(first!.spec.workloads[0]!.claims, [data, root]);
      // VMs without claims carry no field, so their steps are as before.
      assert.equal("claims" in first!.spec.workloads[1]!, false);

      const job = buildRestoreJob(restore(), first!, { agentImage: "fedbackup:test" }) as unknown as {
        spec: { template: { spec: { volumes: PodVolume[]; containers: Container[] } } };
      };
      const pod = job.spec.template.spec;
      const claimVolumes = pod.volumes.filter((v) => v.persistentVolumeClaim?.claimName.startsWith("c-"));
      assert.deepEqual(
        claimVolumes.map((v) => [v.persistentVolumeClaim!.claimName, v.persistentVolumeClaim!.readOnly]),
        [
          ["c-data", undefined],
          ["c-root", undefined],
        ],
      );
      const mount = pod.containers[0]!.volumeMounts.find((m) => m.mountPath.endsWith("/c-root"));
      assert.equal(mount?.readOnly, undefined);
      assert.deepEqual(
        pod.containers[0]!.volumeDevices?.map((v) => v.devicePath),
        ["/var/lib/fedbackup/devices/c-data"],
      );
    });

    it("writes status.plan and creates one NodeRestore per restore node, in node order, touching no VM", () => {
      const d = decideRestore(newWorld(), settings);
      assert.deepEqual(kinds(d), ["CreateStep", "CreateStep", "Event"]);
      const steps = only(d, "CreateStep").map((a) => a.step);
      assert.deepEqual(
        steps.map((s) => [s.metadata.name, s.spec.node, s.spec.order, s.spec.workloads.map((w) => w.name)]),
        [
          ["r1-n2", "n2", 1, ["c", "d", "e"]],
          ["r1-n1", "n1", 2, ["a", "b"]],
        ],
      );
      const [first] = steps;
      assert.equal(first?.spec.restoreUID, "uid-r1");
      assert.deepEqual(first?.spec.sharedVolume, { claimName: "vmdisks", nodeMountPath: "/var/lib/vms" });
      assert.deepEqual(first?.spec.location, { persistentVolumeClaim: { claimName: "backups" } });
      assert.deepEqual(first?.spec.workloads[0], {
        namespace: "vms",
        name: "c",
        backup: "nightly",
        backupPath: BACKUP_PATH,
        files: ["vms/c/disk.img"],
        definition: "Keep",
        action: "RestoreInPlace",
        activeNode: "n2",
      });
      assert.equal(first?.status, undefined);

      assert.equal(d.status.phase, "InProgress");
      assert.equal(d.status.startTime, iso(NOW));
      assert.equal(d.status.completionTime, undefined);
      assert.deepEqual(
        d.status.plan?.map((e) => `${e.name} ${e.action} ${e.restoreNode}`),
        [
          "c RestoreInPlace n2",
          "d RestoreInPlace n2",
          "e RestoreInPlace n2",
          "a RestoreInPlace n1",
          "b RestoreInPlace n1",
        ],
      );
      assert.deepEqual(d.status.progress, {
        restored: "0/5",
        workloadsTotal: 5,
        workloadsRestored: 0,
        workloadsFailed: 0,
      });
      assert.deepEqual(
        d.status.results?.map((r) => `${r.name} ${r.phase} ${r.node}`),
        ["c Pending n2", "d Pending n2", "e Pending n2", "a Pending n1", "b Pending n1"],
      );
      const message = "5 VMs on 2 nodes (n2: 3, n1: 2)";
      assert.deepEqual(only(d, "Event"), [{ kind: "Event", type: "Normal", reason: "Planned", message }]);
      assert.deepEqual(
        { ...condition(d, "Progressing"), lastTransitionTime: undefined },
        {
          type: "Progressing",
          status: "True",
          reason: "Planned",
          message,
          observedGeneration: 1,
          lastTransitionTime: undefined,
        },
      );
      assert.equal(condition(d, "Ready")?.status, "False");
      assert.equal(condition(d, "Failed")?.status, "False");
      assert.equal(d.requeueAfterMs, 0, "works on the first node right away");
    });

    it("follows spec.ordering (Explicit) and records the conflict policy's action per VM", () => {
      const d = decideRestore(
        newWorld({
          restore: restore({ ordering: { policy: "Explicit", nodes: ["n1", "n2"] }, conflictPolicy: "Stop" }),
          resolution: {
            workloads: [resolved("vms/a"), resolved("vms/c"), resolved("vms/x", { targetNode: "n1" })],
            unrestorable: [],
          },
          observed: [vmi("vms/a", "n1"), vmi("vms/c", "n2"), vmi("vms/x", "n3")],
        }),
        settings,
      );
      const steps = only(d, "CreateStep").map((a) => a.step);
      assert.deepEqual(
        steps.map((s) => [s.spec.node, s.spec.workloads.map((w) => `${w.name} ${w.action} ${w.activeNode ?? "-"}`)]),
        [
          ["n1", ["a RestoreInPlace n1", "x StopThenRestore n3"]],
          ["n2", ["c RestoreInPlace n2"]],
        ],
      );
    });

    it("lists unrestorable VMs and VMs the planner skips as Skip in the plan and Skipped in the results", () => {
      const d = decideRestore(
        newWorld({
          resolution: {
            workloads: [resolved("vms/a"), resolved("vms/y", { targetNode: "gone" })],
            unrestorable: [
              {
                namespace: "vms",
                name: "x",
                backup: "nightly",
                reason: "NotCaptured",
                message: "Skipped: no capture.",
              },
            ],
          },
        }),
        settings,
      );
      assert.deepEqual(
        d.status.plan?.map((e) => `${e.name} ${e.action} ${e.restoreNode ?? "-"} ${e.problem ?? "-"}`),
        ["a RestoreInPlace n1 -", "y Skip - TargetNodeNotFound", "x Skip - NotCaptured"],
      );
      assert.deepEqual(
        d.status.results?.map((r) => `${r.name} ${r.phase} ${r.reason ?? "-"}`),
        ["a Pending -", "y Skipped TargetNodeNotFound", "x Skipped NotCaptured"],
      );
      assert.equal(d.status.results?.[2]?.message, "Skipped: no capture.");
      assert.match(d.status.results?.[1]?.message ?? "", /restore node gone .* does not exist/);
      assert.deepEqual(d.status.progress, {
        restored: "0/3",
        workloadsTotal: 3,
        workloadsRestored: 0,
        workloadsFailed: 2,
      });
      assert.equal(
        only(d, "Event")[0]?.message,
        "1 VMs on 1 nodes (n1: 1); 2 skipped (1 NotCaptured, 1 TargetNodeNotFound)",
      );
      assert.equal(only(d, "CreateStep").length, 1);
    });

    it("dryRun: fills in the plan and completes without creating anything", () => {
      const d = decideRestore(newWorld({ restore: restore({ dryRun: true }) }), settings);
      assert.deepEqual(kinds(d), ["Event"]);
      const [event] = only(d, "Event");
      assert.equal(event?.type, "Normal");
      assert.equal(event?.reason, "DryRun");
      assert.equal(event?.message, "planned 5 VMs on 2 nodes (n2: 3, n1: 2); nothing touched");
      assert.equal(d.status.phase, "Completed");
      assert.equal(d.status.completionTime, iso(NOW));
      assert.equal(d.status.plan?.length, 5);
      assert.deepEqual(
        [condition(d, "Ready")?.status, condition(d, "Ready")?.reason, condition(d, "Ready")?.message],
        ["True", "DryRun", "dry run: the plan for 5 VMs is in status.plan; nothing was touched"],
      );
      assert.equal(condition(d, "Progressing")?.status, "False");
      assert.deepEqual(
        [condition(d, "PlanProblems")?.status, condition(d, "PlanProblems")?.reason],
        ["False", "NoProblems"],
      );
      assert.equal(d.requeueAfterMs, undefined);
    });

    // Regression: a dry run that skipped VMs said Ready=True "the plan for 3 VMs", as if they would all be restored.
    it("dryRun: a plan that skips VMs ends PartiallyFailed, Ready False (DryRunWithSkips), saying how many and why", () => {
      const d = decideRestore(
        newWorld({
          restore: restore({ dryRun: true, groups: [{ name: "g", workloads: [ref("vms/a"), ref("vms/b")] }] }),
          resolution: {
            workloads: [
              resolved("vms/a", { targetNode: "n1" }),
              resolved("vms/b", { targetNode: "n2" }),
              resolved("vms/c"),
              resolved("vms/d", { targetNode: "ghost" }),
            ],
            unrestorable: [],
          },
        }),
        settings,
      );
      assert.deepEqual(kinds(d), ["Event"]);
      assert.deepEqual(only(d, "Event")[0], {
        kind: "Event",
        type: "Warning",
        reason: "DryRunWithSkips",
        message:
          "planned 1 VMs on 1 nodes (n2: 1); 3 skipped (2 GroupTargetsDiffer, 1 TargetNodeNotFound); nothing touched",
      });
      assert.equal(d.status.phase, "PartiallyFailed");
      assert.deepEqual(
        [condition(d, "Ready")?.status, condition(d, "Ready")?.reason, condition(d, "Ready")?.message],
        [
          "False",
          "DryRunWithSkips",
          "dry run: 1 of 4 VMs planned, 3 would be skipped (2 GroupTargetsDiffer, 1 TargetNodeNotFound; " +
            "see the PlanProblems condition and status.plan); nothing was touched",
        ],
      );
      assert.deepEqual([condition(d, "Failed")?.status, condition(d, "Progressing")?.status], ["False", "False"]);
      assert.deepEqual(
        d.status.results?.map((r) => `${r.name} ${r.phase} ${r.reason ?? "-"}`),
        ["a Skipped GroupTargetsDiffer", "b Skipped GroupTargetsDiffer", "d Skipped TargetNodeNotFound"],
      );
    });

    it("dryRun: a plan in which every VM is skipped fails with NothingToRestore, like a real run", () => {
      const d = decideRestore(
        newWorld({
          restore: restore({ dryRun: true }),
          resolution: { workloads: [resolved("vms/a", { targetNode: "gone" })], unrestorable: [] },
        }),
        settings,
      );
      assert.deepEqual(d.actions, []);
      assert.deepEqual(d.statusEvents, [
        {
          kind: "Event",
          type: "Warning",
          reason: "NothingToRestore",
          message:
            "no VM can be restored: 1 skipped (1 TargetNodeNotFound; see the PlanProblems condition and status.plan)",
        },
      ]);
      assert.equal(d.status.phase, "Failed");
      assert.equal(d.status.completionTime, iso(NOW));
      assert.deepEqual([condition(d, "Ready")?.status, condition(d, "Ready")?.reason], ["False", "NothingToRestore"]);
      assert.deepEqual([condition(d, "Failed")?.status, condition(d, "Failed")?.reason], ["True", "NothingToRestore"]);
      assert.deepEqual(
        d.status.results?.map((r) => `${r.name} ${r.phase}`),
        ["a Skipped"],
      );
    });

    it("an invalid request fails at once, with its reason, and is not looked at again", () => {
      const invalid = { reason: "BackupNotFound", message: "FederatedBackup vms/nightly does not exist" };
      const d = decideRestore(newWorld({ resolution: { workloads: [], unrestorable: [], invalid } }), settings);
      assert.deepEqual(d.actions, []);
      assert.deepEqual(d.statusEvents, [{ kind: "Event", type: "Warning", ...invalid }]);
      assert.equal(d.status.phase, "Failed");
      assert.equal(d.status.completionTime, iso(NOW));
      assert.deepEqual(
        [condition(d, "Ready")?.reason, condition(d, "Ready")?.message],
        [invalid.reason, invalid.message],
      );
      assert.deepEqual(
        [condition(d, "Failed")?.status, condition(d, "Failed")?.reason, condition(d, "Failed")?.message],
        ["True", invalid.reason, invalid.message],
      );
      assert.equal(d.requeueAfterMs, undefined);
    });

    // Regression: NothingToRestore said only "see status.plan", not why the VMs were skipped.
    it("fails with NothingToRestore when every VM is skipped, naming the reasons", () => {
      const d = decideRestore(
        newWorld({
          resolution: {
            workloads: [resolved("vms/a", { targetNode: "ghost" })],
            unrestorable: [
              { namespace: "vms", name: "x", backup: "", reason: "NotCaptured", message: "Skipped: nothing." },
              { namespace: "vms", name: "y", backup: "", reason: "NotCaptured", message: "Skipped: nothing." },
            ],
          },
        }),
        settings,
      );
      assert.deepEqual(kinds(d), ["Event"]);
      assert.equal(d.status.phase, "Failed");
      const message =
        "no VM can be restored: 3 skipped (2 NotCaptured, 1 TargetNodeNotFound; see the PlanProblems condition and status.plan)";
      assert.deepEqual(
        [condition(d, "Failed")?.status, condition(d, "Failed")?.reason, condition(d, "Failed")?.message],
        ["True", "NothingToRestore", message],
      );
      assert.equal(condition(d, "Ready")?.message, message);
      assert.deepEqual(
        d.status.results?.map((r) => `${r.phase} ${r.reason}`),
        ["Skipped TargetNodeNotFound", "Skipped NotCaptured", "Skipped NotCaptured"],
      );
      assert.deepEqual(
        [condition(d, "PlanProblems")?.status, condition(d, "PlanProblems")?.reason],
        ["True", "TargetNodeNotFound"],
      );
    });

    // A pass that created steps may have lost its status write; if the plan then comes out empty (n1 went
    // NotReady), those steps must go too, or the results would list a VM as both Pending and Skipped.
    it("an empty plan after an interrupted pass deletes the steps that pass created", () => {
      const planned = decideRestore(
        newWorld({ resolution: { workloads: [resolved("vms/a")], unrestorable: [] }, observed: [vmi("vms/a", "n1")] }),
        settings,
      );
      const stale = only(planned, "CreateStep").map((a) => ({ step: a.step }));
      assert.equal(stale.length, 1);
      const d = decideRestore(
        newWorld({
          steps: stale,
          nodes: [node("n1", false), node("n2"), node("n3")],
          resolution: { workloads: [resolved("vms/a")], unrestorable: [] },
          observed: [vmi("vms/a", "n1")],
        }),
        settings,
      );
      assert.equal(d.status.phase, "Failed");
      assert.deepEqual(kinds(d), ["DeleteStep", "Event"]);
      assert.deepEqual(
        d.status.results?.map((r) => `${r.name} ${r.phase}`),
        ["a Skipped"],
      );
    });

    it("after an interrupted pass keeps the steps planned the same way and replaces the others", () => {
      const first = decideRestore(newWorld(), settings);
      const [n2, n1] = only(first, "CreateStep").map((a) => a.step);
      const stale = structuredClone(n1!);
      stale.spec.workloads = stale.spec.workloads.slice(0, 1);
      const gone = structuredClone(n1!);
      gone.metadata.name = "r1-n3";
      gone.spec.node = "n3";
      const d = decideRestore(
        newWorld({ steps: [{ step: structuredClone(n2!) }, { step: stale }, { step: gone }] }),
        settings,
      );
      assert.deepEqual(
        d.actions
          .filter((a) => a.kind === "CreateStep" || a.kind === "DeleteStep")
          .map((a) => `${a.kind} ${a.kind === "CreateStep" || a.kind === "DeleteStep" ? a.step.metadata.name : ""}`),
        ["DeleteStep r1-n1", "DeleteStep r1-n3", "CreateStep r1-n1"],
      );
      const created = only(d, "CreateStep")[0]?.step;
      assert.deepEqual(
        created?.spec.workloads.map((w) => w.name),
        ["a", "b"],
      );
      assert.equal(d.status.results?.length, 5, "the status describes the steps as planned now");
    });
  });

  // Regression: the planner's problems (a VM in two groups, a targetNode that does not exist, ...) reached no
  // condition; at best the VMs were skipped in status.plan.
  describe("the problems of the plan (condition PlanProblems)", () => {
    const world = (over: Partial<RestoreWorld> = {}): RestoreWorld => ({
      now: NOW,
      restore: restore({
        placement: { policy: "Specified", targetNode: "n1" },
        groups: [
          { name: "g1", workloads: [ref("vms/a"), ref("vms/b")] },
          { name: "g2", workloads: [ref("vms/b"), ref("vms/c")] },
        ],
      }),
      steps: [],
      vms: new Map(),
      nodes: NODES,
      lease: LEASE_FREE,
      resolution: {
        workloads: [
          resolved("vms/a"),
          resolved("vms/b"),
          resolved("vms/b"),
          resolved("vms/c"),
          resolved("vms/d", { targetNode: "ghost" }),
        ],
        unrestorable: [
          { namespace: "vms", name: "e", backup: "nightly", reason: "NotCaptured", message: "Skipped: no capture." },
        ],
      },
      observed: [vmi("vms/a", "n1")],
      ...over,
    });

    const cases: Array<{
      title: string;
      world: RestoreWorld;
      status: string;
      reason: string;
      message: string | RegExp;
      plan?: string[];
    }> = [
      {
        title: "each problem, with its reason, sorted by VM; the first one's reason, the count in the message",
        world: world(),
        status: "True",
        reason: "ListedTwice",
        message:
          "4 problems: " +
          "vms/b ListedTwice: It is listed 2 times in spec.workloads; it is planned once, from its first entry. " +
          "vms/b InGroupsTwice: Skipped: it is listed in more than one group (g1, g2); a VM can be in one only. " +
          "vms/d TargetNodeNotFound: Skipped: restore node ghost (the targetNode of this VM) does not exist. " +
          "vms/e NotCaptured: Skipped: no capture.",
        plan: [
          "a RestoreInPlace -",
          "c RestoreThenStart -",
          "b Skip InGroupsTwice",
          "d Skip TargetNodeNotFound",
          "e Skip NotCaptured",
        ],
      },
      {
        title: "a placement.targetNode that does not exist",
        world: world({
          restore: restore({ placement: { policy: "Specified", targetNode: "ghost" } }),
          resolution: { workloads: [resolved("vms/a"), resolved("vms/b", { targetNode: "n2" })], unrestorable: [] },
        }),
        status: "True",
        reason: "TargetNodeNotFound",
        message:
          "1 problem: vms/a TargetNodeNotFound: Skipped: restore node ghost (spec.placement.targetNode) does not exist.",
        plan: ["b RestoreThenStart -", "a Skip TargetNodeNotFound"],
      },
      {
        title: "at most 20 problems spelled out, the rest counted",
        world: world({
          restore: restore(),
          resolution: {
            workloads: Array.from({ length: 25 }, (_, i) => resolved(`vms/v${String(i).padStart(2, "0")}`)),
            unrestorable: [],
          },
          observed: [],
        }),
        status: "True",
        reason: "OriginalNodeUnknown",
        message:
          /^25 problems: vms\/v00 OriginalNodeUnknown: .*vms\/v19 OriginalNodeUnknown: [^]*\. And 5 more \(see status\.plan\)\.$/,
      },
      {
        title: "a clean plan",
        world: world({ restore: restore(), resolution: { workloads: [resolved("vms/a")], unrestorable: [] } }),
        status: "False",
        reason: "NoProblems",
        message: "the plan found no problem",
      },
    ];
    for (const c of cases) {
      it(`${c.title}`, () => {
        const d = decideRestore(c.world, settings);
        const problems = condition(d, "PlanProblems");
        assert.deepEqual([problems?.status, problems?.reason], [c.status, c.reason]);
        if (typeof c.message === "string") assert.equal(problems?.message, c.message);
        else assert.match(problems?.message ?? "", c.message);
        if (c.plan) {
          assert.deepEqual(
            d.status.plan?.map((e) => `${e.name} ${e.action} ${e.problem ?? "-"}`),
            c.plan,
          );
        }
      });
    }

    it("stays within what a condition's message may hold, however long the names and sentences", () => {
      const long = (i: number) => `v${i}-${"x".repeat(240)}`;
      const d = decideRestore(
        world({
          restore: restore(),
          resolution: {
            workloads: [resolved("vms/a")],
            unrestorable: Array.from({ length: 30 }, (_, i) => ({
              namespace: "vms",
              name: long(i),
              backup: "nightly",
              reason: "NotCaptured" as const,
              message: `Skipped: ${"y".repeat(3000)}.`,
            })),
          },
        }),
        settings,
      );
      const message = condition(d, "PlanProblems")?.message ?? "";
      assert.ok(message.length <= 32_768, `${message.length} characters`);
      const listed = message.split(" NotCaptured: ").length - 1;
      assert.ok(listed > 0 && listed < 20, `${listed} listed`);
      assert.match(message, new RegExp(`^30 problems: .* And ${30 - listed} more \\(see status\\.plan\\)\\.$`));
    });

    it("keeps the condition as the plan made it while the restore runs, whatever status.plan holds", () => {
      const planned = decideRestore(world(), settings);
      const made = condition(planned, "PlanProblems");
      const restoreNow = { ...world().restore, status: { ...planned.status, plan: planned.status.plan?.slice(0, 1) } };
      const steps = only(planned, "CreateStep").map((a) => ({ step: a.step }));
      const d = decideRestore(
        { ...world(), now: NOW + MINUTE, restore: restoreNow, steps, lease: leaseOurs("n1") },
        settings,
      );
      assert.equal(d.status.phase, "InProgress");
      assert.deepEqual(condition(d, "PlanProblems"), made);
    });

    it("a VM listed twice is planned from its first entry; its plan entry names the problem", () => {
      const d = decideRestore(
        world({
          restore: restore(),
          resolution: { workloads: [resolved("vms/a"), resolved("vms/a")], unrestorable: [] },
        }),
        settings,
      );
      assert.deepEqual(
        d.status.plan?.map((e) => `${e.name} ${e.action} ${e.problem}`),
        ["a RestoreInPlace ListedTwice"],
      );
      assert.deepEqual(
        d.status.results?.map((r) => `${r.name} ${r.phase}`),
        ["a Pending"],
      );
      assert.equal(condition(d, "PlanProblems")?.reason, "ListedTwice");
    });
  });

  // Regression: a restore applied together with its backup (one kubectl apply -f, one GitOps sync) failed for
  // good with BackupNotFinished.
  describe("waiting for a backup that is not finished (spec.waitForBackup)", () => {
    const waiting = (
      now: number,
      spec: Partial<WorkloadRestore["spec"]> = {},
      prev?: RestoreDecision,
    ): RestoreWorld => ({
      now,
      restore: { ...restore(spec), ...(prev ? { status: prev.status } : {}) },
      steps: [],
      vms: new Map(),
      nodes: NODES,
      lease: LEASE_FREE,
      resolution: {
        workloads: [],
        unrestorable: [],
        unfinished: [
          { name: "nightly", phase: "InProgress" },
          { name: "weekly", phase: "New" },
        ],
      },
      observed: [],
    });
    const created = NOW - MINUTE;

    for (const c of [
      {
        title: "just created, the default 1h",
        at: created,
        spec: {},
        requeue: MINUTE,
        until: iso(created + 60 * MINUTE),
      },
      {
        title: "59m59s later",
        at: created + 60 * MINUTE - SECOND,
        spec: {},
        requeue: SECOND,
        until: iso(created + 60 * MINUTE),
      },
      {
        title: "with waitForBackup 5m, 2m later",
        at: created + 2 * MINUTE,
        spec: { waitForBackup: "5m" },
        requeue: MINUTE,
        until: iso(created + 5 * MINUTE),
      },
    ]) {
      it(`stays New, Progressing WaitingForBackup naming the backups, touching nothing: ${c.title}`, () => {
        const d = decideRestore(waiting(c.at, c.spec), settings);
        assert.deepEqual(d.actions, []);
        assert.equal(d.status.phase, "New");
        assert.equal(d.status.startTime, undefined);
        assert.equal(d.status.completionTime, undefined);
        const message = `waiting for FederatedBackups vms/nightly (InProgress), vms/weekly (New) to finish, until ${c.until} (spec.waitForBackup ${c.spec.waitForBackup ?? "1h"})`;
        assert.deepEqual(
          [
            condition(d, "Progressing")?.status,
            condition(d, "Progressing")?.reason,
            condition(d, "Progressing")?.message,
          ],
          ["True", "WaitingForBackup", message],
        );
        assert.deepEqual(
          [condition(d, "Ready")?.status, condition(d, "Ready")?.reason, condition(d, "Ready")?.message],
          ["False", "WaitingForBackup", message],
        );
        assert.equal(condition(d, "Failed")?.status, "False");
        assert.equal(condition(d, "PlanProblems"), undefined, "nothing is planned yet");
        assert.equal(d.requeueAfterMs, c.requeue, "looks again, at the latest when the wait is over");
        assert.deepEqual(d.statusEvents, [{ kind: "Event", type: "Normal", reason: "WaitingForBackup", message }]);
      });
    }

    it("says once that it waits: no Event in the passes after, and no status change", () => {
      const first = decideRestore(waiting(created), settings);
      const again = decideRestore(waiting(created + 10 * MINUTE, {}, first), settings);
      assert.deepEqual(again.statusEvents, []);
      assert.deepEqual(again.status, first.status);
    });

    for (const c of [
      { title: "the default 1h", at: created + 60 * MINUTE, spec: {}, wait: "1h" },
      { title: "waitForBackup 0s: does not wait at all", at: created, spec: { waitForBackup: "0s" }, wait: "0s" },
    ]) {
      it(`fails with BackupNotFinished, saying it waited, once the wait is over: ${c.title}`, () => {
        const d = decideRestore(waiting(c.at, c.spec), settings);
        const message =
          `FederatedBackups vms/nightly (InProgress), vms/weekly (New) not finished within spec.waitForBackup (${c.wait}) ` +
          "of the restore's creation; only a Completed or PartiallyFailed backup can be restored from. Nothing was " +
          "touched: create a new WorkloadRestore once the backup has finished";
        assert.deepEqual(d.actions, []);
        assert.deepEqual(d.statusEvents, [{ kind: "Event", type: "Warning", reason: "BackupNotFinished", message }]);
        assert.equal(d.status.phase, "Failed");
        assert.deepEqual(
          [condition(d, "Failed")?.status, condition(d, "Failed")?.reason, condition(d, "Failed")?.message],
          ["True", "BackupNotFinished", message],
        );
        assert.equal(condition(d, "Progressing")?.status, "False");
        assert.equal(d.requeueAfterMs, undefined);
      });
    }

    it("plans as soon as the backup has finished", () => {
      const first = decideRestore(waiting(created), settings);
      const d = decideRestore(
        {
          ...waiting(created + 5 * MINUTE, {}, first),
          resolution: { workloads: [resolved("vms/a")], unrestorable: [] },
          observed: [vmi("vms/a", "n1")],
        },
        settings,
      );
      assert.equal(d.status.phase, "InProgress");
      assert.equal(d.status.startTime, iso(created + 5 * MINUTE));
      assert.deepEqual(kinds(d), ["CreateStep", "Event"]);
      assert.equal(condition(d, "Progressing")?.reason, "Planned");
    });

    it("a backup that does not exist fails at once, whatever waitForBackup says", () => {
      const invalid = { reason: "BackupNotFound", message: "FederatedBackup vms/typo does not exist" };
      const d = decideRestore(
        { ...waiting(created), resolution: { workloads: [], unrestorable: [], unfinished: [], invalid } },
        settings,
      );
      assert.equal(d.status.phase, "Failed");
      assert.equal(condition(d, "Failed")?.reason, "BackupNotFound");
    });
  });

  // The CRD holds the defaults and the API server fills them in; the operator has no copy of them.
  describe("the CRD's defaults", () => {
    for (const field of ["conflictPolicy", "waitForBackup"] as const) {
      it(`a restore without spec.${field} (a CRD older than the operator) fails, touching nothing`, () => {
        const r = restore();
        delete r.spec[field];
        const d = decideRestore(
          {
            now: NOW,
            restore: r,
            steps: [],
            vms: new Map(),
            nodes: NODES,
            lease: LEASE_FREE,
            resolution: { workloads: [resolved("vms/a")], unrestorable: [] },
            observed: [vmi("vms/a", "n1")],
          },
          settings,
        );
        assert.deepEqual(d.actions, []);
        assert.equal(d.status.phase, "Failed");
        assert.equal(condition(d, "Failed")?.reason, "CRDOutdated");
        assert.match(
          condition(d, "Failed")?.message ?? "",
          new RegExp(`^spec\\.${field} is not set, .* install the CRDs`),
        );
      });
    }
  });

  // Regression: Events were emitted before the status write, so a write that failed (a conflict) had the next
  // pass emit them again.
  describe("Events follow the write of what they report", () => {
    it("an Event reporting the status comes after it is written (statusEvents); a step's Event after its record", () => {
      const planning = decideRestore(
        {
          now: NOW,
          restore: restore(),
          steps: [],
          vms: new Map(),
          nodes: NODES,
          lease: LEASE_FREE,
          resolution: { workloads: [resolved("vms/a")], unrestorable: [] },
          observed: [vmi("vms/a", "n1")],
        },
        settings,
      );
      assert.deepEqual(
        planning.actions.map((a) => a.kind),
        ["CreateStep"],
      );
      assert.deepEqual(
        planning.statusEvents.map((e) => e.reason),
        ["Planned"],
      );
      // The step's turn begins: its Event reports the step's record, written before the status.
      const p = onN1();
      const begin = decideRestore(
        stepWorld(p, undefined, { lease: LEASE_FREE, vms: vms({ "vms/a": running("n1"), "vms/b": running("n1") }) }),
        settings,
      );
      assert.deepEqual(
        begin.actions.map((a) => (a.kind === "Event" ? `Event ${a.reason}` : a.kind)),
        ["ClaimLease", "RecordStep", "Event NodeStarted", "HoldVm", "HoldVm"],
      );
      assert.deepEqual(begin.statusEvents, []);
    });
  });

  describe("a node's turn begins (step Pending)", () => {
    for (const c of [
      { title: "is not Ready", nodes: [node("n1", false)], why: "node n1 is not Ready" },
      { title: "no longer exists", nodes: [node("n2")], why: "node n1 no longer exists" },
    ]) {
      it(`fails the step of a node that ${c.title}, touching neither the Lease nor the VMs`, () => {
        const p = onN1();
        const d = decideRestore(
          stepWorld(p, undefined, {
            nodes: c.nodes,
            lease: LEASE_FREE,
            // a still has its instance on n1; b has none.
            vms: vms({ "vms/a": running("n1"), "vms/b": { exists: true, runStrategy: "Halted" } }),
          }),
          settings,
        );
        assert.deepEqual(kinds(d), ["RecordStep", "Event"], "no ClaimLease: the step is over in this pass");
        const message = `not restored: ${c.why}; its disks and its instance were not touched`;
        assert.deepEqual(records(d), [
          {
            phase: "Failed",
            workloads: 2,
            restoredCount: 0,
            completionTime: iso(NOW),
            message: c.why,
            outcomes: [
              {
                namespace: "vms",
                name: "a",
                phase: "Failed",
                verified: false,
                node: "n1",
                reason: "NodeFailed",
                message,
              },
              { namespace: "vms", name: "b", phase: "Failed", verified: false, reason: "NodeFailed", message },
            ],
          },
        ]);
        assert.deepEqual(only(d, "Event"), [
          { kind: "Event", type: "Warning", reason: "NodeFailed", message: `${c.why}: its 2 VMs are not restored` },
        ]);
        assert.equal(d.requeueAfterMs, 0);
        assert.deepEqual(
          d.status.results?.map((r) => `${r.name} ${r.phase} ${r.node ?? "-"}`),
          ["a Failed n1", "b Failed -"],
        );
      });
    }

    it("does not even fail the step of a node that is not Ready while another run holds the Lease", () => {
      const d = decideRestore(
        stepWorld(onN1(), undefined, {
          nodes: [node("n1", false), node("n2"), node("n3")],
          lease: LEASE_OTHER,
          vms: vms({ "vms/a": running("n1"), "vms/b": running("n1") }),
        }),
        settings,
      );
      assert.deepEqual(d.actions, []);
      assert.equal(condition(d, "Progressing")?.reason, "WaitingForVolumeLease");
      assert.equal(d.requeueAfterMs, 5_000);
    });

    it("waits, touching nothing, while another run holds the shared volume's Lease", () => {
      const p = onN1();
      const d = decideRestore(
        stepWorld(p, undefined, { lease: LEASE_OTHER, vms: vms({ "vms/a": running("n1"), "vms/b": running("n1") }) }),
        settings,
      );
      assert.deepEqual(d.actions, []);
      assert.equal(condition(d, "Progressing")?.reason, "WaitingForVolumeLease");
      assert.match(condition(d, "Progressing")?.message ?? "", /in use by FederatedBackup\/vms\/nightly/);
      assert.equal(d.status.coordinatingNode, undefined);
      assert.equal(d.status.phase, "InProgress");
      assert.equal(d.requeueAfterMs, 5_000);
      assert.deepEqual(
        d.status.results?.map((r) => r.phase),
        ["Pending", "Pending"],
      );
    });

    it("claims the Lease before anything else, records Preparing and stops every VM in the same pass", () => {
      const p = onN1();
      const d = decideRestore(
        stepWorld(p, undefined, { lease: LEASE_FREE, vms: vms({ "vms/a": running("n1"), "vms/b": running("n1") }) }),
        settings,
      );
      assert.deepEqual(kinds(d), ["ClaimLease", "RecordStep", "Event", "HoldVm", "HoldVm"]);
      assert.deepEqual(d.actions[0], { kind: "ClaimLease", node: "n1", step: "r1-n1" });
      assert.deepEqual(records(d), [
        { phase: "Preparing", workloads: 2, startTime: iso(NOW), message: "stopping the VMs" },
      ]);
      assert.deepEqual(only(d, "Event")[0], {
        kind: "Event",
        type: "Normal",
        reason: "NodeStarted",
        message: "node n1 is the coordinating node: restoring 2 VMs",
      });
      assert.deepEqual(
        only(d, "HoldVm").map((a) => [keyOf(a.vm), a.hold]),
        [
          ["vms/a", hold("n1")],
          ["vms/b", hold("n1")],
        ],
      );
      assert.equal(d.status.coordinatingNode, "n1");
      assert.deepEqual(
        [condition(d, "Progressing")?.reason, condition(d, "Progressing")?.message],
        ["PreparingVMs", "node n1 (1/1): 2 VMs not stopped yet: a stopping, b stopping"],
      );
      assert.deepEqual(
        d.status.results?.map((r) => r.phase),
        ["Running", "Running"],
      );
      assert.equal(d.requeueAfterMs, 2_000);
    });

    for (const c of [
      { title: "free", lease: LEASE_FREE, claims: true },
      { title: "ours for this node, just renewed", lease: leaseOurs("n1"), claims: false },
      { title: "ours for this node, due for renewal", lease: leaseOurs("n1", NOW - 10 * SECOND), claims: true },
      { title: "ours, naming the previous node", lease: leaseOurs("n0"), claims: true },
    ]) {
      it(`claims the Lease when it is ${c.title}: ${c.claims}`, () => {
        const d = decideRestore(
          stepWorld(onN1(), undefined, {
            lease: c.lease,
            vms: vms({ "vms/a": running("n1"), "vms/b": running("n1") }),
          }),
          settings,
        );
        assert.equal(d.actions[0]?.kind === "ClaimLease", c.claims);
        assert.equal(only(d, "ClaimLease").length, c.claims ? 1 : 0);
      });
    }
  });

  describe("Preparing: migrate or stop every VM", () => {
    const preparing = (startedAgo = MINUTE): NodeRestoreStatus => ({
      phase: "Preparing",
      workloads: 2,
      startTime: iso(NOW - startedAgo),
    });

    it("records how each VM ran, where, and its node pin before stopping it", () => {
      const d = decideRestore(
        stepWorld(onN1(), preparing(), {
          vms: vms({
            "vms/a": running("n1", { runStrategy: "RerunOnFailure", pinnedNode: "n1" }),
            "vms/b": { exists: true, runStrategy: "Halted" },
          }),
        }),
        settings,
      );
      assert.deepEqual(
        only(d, "HoldVm").map((a) => [a.vm.name, a.hold]),
        [
          ["a", { owner: ME, runStrategy: "RerunOnFailure", activeNode: "n1", nodeSelector: "n1" }],
          ["b", { owner: ME, runStrategy: "Halted", activeNode: "" }],
        ],
      );
      assert.ok(!kinds(d).includes("StartJob"));
      assert.ok(!kinds(d).includes("RecordStep"), "nothing new to record");
    });

    it("an instance that is not Running (Scheduling) is not where the VM runs", () => {
      const d = decideRestore(
        stepWorld(onN1(), preparing(), {
          vms: vms({
            "vms/a": running("n1", { vmi: { phase: "Scheduling", migrating: false } }),
            "vms/b": held("n1"),
          }),
        }),
        settings,
      );
      assert.deepEqual(
        only(d, "HoldVm").map((a) => [a.vm.name, a.hold.activeNode]),
        [["a", ""]],
      );
    });

    it("takes over a hold left by another restore, keeping the state it recorded", () => {
      const theirs = { owner: OTHER_RESTORE, runStrategy: "Always", activeNode: "n5", nodeSelector: "n5" };
      const d = decideRestore(
        stepWorld(onN1(), preparing(), {
          vms: vms({ "vms/a": { exists: true, runStrategy: "Halted", hold: theirs }, "vms/b": held("n1") }),
        }),
        settings,
      );
      assert.deepEqual(
        only(d, "HoldVm").map((a) => [a.vm.name, a.hold]),
        [["a", { ...theirs, owner: ME }]],
      );
    });

    it("stops again a held VM that someone started, with the hold it already has", () => {
      const d = decideRestore(
        stepWorld(onN1(), preparing(), {
          vms: vms({
            "vms/a": held("n1", { runStrategy: "Always", vmi: { node: "n1", phase: "Running", migrating: false } }),
            "vms/b": held("n1"),
          }),
        }),
        settings,
      );
      assert.deepEqual(
        only(d, "HoldVm").map((a) => [a.vm.name, a.hold]),
        [["a", hold("n1")]],
      );
      assert.ok(!kinds(d).includes("StartJob"));
    });

    it("waits while a stopped VM's instance is still there", () => {
      const d = decideRestore(
        stepWorld(onN1(), preparing(), {
          vms: vms({
            "vms/a": held("n1", { vmi: { node: "n1", phase: "Running", migrating: false } }),
            "vms/b": held("n1"),
          }),
        }),
        settings,
      );
      assert.deepEqual(d.actions, []);
      assert.equal(condition(d, "Progressing")?.message, "node n1 (1/1): 1 VMs not stopped yet: a stopping on n1");
      assert.equal(d.requeueAfterMs, 2_000);
    });

    it("starts the restore Job once every VM is stopped, and records Restoring first", () => {
      const d = decideRestore(
        stepWorld(onN1(), preparing(), { vms: vms({ "vms/a": held("n1"), "vms/b": held("n1") }) }),
        settings,
      );
      assert.deepEqual(kinds(d), ["RecordStep", "StartJob"]);
      assert.equal(only(d, "StartJob")[0]?.step.metadata.name, "r1-n1");
      assert.deepEqual(records(d), [{ phase: "Restoring", message: "the restore Job writes back the disks of 2 VMs" }]);
      assert.deepEqual(
        [condition(d, "Progressing")?.reason, condition(d, "Progressing")?.message],
        ["Restoring", "node n1 (1/1): restoring the disks of 2 VMs"],
      );
    });

    it("fails a VM whose VirtualMachine is gone and restores the others", () => {
      const d = decideRestore(stepWorld(onN1(), preparing(), { vms: vms({ "vms/b": held("n1") }) }), settings);
      assert.deepEqual(kinds(d), ["RecordStep", "StartJob"]);
      const [rec] = records(d);
      assert.equal(rec?.phase, "Restoring");
      assert.equal(rec?.message, "the restore Job writes back the disks of 1 VMs");
      assert.deepEqual(rec?.outcomes, [
        {
          namespace: "vms",
          name: "a",
          phase: "Failed",
          verified: false,
          reason: "VMNotFound",
          message:
            "VirtualMachine vms/a does not exist: without it the VM can be neither stopped nor started, so its disks were not touched",
        },
      ]);
    });

    it("records the VMs it failed before it starts the Job, so that the agent never sees them", () => {
      // a is stopped; b is gone: the RecordStep that names b Failed is applied before the Job exists.
      const d = decideRestore(stepWorld(onN1(), preparing(), { vms: vms({ "vms/a": held("n1") }) }), settings);
      const recordAt = d.actions.findIndex((a) => a.kind === "RecordStep");
      const jobAt = d.actions.findIndex((a) => a.kind === "StartJob");
      assert.ok(recordAt >= 0 && jobAt >= 0 && recordAt < jobAt, kinds(d).join(", "));
      const rec = only(d, "RecordStep")[0];
      assert.equal(rec?.status.phase, "Restoring");
      assert.deepEqual(
        rec?.status.outcomes?.map((o) => `${o.name} ${o.phase}`),
        ["b Failed"],
      );
    });

    for (const c of [
      { title: "the default nodeTimeout (30m)", spec: {}, startedAgo: 31 * MINUTE },
      { title: "spec.nodeTimeout 5m", spec: { nodeTimeout: "5m" }, startedAgo: 6 * MINUTE },
    ]) {
      it(`fails a VM that does not stop within ${c.title}; the others are restored`, () => {
        const d = decideRestore(
          stepWorld(onN1(c.spec), preparing(c.startedAgo), {
            vms: vms({
              "vms/a": held("n1", { vmi: { node: "n1", phase: "Running", migrating: false } }),
              "vms/b": held("n1"),
            }),
          }),
          settings,
        );
        assert.deepEqual(kinds(d), ["RecordStep", "StartJob"]);
        assert.deepEqual(records(d)[0]?.outcomes, [
          {
            namespace: "vms",
            name: "a",
            phase: "Failed",
            verified: false,
            node: "n1",
            reason: "NotStopped",
            message: "not stopped within nodeTimeout; its disks were not touched",
          },
        ]);
      });
    }

    it("fails without stopping it a VM not held yet when nodeTimeout has passed", () => {
      // a was never held (say the operator was away); stopping it now would only start it again.
      const d = decideRestore(
        stepWorld(onN1(), preparing(31 * MINUTE), { vms: vms({ "vms/a": running("n1"), "vms/b": held("n1") }) }),
        settings,
      );
      assert.deepEqual(vmActions(d), []);
      assert.deepEqual(kinds(d), ["RecordStep", "StartJob"]);
      assert.deepEqual(records(d)[0]?.outcomes, [
        {
          namespace: "vms",
          name: "a",
          phase: "Failed",
          verified: false,
          node: "n1",
          reason: "NotStopped",
          message: "not stopped within nodeTimeout; its disks were not touched",
        },
      ]);
      assert.equal(records(d)[0]?.message, "the restore Job writes back the disks of 1 VMs");
    });

    it("with no VM held when nodeTimeout has passed, starts no Job, and the step fails with every VM as it was", () => {
      const world = stepWorld(onN1(), preparing(31 * MINUTE), {
        vms: vms({ "vms/a": running("n1"), "vms/b": { exists: true, runStrategy: "Halted" } }),
      });
      const d = decideRestore(world, settings);
      assert.deepEqual(kinds(d), ["RecordStep"]);
      const [rec] = records(d);
      assert.equal(rec?.phase, "Starting");
      assert.deepEqual(
        rec?.outcomes?.map((o) => `${o.name} ${o.phase} ${o.node ?? "-"}`),
        ["a Failed n1", "b Failed -"],
      );
      // The next pass: nothing is held, so nothing is started; the step is over.
      const step = world.steps[0]!.step;
      const next = decideRestore(
        { ...world, steps: [{ step: { ...step, status: { ...step.status, ...rec } } }] },
        settings,
      );
      assert.deepEqual(vmActions(next), []);
      assert.deepEqual(kinds(next), ["RecordStep", "Event"]);
      assert.equal(records(next)[0]?.phase, "Failed");
      assert.equal(records(next)[0]?.message, "0 of 2 VMs restored");
    });

    // Stopping a VM after the node's time is up would only have it started again in Starting.
    it("does not stop again, after nodeTimeout, a held VM that someone started", () => {
      const d = decideRestore(
        stepWorld(onN1(), preparing(31 * MINUTE), {
          vms: vms({
            "vms/a": held("n1", { runStrategy: "Always", vmi: { node: "n1", phase: "Running", migrating: false } }),
            "vms/b": held("n1"),
          }),
        }),
        settings,
      );
      assert.equal(records(d)[0]?.outcomes?.[0]?.phase, "Failed");
      assert.deepEqual(vmActions(d), []);
    });

    it("gives up at once when the node becomes NotReady: no Job, the stopped VM is failed to be started again", () => {
      const d = decideRestore(
        stepWorld(onN1(), preparing(), {
          nodes: [node("n1", false), node("n2"), node("n3")],
          vms: vms({
            "vms/a": running("n1"),
            "vms/b": held("n1"),
          }),
        }),
        settings,
      );
      assert.deepEqual(vmActions(d), [], "nothing is stopped on a node that is gone");
      assert.ok(!kinds(d).includes("StartJob"));
      const [rec] = records(d);
      assert.equal(rec?.phase, "Starting");
      assert.deepEqual(
        rec?.outcomes?.map((o) => `${o.name} ${o.phase}`),
        ["a Failed", "b Failed"],
      );
      assert.match(rec?.outcomes?.[1]?.message ?? "", /node n1 became NotReady before its disks were restored/);
    });

    it("does not time out before nodeTimeout", () => {
      const d = decideRestore(
        stepWorld(onN1({ nodeTimeout: "5m" }), preparing(4 * MINUTE), {
          vms: vms({
            "vms/a": held("n1", { vmi: { node: "n1", phase: "Running", migrating: false } }),
            "vms/b": held("n1"),
          }),
        }),
        settings,
      );
      assert.deepEqual(d.actions, []);
    });

    it("goes straight to Starting, without a Job, when no VM is left to restore", () => {
      const d = decideRestore(stepWorld(onN1(), preparing(), { vms: vms({}) }), settings);
      assert.deepEqual(kinds(d), ["RecordStep"]);
      const [rec] = records(d);
      assert.equal(rec?.phase, "Starting");
      assert.equal(rec?.startingSince, iso(NOW));
      assert.equal(rec?.message, "no VM left to restore");
      assert.deepEqual(
        rec?.outcomes?.map((o) => `${o.name} ${o.phase}`),
        ["a Failed", "b Failed"],
      );
      assert.equal(d.requeueAfterMs, 0);
    });

    describe("a VM running on another node", () => {
      // a runs on n1 (in place); c runs on n3 and is to be restored on n1.
      const elsewhere = (spec: Partial<WorkloadRestore["spec"]> = {}) =>
        plan(
          [resolved("vms/a"), resolved("vms/c", { targetNode: "n1" })],
          [vmi("vms/a", "n1"), vmi("vms/c", "n3")],
          spec,
        );
      const on = (n: string, migrating = false) => ({ node: n, phase: "Running", migrating });

      it("is planned MigrateThenRestore by default", () => {
        assert.deepEqual(
          elsewhere().steps[0]?.spec.workloads.map((w) => `${w.name} ${w.action}`),
          ["a RestoreInPlace", "c MigrateThenRestore"],
        );
      });

      it("Migrate: is live-migrated to the restore node, not stopped", () => {
        const d = decideRestore(
          stepWorld(elsewhere(), preparing(), { vms: vms({ "vms/a": held("n1"), "vms/c": running("n3") }) }),
          settings,
        );
        assert.deepEqual(vmActions(d), ["CreateMigration c@n1"]);
        assert.ok(!kinds(d).includes("StartJob"));
        assert.equal(condition(d, "Progressing")?.message, "node n1 (1/1): 1 VMs not stopped yet: c migrating from n3");
      });

      it("Migrate: the migration is created once", () => {
        const d = decideRestore(
          stepWorld(elsewhere(), preparing(), {
            vms: vms({ "vms/a": held("n1"), "vms/c": running("n3", { migration: { phase: "Running" } }) }),
          }),
          settings,
        );
        assert.deepEqual(d.actions, []);
      });

      it("Migrate: waits while a Succeeded migration still hands over", () => {
        const d = decideRestore(
          stepWorld(elsewhere(), preparing(), {
            vms: vms({
              "vms/a": held("n1"),
              "vms/c": running("n3", { vmi: on("n3", true), migration: { phase: "Succeeded" } }),
            }),
          }),
          settings,
        );
        assert.deepEqual(d.actions, []);
      });

      it("Migrate: once it runs on the restore node it is stopped there, and its hold names that node", () => {
        const d = decideRestore(
          stepWorld(elsewhere(), preparing(), {
            vms: vms({ "vms/a": held("n1"), "vms/c": running("n1", { migration: { phase: "Succeeded" } }) }),
          }),
          settings,
        );
        assert.deepEqual(
          only(d, "HoldVm").map((a) => [a.vm.name, a.hold.activeNode]),
          [["c", "n1"]],
        );
      });

      for (const c of [
        {
          title: "the migration failed",
          view: running("n3", { migration: { phase: "Failed" } }),
          startedAgo: MINUTE,
          message: "the live migration from n3 to n1 failed; the VM keeps running on n3 and its disks were not touched",
          reason: "MigrationFailed",
        },
        {
          title: "the migration Succeeded but the VM still runs on n3",
          view: running("n3", { migration: { phase: "Succeeded" } }),
          startedAgo: MINUTE,
          message: "the live migration from n3 to n1 failed; the VM keeps running on n3 and its disks were not touched",
          reason: "MigrationFailed",
        },
        {
          title: "it was not migrated within nodeTimeout",
          view: running("n3", { migration: { phase: "Running" } }),
          startedAgo: 31 * MINUTE,
          message: "not migrated to n1 within nodeTimeout; it keeps running on n3 and its disks were not touched",
          reason: "MigrationTimeout",
        },
      ]) {
        it(`Migrate: fails the VM, which keeps running, when ${c.title}; the others are restored`, () => {
          const d = decideRestore(
            stepWorld(elsewhere(), preparing(c.startedAgo), { vms: vms({ "vms/a": held("n1"), "vms/c": c.view }) }),
            settings,
          );
          assert.deepEqual(vmActions(d), [], "the VM is neither stopped nor migrated again");
          assert.deepEqual(kinds(d), ["RecordStep", "StartJob"]);
          const [rec] = records(d);
          assert.equal(rec?.message, "the restore Job writes back the disks of 1 VMs");
          const [outcome, ...others] = rec?.outcomes ?? [];
          assert.deepEqual(others, []);
          assert.ok(outcome);
          const { message, ...fields } = outcome;
          assert.deepEqual(fields, {
            namespace: "vms",
            name: "c",
            phase: "Failed",
            verified: false,
            node: "n3",
            reason: c.reason,
          });
          if (typeof c.message === "string") assert.equal(message, c.message);
          else assert.match(message ?? "", c.message);
        });
      }

      // A VM that was being migrated was never to be stopped: the message says what did not happen.
      it("Migrate: says that a VM was not migrated in time, not that it was not stopped", () => {
        const d = decideRestore(
          stepWorld(elsewhere(), preparing(31 * MINUTE), {
            vms: vms({ "vms/a": held("n1"), "vms/c": running("n3", { migration: { phase: "Running" } }) }),
          }),
          settings,
        );
        assert.match(records(d)[0]?.outcomes?.[0]?.message ?? "", /not migrated to n1 within nodeTimeout/);
      });

      it("Migrate: records a failed migration right away while other VMs are still stopping", () => {
        const d = decideRestore(
          stepWorld(elsewhere(), preparing(), {
            vms: vms({
              "vms/a": held("n1", { vmi: on("n1") }),
              "vms/c": running("n3", { migration: { phase: "Failed" } }),
            }),
          }),
          settings,
        );
        assert.deepEqual(kinds(d), ["RecordStep"]);
        assert.deepEqual(Object.keys(records(d)[0] ?? {}), ["outcomes"]);
        assert.deepEqual(
          records(d)[0]?.outcomes?.map((o) => `${o.name} ${o.phase}`),
          ["c Failed"],
        );
      });

      // Regression: the controller decided again at execution time, from spec.conflictPolicy (with a copy of its
      // default), instead of carrying out the action the plan recorded in the step.
      for (const c of [
        {
          title: "StopThenRestore, though the spec now says Migrate",
          planned: "Stop",
          now: "Migrate",
          does: "HoldVm c",
        },
        {
          title: "MigrateThenRestore, though the spec now says Stop",
          planned: "Migrate",
          now: "Stop",
          does: "CreateMigration c@n1",
        },
      ] as const) {
        it(`carries out the action the step records: ${c.title}`, () => {
          const p = elsewhere({ conflictPolicy: c.planned });
          const changed = { ...p, restore: { ...p.restore, spec: { ...p.restore.spec, conflictPolicy: c.now } } };
          const d = decideRestore(
            stepWorld(changed, preparing(), { vms: vms({ "vms/a": held("n1"), "vms/c": running("n3") }) }),
            settings,
          );
          assert.deepEqual(vmActions(d), [c.does]);
        });
      }

      it("a VM planned RestoreInPlace that moved since is stopped where it runs now, not migrated back", () => {
        const d = decideRestore(
          stepWorld(onN1(), preparing(), { vms: vms({ "vms/a": held("n1"), "vms/b": running("n2") }) }),
          settings,
        );
        assert.deepEqual(vmActions(d), ["HoldVm b"]);
        assert.deepEqual(only(d, "HoldVm")[0]?.hold, hold("n2"));
      });

      it("a VM planned MigrateThenRestore that moved since is migrated from where it runs now", () => {
        const d = decideRestore(
          stepWorld(elsewhere(), preparing(), { vms: vms({ "vms/a": held("n1"), "vms/c": running("n2") }) }),
          settings,
        );
        assert.deepEqual(vmActions(d), ["CreateMigration c@n1"]);
      });

      it("Stop: is stopped where it runs, and its hold names that node", () => {
        const d = decideRestore(
          stepWorld(elsewhere({ conflictPolicy: "Stop" }), preparing(), {
            vms: vms({ "vms/a": held("n1"), "vms/c": running("n3") }),
          }),
          settings,
        );
        assert.deepEqual(vmActions(d), ["HoldVm c"]);
        assert.deepEqual(only(d, "HoldVm")[0]?.hold, hold("n3"));
      });
    });
  });

  describe("Restoring: the node agent's Job", () => {
    const restoring = (startedAgo: number, results?: NodeRestoreStatusResult[]): NodeRestoreStatus => ({
      phase: "Restoring",
      workloads: 2,
      startTime: iso(NOW - startedAgo),
      ...(results ? { results } : {}),
    });
    const stoppedVms = () => vms({ "vms/a": held("n1"), "vms/b": held("n3") });
    const job = (fields: Partial<JobView> = {}): JobView => ({
      name: "r1-n1",
      complete: false,
      failed: false,
      ...fields,
    });
    const both = [result("vms/a"), result("vms/b")];

    const cases: Array<{
      title: string;
      job?: JobView;
      startedAgo?: number;
      results?: NodeRestoreStatusResult[];
      kinds: string[];
      /** The message recorded with phase Starting, if it is. */
      starting?: string;
      vm?: string[];
      progressing?: string;
      requeue?: number;
    }> = [
      {
        title: "waits while the Job runs",
        job: job(),
        kinds: [],
        progressing: "node n1 (1/1): the restore Job runs for 2 VMs",
        requeue: 2_000,
      },
      {
        title:
          "deletes a Job still running after nodeTimeout (counted from the node's start) and goes on to Starting, " +
          "starting no VM yet",
        job: job(),
        startedAgo: 31 * MINUTE,
        kinds: ["DeleteJob", "RecordStep"],
        starting: "the restore Job did not finish within nodeTimeout",
        vm: [],
        progressing: "node n1 (1/1): the restore Job timed out; waiting for it to end",
        requeue: 2_000,
      },
      {
        title: "goes on to Starting with the agent's report once the Job is complete, starting the VMs on the node",
        job: job({ complete: true, completionTime: iso(NOW - SECOND) }),
        results: both,
        kinds: ["RecordStep", "StartVm", "StartVm"],
        starting: "the restore Job finished",
        vm: ["StartVm a@n1 Always", "StartVm b@n1 Always"],
      },
      {
        title: "waits for the agent's report a little after the Job completed",
        job: job({ complete: true, completionTime: iso(NOW - 10 * SECOND) }),
        kinds: [],
        progressing: "node n1 (1/1): waiting for the node agent's report",
        requeue: 1_000,
      },
      {
        title: "waits for the rest of a partial report",
        job: job({ complete: true, completionTime: iso(NOW - 10 * SECOND) }),
        results: [result("vms/a")],
        kinds: [],
        requeue: 1_000,
      },
      {
        title: "stops waiting for a report after the grace period: unreported VMs start where they ran",
        job: job({ complete: true, completionTime: iso(NOW - 31 * SECOND) }),
        results: [result("vms/a")],
        kinds: ["RecordStep", "StartVm", "StartVm"],
        starting: "the restore Job finished",
        vm: ["StartVm a@n1 Always", "StartVm b@n3 Always"],
      },
      {
        title: "a failed Job: what it reported counts, the other VMs start where they ran",
        job: job({
          failed: true,
          failureReason: "BackoffLimitExceeded",
          failureMessage: "Job has reached the specified backoff limit",
          completionTime: iso(NOW - 31 * SECOND),
        }),
        results: [result("vms/a")],
        kinds: ["RecordStep", "StartVm", "StartVm"],
        starting: "the restore Job failed (BackoffLimitExceeded): Job has reached the specified backoff limit",
        vm: ["StartVm a@n1 Always", "StartVm b@n3 Always"],
      },
      {
        title: "a Job that disappeared: the VMs start where they ran",
        kinds: ["RecordStep", "StartVm", "StartVm"],
        starting: "the restore Job disappeared before it finished",
        vm: ["StartVm a@n1 Always", "StartVm b@n3 Always"],
      },
    ];
    for (const c of cases) {
      it(c.title, () => {
        const d = decideRestore(
          stepWorld(onN1(), restoring(c.startedAgo ?? 2 * MINUTE, c.results), {
            vms: stoppedVms(),
            ...(c.job ? { job: c.job } : {}),
          }),
          settings,
        );
        assert.deepEqual(kinds(d), c.kinds);
        if (c.starting !== undefined) {
          assert.deepEqual(records(d)[0], { phase: "Starting", startingSince: iso(NOW), message: c.starting });
          assert.equal(d.status.phase, "InProgress");
        } else {
          assert.deepEqual(records(d), []);
        }
        if (c.vm) assert.deepEqual(vmActions(d), c.vm);
        if (c.progressing) assert.equal(condition(d, "Progressing")?.message, c.progressing);
        if (c.requeue !== undefined) assert.equal(d.requeueAfterMs, c.requeue);
        if (c.kinds.includes("DeleteJob")) assert.equal(only(d, "DeleteJob")[0]?.step.metadata.name, "r1-n1");
      });
    }

    it("does not wait for a report forever when the finished Job has no completionTime", () => {
      const d = decideRestore(
        stepWorld(onN1(), restoring(2 * 60 * MINUTE), { vms: stoppedVms(), job: job({ complete: true }) }),
        settings,
      );
      assert.deepEqual(records(d), [
        { phase: "Starting", startingSince: iso(NOW), message: "the restore Job finished" },
      ]);
      assert.deepEqual(vmActions(d), ["StartVm a@n1 Always", "StartVm b@n3 Always"]);
    });

    for (const c of [
      { startedAgo: 10 * SECOND, waits: true },
      { startedAgo: 31 * SECOND, waits: false },
    ]) {
      it(`measures the report's grace from the step's start when the finished Job has no completionTime (${c.startedAgo / SECOND}s ago: ${c.waits ? "waits" : "goes on"})`, () => {
        for (const failed of [false, true]) {
          const d = decideRestore(
            stepWorld(onN1(), restoring(c.startedAgo), {
              vms: stoppedVms(),
              job: job(failed ? { failed: true } : { complete: true }),
            }),
            settings,
          );
          assert.deepEqual(
            records(d).map((r) => r.phase),
            c.waits ? [] : ["Starting"],
          );
          if (c.waits) assert.equal(d.requeueAfterMs, 1_000);
        }
      });
    }
  });

  describe("Starting: each VM is started where it belongs, then released", () => {
    // One VM, a, on n1.
    const single = () => plan([resolved("vms/a")], [vmi("vms/a", "n1")]);
    const starting = (report?: Partial<NodeRestoreStatusResult>, sinceAgo = MINUTE): NodeRestoreStatus => ({
      phase: "Starting",
      workloads: 1,
      startTime: iso(NOW - 5 * MINUTE),
      startingSince: iso(NOW - sinceAgo),
      message: "the restore Job finished",
      ...(report ? { results: [result("vms/a", report)] } : {}),
    });
    const on = (n: string) => ({ node: n, phase: "Running", migrating: false });

    const cases: Array<{ title: string; report?: Partial<NodeRestoreStatusResult>; view: VmView; vm: string[] }> = [
      {
        title: "a restored VM is started on the restore node with the run strategy it had",
        report: {},
        view: held("n1"),
        vm: ["StartVm a@n1 Always"],
      },
      {
        title: "RerunOnFailure is kept",
        report: {},
        view: held("n1", {}, { runStrategy: "RerunOnFailure" }),
        vm: ["StartVm a@n1 RerunOnFailure"],
      },
      {
        title: "a restored VM that did not run before is started (Always) on the restore node",
        report: {},
        view: held("", {}, { runStrategy: "Halted" }),
        vm: ["StartVm a@n1 Always"],
      },
      {
        title: "a VM whose restore failed is started again on the node it ran on before",
        report: CHECKSUM,
        view: held("n3"),
        vm: ["StartVm a@n3 Always"],
      },
      {
        title: "a VM the agent did not report on is started again where it ran",
        view: held("n3"),
        vm: ["StartVm a@n3 Always"],
      },
      {
        title: "a VM that did not run and whose restore failed is released with its original run strategy",
        report: CHECKSUM,
        view: held("", {}, { runStrategy: "Halted" }),
        vm: ["ReleaseVm a Halted"],
      },
      {
        title: "a started VM is waited for",
        report: {},
        view: held("n1", { runStrategy: "Always", pinnedNode: "n1" }),
        vm: [],
      },
      {
        title: "a VM running on the restore node is released (hold and pin dropped)",
        report: {},
        view: held("n1", { runStrategy: "Always", pinnedNode: "n1", vmi: on("n1") }),
        vm: ["ReleaseVm a"],
      },
      {
        title: "a VM running again where it ran before is released",
        report: CHECKSUM,
        view: held("n3", { runStrategy: "Always", pinnedNode: "n3", vmi: on("n3") }),
        vm: ["ReleaseVm a"],
      },
      {
        title: "a VM still running on its target but Halted (it did not finish stopping) is started, not released",
        report: {},
        view: held("n1", { vmi: on("n1") }),
        vm: ["StartVm a@n1 Always"],
      },
      {
        title: "a VM that ran Manual is started Always",
        report: {},
        view: held("n1", {}, { runStrategy: "Manual" }),
        vm: ["StartVm a@n1 Always"],
      },
      {
        title: "a VM that ran Manual is released Manual once it runs",
        report: {},
        view: held("n1", { runStrategy: "Always", pinnedNode: "n1", vmi: on("n1") }, { runStrategy: "Manual" }),
        vm: ["ReleaseVm a Manual"],
      },
      {
        title: "a VM that ran RerunOnFailure is released without changing its run strategy",
        report: {},
        view: held(
          "n1",
          { runStrategy: "RerunOnFailure", pinnedNode: "n1", vmi: on("n1") },
          { runStrategy: "RerunOnFailure" },
        ),
        vm: ["ReleaseVm a"],
      },
      {
        title: "a restored VM that did not run before keeps the Always it was started with when released",
        report: {},
        view: held("", { runStrategy: "Always", pinnedNode: "n1", vmi: on("n1") }, { runStrategy: "Halted" }),
        vm: ["ReleaseVm a"],
      },
      {
        title: "a VM that did not run, ran Manual and whose restore failed is released Manual",
        report: CHECKSUM,
        view: held("", {}, { runStrategy: "Manual" }),
        vm: ["ReleaseVm a Manual"],
      },
    ];
    for (const c of cases) {
      it(c.title, () => {
        const d = decideRestore(stepWorld(single(), starting(c.report), { vms: vms({ "vms/a": c.view }) }), settings);
        assert.deepEqual(vmActions(d), c.vm);
        assert.deepEqual(records(d), [], "no outcome while the VM is held");
        assert.equal(condition(d, "Progressing")?.reason, "StartingVMs");
        assert.equal(d.requeueAfterMs, 2_000);
        for (const a of only(d, "ReleaseVm")) assert.deepEqual(a.hold, c.view.hold);
      });
    }

    describe("a VM on a Block-mode claim", () => {
      const onBlock = (): Planned => {
        const p = single();
        p.steps[0]!.spec.workloads[0]!.claims = [{ volume: "root", claimName: "a-root", volumeMode: "Block" }];
        return p;
      };
      const PARTLY = {
        restored: false,
        reason: "ClaimPartlyWritten",
        message: "device a-root partly written",
      } as const;

      for (const [title, report] of [
        ["whose device the agent wrote in part", PARTLY],
        ["that the Job did not report on (it may have been writing)", undefined],
      ] as const) {
        it(`${title} is released stopped, not started, and its outcome says why`, () => {
          const d = decideRestore(
            stepWorld(onBlock(), starting(report), { vms: vms({ "vms/a": held("n3") }) }),
            settings,
          );
          assert.deepEqual(vmActions(d), ["ReleaseVm a Halted"]);
          const [outcome] = records(d)[0]?.outcomes ?? [];
          assert.equal(outcome?.phase, "Failed");
          assert.equal(outcome?.reason, report ? "ClaimPartlyWritten" : "JobFailed");
          assert.match(outcome?.message ?? "", /left stopped \(runStrategy Halted\)/);
          assert.doesNotMatch(outcome?.message ?? "", /not touched/);
        });
      }

      it("whose backup failed its checksum is started again where it ran: nothing was written", () => {
        const d = decideRestore(
          stepWorld(onBlock(), starting(CHECKSUM), { vms: vms({ "vms/a": held("n3") }) }),
          settings,
        );
        assert.deepEqual(vmActions(d), ["StartVm a@n3 Always"]);
      });
    });

    it("releases unpinned, for KubeVirt to place, a VM whose node is gone, and fails it with the agent's reason", () => {
      const d = decideRestore(stepWorld(single(), starting(CHECKSUM), { vms: vms({ "vms/a": held("n4") }) }), settings);
      assert.deepEqual(vmActions(d), ["ReleaseVm a Always"]);
      const [outcome] = records(d)[0]?.outcomes ?? [];
      assert.equal(outcome?.phase, "Failed");
      assert.equal(outcome?.reason, "ChecksumMismatch");
      assert.match(outcome?.message ?? "", /^ChecksumMismatch: .*node n4 is not Ready: it was released/);
    });

    it("fails a restored VM whose node is gone with NodeFailed, released unpinned", () => {
      const d = decideRestore(
        stepWorld(single(), starting({}), {
          vms: vms({ "vms/a": held("n2") }),
          nodes: [node("n1", false), node("n2"), node("n3")],
        }),
        settings,
      );
      assert.deepEqual(vmActions(d), ["ReleaseVm a Always"]);
      const [outcome] = records(d)[0]?.outcomes ?? [];
      assert.deepEqual([outcome?.phase, outcome?.reason], ["Failed", "NodeFailed"]);
      assert.match(outcome?.message ?? "", /^its disks were restored, but node n1 is not Ready/);
    });

    // The outcome's reason must pass the CRD's pattern: an agent's reason that is no CamelCase word is not copied.
    for (const c of [
      { agent: "SizeMismatch", reason: "SizeMismatch" },
      { agent: undefined, reason: "RestoreFailed" },
      { agent: "not a reason", reason: "RestoreFailed" },
    ]) {
      it(`takes the agent's reason ${JSON.stringify(c.agent)} as ${c.reason}, into the outcome and the results`, () => {
        const report = { restored: false, verified: false, message: "bad", ...(c.agent ? { reason: c.agent } : {}) };
        const d = decideRestore(
          stepWorld(single(), starting(report), { vms: vms({ "vms/a": running("n1") }) }),
          settings,
        );
        assert.equal(records(d)[0]?.outcomes?.[0]?.reason, c.reason);
        assert.equal(d.status.results?.[0]?.reason, c.reason);
      });
    }

    it("records a released, restored VM as Restored and the step as Succeeded", () => {
      const d = decideRestore(stepWorld(single(), starting({}), { vms: vms({ "vms/a": running("n1") }) }), settings);
      assert.deepEqual(kinds(d), ["RecordStep", "Event"]);
      assert.deepEqual(records(d), [
        {
          phase: "Succeeded",
          restoredCount: 1,
          completionTime: iso(NOW),
          message: "1 of 1 VMs restored",
          outcomes: [
            {
              namespace: "vms",
              name: "a",
              phase: "Restored",
              node: "n1",
              bytes: 2048,
              verified: true,
              message: "3 files, 2048 bytes written and verified; running on n1",
            },
          ],
        },
      ]);
      assert.deepEqual(only(d, "Event"), [
        { kind: "Event", type: "Normal", reason: "NodeSucceeded", message: "node n1: 1 of 1 VMs restored" },
      ]);
      assert.equal(d.requeueAfterMs, 0);
      assert.deepEqual(d.status.results, [
        {
          namespace: "vms",
          name: "a",
          phase: "Restored",
          node: "n1",
          bytes: 2048,
          verified: true,
          message: "3 files, 2048 bytes written and verified; running on n1",
        },
      ]);
      assert.equal(d.status.progress?.restored, "1/1");
    });

    for (const c of [
      {
        title: "with the agent's reason, running again where it ran",
        report: CHECKSUM as Partial<NodeRestoreStatusResult>,
        view: running("n3"),
        outcome: {
          namespace: "vms",
          name: "a",
          phase: "Failed",
          node: "n3",
          verified: false,
          reason: "ChecksumMismatch",
          message:
            "ChecksumMismatch: disk.img: sha256 differs from the backup; its disks were not touched; started again on n3",
        },
      },
      {
        title: "that did not run before, left stopped",
        report: CHECKSUM as Partial<NodeRestoreStatusResult>,
        view: { exists: true, runStrategy: "Halted" },
        outcome: {
          namespace: "vms",
          name: "a",
          phase: "Failed",
          verified: false,
          reason: "ChecksumMismatch",
          message: "ChecksumMismatch: disk.img: sha256 differs from the backup; its disks were not touched",
        },
      },
      {
        title: "without a report, with the step's account of the Job",
        report: undefined,
        view: running("n1"),
        outcome: {
          namespace: "vms",
          name: "a",
          phase: "Failed",
          node: "n1",
          verified: false,
          reason: "JobFailed",
          message: "not restored: the restore Job finished; its disks were not touched; started again on n1",
        },
      },
    ]) {
      it(`records a VM whose restore failed as Failed ${c.title}, and the step as Failed`, () => {
        const d = decideRestore(stepWorld(single(), starting(c.report), { vms: vms({ "vms/a": c.view }) }), settings);
        assert.deepEqual(kinds(d), ["RecordStep", "Event"]);
        const [rec] = records(d);
        assert.equal(rec?.phase, "Failed");
        assert.equal(rec?.restoredCount, 0);
        assert.equal(rec?.message, "0 of 1 VMs restored");
        assert.deepEqual(rec?.outcomes, [c.outcome]);
        assert.deepEqual(only(d, "Event"), [
          { kind: "Event", type: "Warning", reason: "NodeFailed", message: "node n1: 0 of 1 VMs restored" },
        ]);
      });
    }

    it("keeps the outcome of a VM that failed earlier", () => {
      const earlier = { namespace: "vms", name: "a", phase: "Failed" as const, message: "migration failed" };
      const d = decideRestore(
        stepWorld(single(), { ...starting(), outcomes: [earlier] }, { vms: vms({ "vms/a": running("n3") }) }),
        settings,
      );
      assert.deepEqual(records(d)[0]?.outcomes, [earlier]);
      assert.equal(records(d)[0]?.phase, "Failed");
    });

    it("gives up on a VM that does not run within nodeTimeout of Starting: Failed, released", () => {
      const view = held("n1", { runStrategy: "Always", pinnedNode: "n1" });
      const d = decideRestore(
        stepWorld(single(), starting({}, 31 * MINUTE), { vms: vms({ "vms/a": view }) }),
        settings,
      );
      assert.deepEqual(vmActions(d), ["ReleaseVm a"]);
      assert.deepEqual(kinds(d), ["ReleaseVm", "RecordStep"]);
      assert.deepEqual(records(d)[0], {
        outcomes: [
          {
            namespace: "vms",
            name: "a",
            phase: "Failed",
            verified: false,
            reason: "StartTimeout",
            message: "its disks were restored, but it did not reach Running on n1 within nodeTimeout",
          },
        ],
      });
      assert.equal(d.status.results?.[0]?.phase, "Failed");
    });

    it("names the node of a VM that does not run within nodeTimeout when it has an instance", () => {
      const view = held("n1", {
        runStrategy: "Always",
        pinnedNode: "n1",
        vmi: { node: "n1", phase: "Scheduled", migrating: false },
      });
      const d = decideRestore(
        stepWorld(single(), starting({}, 31 * MINUTE), { vms: vms({ "vms/a": view }) }),
        settings,
      );
      assert.deepEqual(vmActions(d), ["ReleaseVm a"]);
      assert.equal(records(d)[0]?.outcomes?.[0]?.node, "n1");
    });

    it("releases a VM that ran Manual with Manual when it does not run within nodeTimeout", () => {
      const view = held("n1", { runStrategy: "Always", pinnedNode: "n1" }, { runStrategy: "Manual" });
      const d = decideRestore(
        stepWorld(single(), starting({}, 31 * MINUTE), { vms: vms({ "vms/a": view }) }),
        settings,
      );
      assert.deepEqual(vmActions(d), ["ReleaseVm a Manual"]);
    });

    it("records the failed outcome once and releases the VM when the pass after nodeTimeout sees it still held", () => {
      const view = held("n1", { runStrategy: "Always", pinnedNode: "n1" });
      const outcome = {
        namespace: "vms",
        name: "a",
        phase: "Failed" as const,
        verified: false,
        message: "its disks were restored, but it did not reach Running on n1 within nodeTimeout",
      };
      const d = decideRestore(
        stepWorld(single(), { ...starting({}, 31 * MINUTE), outcomes: [outcome] }, { vms: vms({ "vms/a": view }) }),
        settings,
      );
      assert.deepEqual(kinds(d), ["ReleaseVm"]);
    });

    it("counts nodeTimeout of Starting from startingSince, not from the node's start", () => {
      const view = held("n1", { runStrategy: "Always", pinnedNode: "n1" });
      const status = { ...starting({}, MINUTE), startTime: iso(NOW - 2 * 60 * MINUTE) };
      const d = decideRestore(stepWorld(single(), status, { vms: vms({ "vms/a": view }) }), settings);
      assert.deepEqual(d.actions, []);
    });

    it("starts again, Always, a VM that failed to stop and still runs where it ran, then releases it", () => {
      const status: NodeRestoreStatus = {
        ...starting(undefined),
        outcomes: [
          {
            namespace: "vms",
            name: "a",
            phase: "Failed",
            verified: false,
            node: "n1",
            message: "not stopped within nodeTimeout; its disks were not touched",
          },
        ],
      };
      // Still Running on n1, but its spec says Halted (the HoldVm): released now, it would end stopped.
      const d = decideRestore(
        stepWorld(single(), status, { vms: vms({ "vms/a": held("n1", { vmi: on("n1") }) }) }),
        settings,
      );
      assert.deepEqual(vmActions(d), ["StartVm a@n1 Always"]);
      assert.deepEqual(records(d), []);
      const started = held("n1", { runStrategy: "Always", pinnedNode: "n1", vmi: on("n1") });
      const next = decideRestore(stepWorld(single(), status, { vms: vms({ "vms/a": started }) }), settings);
      assert.deepEqual(vmActions(next), ["ReleaseVm a"]);
      const done = decideRestore(stepWorld(single(), status, { vms: vms({ "vms/a": running("n1") }) }), settings);
      assert.deepEqual(records(done)[0]?.outcomes, status.outcomes, "the outcome of Preparing is kept");
      assert.equal(records(done)[0]?.phase, "Failed");
    });

    it("keeps the agent's reason when a VM whose restore failed does not come back in time", () => {
      const view = held("n3", { runStrategy: "Always", pinnedNode: "n3" });
      const d = decideRestore(
        stepWorld(single(), starting(CHECKSUM, 31 * MINUTE), { vms: vms({ "vms/a": view }) }),
        settings,
      );
      assert.deepEqual(vmActions(d), ["ReleaseVm a"]);
      assert.deepEqual(records(d)[0]?.outcomes, [
        {
          namespace: "vms",
          name: "a",
          phase: "Failed",
          verified: false,
          reason: "ChecksumMismatch",
          message:
            "ChecksumMismatch: disk.img: sha256 differs from the backup; its disks were not touched, " +
            "but it did not reach Running on n3 within nodeTimeout",
        },
      ]);
    });

    it("keeps the step's account of the Job when a VM without a report does not come back in time", () => {
      const view = held("n3", { runStrategy: "Always", pinnedNode: "n3" });
      const d = decideRestore(
        stepWorld(
          single(),
          { ...starting(undefined, 31 * MINUTE), message: "the restore Job did not finish within nodeTimeout" },
          {
            vms: vms({ "vms/a": view }),
          },
        ),
        settings,
      );
      assert.equal(
        records(d)[0]?.outcomes?.[0]?.message,
        "not restored: the restore Job did not finish within nodeTimeout; its disks were not touched, " +
          "but it did not reach Running on n3 within nodeTimeout",
      );
    });

    describe("after a restore Job that timed out", () => {
      const timedOut = (sinceAgo = MINUTE): NodeRestoreStatus => ({
        ...starting(undefined, sinceAgo),
        message: "the restore Job did not finish within nodeTimeout",
      });
      const stillThere: JobView = { name: "r1-n1", complete: false, failed: false };

      for (const sinceAgo of [0, 31 * MINUTE]) {
        it(`starts no VM while the Job still exists, being deleted (Starting for ${sinceAgo / MINUTE}m)`, () => {
          const d = decideRestore(
            stepWorld(single(), timedOut(sinceAgo), { job: stillThere, vms: vms({ "vms/a": held("n1") }) }),
            settings,
          );
          assert.deepEqual(d.actions, []);
          assert.deepEqual(
            [condition(d, "Progressing")?.reason, condition(d, "Progressing")?.message],
            ["StartingVMs", "node n1 (1/1): waiting for the stopped restore Job to end"],
          );
          assert.equal(d.requeueAfterMs, 2_000);
        });
      }

      it("still renews the Lease while it waits for the Job to end", () => {
        const d = decideRestore(
          stepWorld(single(), timedOut(), {
            job: stillThere,
            lease: leaseOurs("n1", NOW - 10 * SECOND),
            vms: vms({ "vms/a": held("n1") }),
          }),
          settings,
        );
        assert.deepEqual(kinds(d), ["ClaimLease"]);
      });

      it("starts the VMs again where they ran once the Job is gone, and fails them with the step's account", () => {
        const d = decideRestore(stepWorld(single(), timedOut(), { vms: vms({ "vms/a": held("n1") }) }), settings);
        assert.deepEqual(vmActions(d), ["StartVm a@n1 Always"]);
        const done = decideRestore(stepWorld(single(), timedOut(), { vms: vms({ "vms/a": running("n1") }) }), settings);
        assert.deepEqual(records(done)[0]?.outcomes, [
          {
            namespace: "vms",
            name: "a",
            phase: "Failed",
            verified: false,
            node: "n1",
            reason: "JobFailed",
            message:
              "not restored: the restore Job did not finish within nodeTimeout; its disks were not touched; started again on n1",
          },
        ]);
      });

      it("a finished Job (it ended on its own meanwhile) does not hold the VMs back", () => {
        const d = decideRestore(
          stepWorld(single(), timedOut(), {
            job: { ...stillThere, failed: true, failureReason: "DeadlineExceeded" },
            vms: vms({ "vms/a": held("n1") }),
          }),
          settings,
        );
        assert.deepEqual(vmActions(d), ["StartVm a@n1 Always"]);
      });
    });

    describe("the outcome of a restored VM", () => {
      it("names the restore node, and says so when the VirtualMachine was deleted meanwhile", () => {
        const d = decideRestore(stepWorld(single(), starting({}), { vms: vms({}) }), settings);
        assert.deepEqual(records(d)[0]?.outcomes, [
          {
            namespace: "vms",
            name: "a",
            phase: "Restored",
            node: "n1",
            bytes: 2048,
            verified: true,
            message: "3 files, 2048 bytes written and verified; the VirtualMachine was deleted meanwhile",
          },
        ]);
        assert.equal(records(d)[0]?.phase, "Succeeded");
      });

      it("names the restore node even when the VM now runs elsewhere, which the message tells", () => {
        const d = decideRestore(stepWorld(single(), starting({}), { vms: vms({ "vms/a": running("n3") }) }), settings);
        const [o] = records(d)[0]?.outcomes ?? [];
        assert.equal(o?.node, "n1");
        assert.equal(o?.message, "3 files, 2048 bytes written and verified; running on n3");
      });

      it("carries the agent's verified flag", () => {
        const d = decideRestore(
          stepWorld(single(), starting({ verified: false }), { vms: vms({ "vms/a": running("n1") }) }),
          settings,
        );
        assert.equal(records(d)[0]?.outcomes?.[0]?.verified, false);
      });
    });
  });

  describe("finishing", () => {
    /** Steps n1 (a, b) and n2 (c, d), both done with the given outcomes. */
    function finished(phases: Record<string, "Restored" | "Failed">, skipped: string[] = []) {
      const workloads = ["vms/a", "vms/b", "vms/c", "vms/d"].map((k) => resolved(k));
      const d0 = decideRestore(
        {
          now: NOW - 10 * MINUTE,
          restore: restore(),
          steps: [],
          vms: new Map(),
          nodes: NODES,
          lease: LEASE_FREE,
          resolution: {
            workloads,
            unrestorable: skipped.map((k) => ({
              ...ref(k),
              backup: "nightly",
              reason: "NotCaptured" as const,
              message: "Skipped: no capture.",
            })),
          },
          observed: [vmi("vms/a", "n1"), vmi("vms/b", "n1"), vmi("vms/c", "n2"), vmi("vms/d", "n2")],
        },
        settings,
      );
      const steps = only(d0, "CreateStep").map((a) => {
        const outcomes = a.step.spec.workloads.map((w) => ({
          ...ref(keyOf(w)),
          phase: phases[w.name] ?? "Restored",
          ...(phases[w.name] === "Failed" ? { message: "ChecksumMismatch: bad" } : { node: a.step.spec.node }),
        }));
        const ok = outcomes.filter((o) => o.phase === "Restored").length;
        a.step.status = {
          phase: ok === outcomes.length ? "Succeeded" : "Failed",
          workloads: outcomes.length,
          restoredCount: ok,
          outcomes,
        };
        return { step: a.step };
      });
      return (lease: LeaseState = leaseOurs("n2")): RestoreWorld => ({
        now: NOW,
        restore: { ...restore(), status: d0.status },
        steps,
        vms: new Map(),
        nodes: NODES,
        lease,
      });
    }

    it("Completed when every VM is restored: the Lease is given back, the run is over", () => {
      const d = decideRestore(finished({})(), settings);
      assert.deepEqual(d.actions, [{ kind: "ReleaseLease" }]);
      assert.deepEqual(d.statusEvents, [
        { kind: "Event", type: "Normal", reason: "Completed", message: "4 of 4 VMs restored" },
      ]);
      assert.equal(d.status.phase, "Completed");
      assert.equal(d.status.completionTime, iso(NOW));
      assert.equal(d.status.startTime, iso(NOW - 10 * MINUTE));
      assert.equal(d.status.coordinatingNode, undefined);
      assert.deepEqual(d.status.progress, {
        restored: "4/4",
        workloadsTotal: 4,
        workloadsRestored: 4,
        workloadsFailed: 0,
      });
      assert.deepEqual(
        [condition(d, "Ready")?.status, condition(d, "Ready")?.reason, condition(d, "Ready")?.message],
        ["True", "Completed", "all 4 VMs restored"],
      );
      assert.deepEqual(
        [condition(d, "Progressing")?.status, condition(d, "Progressing")?.reason],
        ["False", "Finished"],
      );
      assert.equal(condition(d, "Failed")?.status, "False");
      assert.equal(d.requeueAfterMs, undefined);
    });

    it("PartiallyFailed when some VMs failed, naming them", () => {
      const d = decideRestore(finished({ b: "Failed" })(), settings);
      assert.equal(d.status.phase, "PartiallyFailed");
      assert.deepEqual(only(d, "Event"), [
        {
          kind: "Event",
          type: "Warning",
          reason: "PartiallyFailed",
          message: "3 of 4 VMs restored; failed: vms/b",
        },
      ]);
      assert.deepEqual(
        [condition(d, "Ready")?.status, condition(d, "Ready")?.reason, condition(d, "Ready")?.message],
        ["False", "PartiallyFailed", "3 of 4 VMs restored, 1 not (see status.results)"],
      );
      assert.equal(condition(d, "Failed")?.status, "False");
      assert.deepEqual(d.status.progress?.workloadsFailed, 1);
    });

    it("PartiallyFailed when every planned VM is restored but some were skipped", () => {
      const d = decideRestore(finished({}, ["vms/x"])(), settings);
      assert.equal(d.status.phase, "PartiallyFailed");
      assert.equal(only(d, "Event")[0]?.message, "4 of 5 VMs restored");
      assert.deepEqual(d.status.progress, {
        restored: "4/5",
        workloadsTotal: 5,
        workloadsRestored: 4,
        workloadsFailed: 1,
      });
    });

    it("Failed when no VM is restored", () => {
      const d = decideRestore(finished({ a: "Failed", b: "Failed", c: "Failed", d: "Failed" })(), settings);
      assert.equal(d.status.phase, "Failed");
      assert.deepEqual(
        [condition(d, "Failed")?.status, condition(d, "Failed")?.reason, condition(d, "Failed")?.message],
        ["True", "NothingRestored", "no VM was restored (see status.results)"],
      );
      assert.equal(only(d, "Event")[0]?.message, "0 of 4 VMs restored; failed: vms/a, vms/b, vms/c, vms/d");
    });

    for (const c of [
      { title: "gives back a Lease it still holds", lease: leaseOurs("n2"), kinds: ["ReleaseLease"] },
      { title: "does nothing without the Lease", lease: LEASE_FREE, kinds: [] },
      { title: "does nothing while another run holds the Lease", lease: LEASE_OTHER, kinds: [] },
    ]) {
      it(`a finished restore ${c.title} and keeps its status`, () => {
        const w = finished({ b: "Failed" })();
        const done = decideRestore(w, settings);
        const d = decideRestore({ ...w, restore: { ...w.restore, status: done.status }, lease: c.lease }, settings);
        assert.deepEqual(kinds(d), c.kinds);
        assert.deepEqual(d.status, done.status);
        assert.equal(d.requeueAfterMs, undefined);
      });
    }
  });

  describe("the shared volume's Lease", () => {
    // Whatever stage the step is in, nothing is done while another run holds the Lease (it may have taken the
    // volume over after this run's Lease expired while the operator was away).
    const both = [result("vms/a"), result("vms/b")];
    for (const c of [
      {
        title: "Preparing, a VM to stop",
        status: { phase: "Preparing", workloads: 2, startTime: iso(NOW - MINUTE) } as NodeRestoreStatus,
        vms: { "vms/a": running("n1"), "vms/b": held("n1") },
      },
      {
        title: "Preparing, every VM stopped (the Job to start)",
        status: { phase: "Preparing", workloads: 2, startTime: iso(NOW - MINUTE) } as NodeRestoreStatus,
        vms: { "vms/a": held("n1"), "vms/b": held("n1") },
      },
      {
        title: "Preparing, nodeTimeout passed (VMs to fail)",
        status: { phase: "Preparing", workloads: 2, startTime: iso(NOW - 31 * MINUTE) } as NodeRestoreStatus,
        vms: { "vms/a": running("n1"), "vms/b": held("n1") },
      },
      {
        title: "Restoring, the Job timed out (to delete)",
        status: { phase: "Restoring", workloads: 2, startTime: iso(NOW - 31 * MINUTE) } as NodeRestoreStatus,
        job: { name: "r1-n1", complete: false, failed: false },
        vms: { "vms/a": held("n1"), "vms/b": held("n1") },
      },
      {
        title: "Restoring, the Job complete (VMs to start)",
        status: { phase: "Restoring", workloads: 2, startTime: iso(NOW - MINUTE), results: both } as NodeRestoreStatus,
        job: { name: "r1-n1", complete: true, failed: false, completionTime: iso(NOW - SECOND) },
        vms: { "vms/a": held("n1"), "vms/b": held("n1") },
      },
      {
        title: "Starting, VMs to start",
        status: {
          phase: "Starting",
          workloads: 2,
          startTime: iso(NOW - MINUTE),
          startingSince: iso(NOW),
          results: both,
        } as NodeRestoreStatus,
        vms: { "vms/a": held("n1"), "vms/b": held("n1") },
      },
      {
        title: "Starting, VMs to release and the step to finish",
        status: {
          phase: "Starting",
          workloads: 2,
          startTime: iso(NOW - MINUTE),
          startingSince: iso(NOW),
          results: both,
        } as NodeRestoreStatus,
        vms: {
          "vms/a": held("n1", {
            runStrategy: "Always",
            pinnedNode: "n1",
            vmi: { node: "n1", phase: "Running", migrating: false },
          }),
          "vms/b": running("n1"),
        },
      },
    ]) {
      it(`does nothing at all while another run holds the Lease (step ${c.title})`, () => {
        const world = stepWorld(onN1(), c.status, {
          lease: LEASE_OTHER,
          vms: vms(c.vms),
          ...(c.job ? { job: c.job } : {}),
        });
        const d = decideRestore(world, settings);
        assert.deepEqual(d.actions, []);
        assert.deepEqual(
          [condition(d, "Progressing")?.reason, condition(d, "Progressing")?.message],
          [
            "WaitingForVolumeLease",
            "a storage back end is in use by FederatedBackup/vms/nightly; waiting for it to finish",
          ],
        );
        assert.equal(d.status.phase, "InProgress");
        assert.equal(d.requeueAfterMs, 5_000);
        // With the Lease ours again, the same world is acted on: the wait was for the Lease alone.
        const ours = decideRestore({ ...world, lease: leaseOurs("n1") }, settings);
        assert.ok(ours.actions.length > 0, "the same step acts with the Lease");
      });
    }

    it("claims the Lease first when the renewal is due in the middle of a step", () => {
      const d = decideRestore(
        stepWorld(
          onN1(),
          {
            phase: "Starting",
            workloads: 2,
            startTime: iso(NOW - MINUTE),
            startingSince: iso(NOW),
            results: both,
          },
          { lease: leaseOurs("n1", NOW - 10 * SECOND), vms: vms({ "vms/a": held("n1"), "vms/b": held("n1") }) },
        ),
        settings,
      );
      assert.deepEqual(kinds(d), ["ClaimLease", "StartVm", "StartVm"]);
    });

    it("does not claim the Lease in the pass that finishes the step", () => {
      const d = decideRestore(
        stepWorld(
          onN1(),
          {
            phase: "Starting",
            workloads: 2,
            startTime: iso(NOW - MINUTE),
            startingSince: iso(NOW),
            results: both,
          },
          { lease: LEASE_FREE, vms: vms({ "vms/a": running("n1"), "vms/b": running("n1") }) },
        ),
        settings,
      );
      assert.deepEqual(kinds(d), ["RecordStep", "Event"]);
      assert.equal(records(d)[0]?.phase, "Succeeded");
    });

    it("claims a free Lease again before acting in the middle of a step", () => {
      const d = decideRestore(
        stepWorld(
          onN1(),
          { phase: "Preparing", workloads: 2, startTime: iso(NOW - MINUTE) },
          {
            lease: LEASE_FREE,
            vms: vms({ "vms/a": running("n1"), "vms/b": held("n1") }),
          },
        ),
        settings,
      );
      assert.deepEqual(kinds(d), ["ClaimLease", "HoldVm"]);
    });

    it("looks again no later than the Lease must be renewed", () => {
      const d = decideRestore(
        stepWorld(
          onN1(),
          { phase: "Preparing", workloads: 2, startTime: iso(NOW - MINUTE) },
          {
            vms: vms({ "vms/a": running("n1"), "vms/b": held("n1") }),
          },
        ),
        { leaseRenewMs: 500 },
      );
      assert.equal(d.requeueAfterMs, 500);
    });
  });

  // -------------------------------------------------------------------------------------------------------------
  // Whole restores: the decision's actions applied to an in-memory cluster, pass after pass.

  describe("a whole restore, simulated", () => {
    const FINISHED = new Set(["Completed", "PartiallyFailed", "Failed"]);
    const RUNS = new Set(["Always", "RerunOnFailure"]);

    interface SimVm {
      /** Where KubeVirt puts it when it starts unpinned. */
      home: string;
      runStrategy: string;
      hold?: VmHold;
      pinnedNode?: string;
      vmi?: { node?: string; phase: string; migrating: boolean };
      migration?: { phase: string; target: string };
      failMigration?: boolean;
      /** Its instance does not go away when it is Halted (it hangs while shutting down). */
      stuck?: boolean;
    }

    class Sim {
      now = NOW;
      steps = new Map<string, NodeRestore>();
      jobs = new Map<string, JobView>();
      lease: LeaseState = LEASE_FREE;
      /** Holder nodes of the Lease, each time it changed hands. */
      claims: string[] = [];
      events: Array<{ type: string; reason: string; message: string }> = [];
      timeline: string[] = [];
      passes = 0;
      /** The steps whose restore Job hangs: it never finishes and reports nothing. */
      hungJobs = new Set<string>();
      /** How many passes a deleted Job lingers (its pod terminating); 0: gone at once. */
      jobLingers = 0;
      /** Deleted Jobs still there, with the passes they have left. */
      deleting = new Map<string, number>();

      constructor(
        public restore: WorkloadRestore,
        public vms: Map<string, SimVm>,
        public resolution: Resolution,
        public nodes: ObservedNode[] = NODES,
        public agent: (w: WorkloadRef) => NodeRestoreStatusResult = (w) => result(keyOf(w)),
      ) {}

      vm(key: string): SimVm {
        const v = this.vms.get(key);
        assert.ok(v, key);
        return v;
      }

      world(): RestoreWorld {
        const isNew = (this.restore.status?.phase ?? "New") === "New";
        const view = (v: SimVm): VmView => ({
          exists: true,
          runStrategy: v.runStrategy,
          ...(v.hold ? { hold: { ...v.hold } } : {}),
          ...(v.pinnedNode ? { pinnedNode: v.pinnedNode } : {}),
          ...(v.vmi ? { vmi: { ...v.vmi } } : {}),
          ...(v.migration ? { migration: { phase: v.migration.phase } } : {}),
        });
        return {
          now: this.now,
          restore: structuredClone(this.restore),
          steps: [...this.steps.values()].map((step) => {
            const job = this.jobs.get(step.metadata.name!);
            return { step: structuredClone(step), ...(job ? { job: { ...job } } : {}) };
          }),
          vms: new Map([...this.vms].map(([k, v]) => [k, view(v)])),
          nodes: this.nodes,
          lease: { ...this.lease },
          ...(isNew
            ? {
                resolution: this.resolution,
                observed: [...this.vms].flatMap(([k, v]) =>
                  v.vmi?.node ? [{ ...vmi(k, v.vmi.node), phase: v.vmi.phase }] : [],
                ),
              }
            : {}),
        };
      }

      pass(): RestoreDecision {
        this.passes++;
        const before = this.lease;
        const d = decideRestore(this.world(), settings);
        const touching = d.actions.filter((a) => VM_KINDS.has(a.kind) || a.kind === "StartJob");
        if (touching.length > 0) {
          assert.ok(
            before.ours || d.actions[0]?.kind === "ClaimLease",
            `pass ${this.passes}: ${kinds(d).join(", ")} without the Lease`,
          );
        }
        // As the reconciler does: the actions, the status write, then the Events that report the status.
        for (const a of d.actions) this.apply(a, d);
        this.restore = { ...this.restore, status: d.status };
        for (const a of d.statusEvents) this.apply(a, d);
        this.kubevirt();
        this.agentRuns();
        this.jobsEnd();
        this.now += SECOND;
        return d;
      }

      run(max = 200): void {
        while (!FINISHED.has(this.restore.status?.phase ?? "New")) {
          assert.ok(this.passes < max, `not finished after ${max} passes: ${this.timeline.slice(-10).join("; ")}`);
          this.pass();
        }
      }

      stepOf(vm: WorkloadRef): NodeRestore | undefined {
        return [...this.steps.values()].find((s) => s.spec.workloads.some((w) => keyOf(w) === keyOf(vm)));
      }

      apply(a: RestoreAction, d: RestoreDecision): void {
        switch (a.kind) {
          case "CreateStep":
            this.steps.set(a.step.metadata.name!, structuredClone(a.step));
            this.timeline.push(`CreateStep ${a.step.metadata.name}`);
            return;
          case "DeleteStep":
            this.steps.delete(a.step.metadata.name!);
            this.timeline.push(`DeleteStep ${a.step.metadata.name}`);
            return;
          case "ClaimLease":
            if (this.lease.holderNode !== a.node) this.claims.push(a.node);
            this.lease = { ours: true, free: false, owner: ME, renewedAt: this.now, holderNode: a.node };
            return;
          case "ReleaseLease":
            this.lease = LEASE_FREE;
            this.timeline.push("ReleaseLease");
            return;
          case "HoldVm": {
            const v = this.vm(keyOf(a.vm));
            v.hold = structuredClone(a.hold);
            v.runStrategy = "Halted";
            this.timeline.push(`HoldVm ${keyOf(a.vm)}`);
            return;
          }
          case "StartVm": {
            const job = this.jobs.get(this.stepOf(a.vm)?.metadata.name ?? "");
            assert.ok(!job || job.complete || job.failed, `${keyOf(a.vm)} started while the restore Job runs`);
            const v = this.vm(keyOf(a.vm));
            v.runStrategy = a.runStrategy;
            v.pinnedNode = a.node;
            this.timeline.push(`StartVm ${keyOf(a.vm)}@${a.node}`);
            return;
          }
          case "ReleaseVm": {
            const v = this.vm(keyOf(a.vm));
            delete v.hold;
            if (a.hold.nodeSelector) v.pinnedNode = a.hold.nodeSelector;
            else delete v.pinnedNode;
            if (a.runStrategy) v.runStrategy = a.runStrategy;
            this.timeline.push(`ReleaseVm ${keyOf(a.vm)}`);
            return;
          }
          case "CreateMigration":
            this.vm(keyOf(a.vm)).migration = { phase: "Pending", target: a.node };
            this.timeline.push(`CreateMigration ${keyOf(a.vm)}@${a.node}`);
            return;
          case "StartJob": {
            const name = a.step.metadata.name!;
            // Every VM the Job is to restore is stopped by this restore and has no instance left.
            const recorded = only(d, "RecordStep").find((r) => r.step.metadata.name === name && r.status.outcomes);
            const decided = new Set(
              (recorded?.status.outcomes ?? this.steps.get(name)?.status?.outcomes ?? []).map(keyOf),
            );
            for (const w of a.step.spec.workloads) {
              if (decided.has(keyOf(w))) continue;
              const v = this.vm(keyOf(w));
              assert.ok(
                v.hold?.owner === ME && v.runStrategy === "Halted" && !v.vmi,
                `restore Job started while ${keyOf(w)} is not stopped`,
              );
            }
            this.jobs.set(name, { name, complete: false, failed: false });
            this.timeline.push(`StartJob ${name}`);
            return;
          }
          case "DeleteJob":
            if (this.jobLingers > 0) this.deleting.set(a.step.metadata.name!, this.jobLingers);
            else this.jobs.delete(a.step.metadata.name!);
            this.timeline.push(`DeleteJob ${a.step.metadata.name}`);
            return;
          case "RecordStep": {
            const s = this.steps.get(a.step.metadata.name!);
            assert.ok(s, `RecordStep of a missing step ${a.step.metadata.name}`);
            s.status = { ...s.status, ...structuredClone(a.status) };
            if (a.status.phase) this.timeline.push(`RecordStep ${a.step.metadata.name} ${a.status.phase}`);
            return;
          }
          case "Event":
            this.events.push({ type: a.type, reason: a.reason, message: a.message });
            this.timeline.push(`Event ${a.reason}`);
            return;
        }
      }

      /** What KubeVirt does: migrations complete (or fail), halted VMs stop, running ones start. */
      kubevirt(): void {
        for (const v of this.vms.values()) {
          if (v.migration?.phase === "Pending") {
            if (v.failMigration) v.migration.phase = "Failed";
            else {
              if (v.vmi) v.vmi.node = v.migration.target;
              v.migration.phase = "Succeeded";
            }
          }
          if (v.runStrategy === "Halted") {
            if (!v.stuck) delete v.vmi;
          } else if (RUNS.has(v.runStrategy) && !v.vmi)
            v.vmi = { node: v.pinnedNode ?? v.home, phase: "Running", migrating: false };
        }
      }

      /** What the node agent does: restores the VMs without an outcome (refusing running ones) and reports. */
      agentRuns(): void {
        for (const [name, job] of this.jobs) {
          if (job.complete || job.failed || this.hungJobs.has(name)) continue;
          const step = this.steps.get(name)!;
          const decided = new Set((step.status?.outcomes ?? []).map(keyOf));
          const results = step.spec.workloads
            .filter((w) => !decided.has(keyOf(w)))
            .map((w) =>
              this.vm(keyOf(w)).vmi
                ? { ...ref(keyOf(w)), restored: false, reason: "Running", message: "it runs" }
                : this.agent(w),
            );
          step.status = { ...step.status, results };
          job.complete = true;
          job.completionTime = iso(this.now);
        }
      }

      /** Deleted Jobs whose pod has ended are gone. */
      jobsEnd(): void {
        for (const [name, left] of this.deleting) {
          if (left > 1) {
            this.deleting.set(name, left - 1);
            continue;
          }
          this.deleting.delete(name);
          this.jobs.delete(name);
          this.timeline.push(`JobGone ${name}`);
        }
      }
    }

    const simVm = (home: string): SimVm => ({
      home,
      runStrategy: "Always",
      vmi: { node: home, phase: "Running", migrating: false },
    });

    /** a, b running on n1, c, d on n2 (plus extra VMs), restored from backup nightly. */
    function setup(
      spec: Partial<WorkloadRestore["spec"]> = {},
      homes: Record<string, string> = {},
      agent?: (w: WorkloadRef) => NodeRestoreStatusResult,
    ): Sim {
      const placed = { "vms/a": "n1", "vms/b": "n1", "vms/c": "n2", "vms/d": "n2", ...homes };
      const b: FederatedBackup = {
        apiVersion: "fedbackup.io/v1alpha1",
        kind: "FederatedBackup",
        metadata: { name: "nightly", namespace: "vms", uid: "0123456789abcdef" },
        spec: {
          sharedVolume: { claimName: "vmdisks", nodeMountPath: "/disks" },
          location: { persistentVolumeClaim: { claimName: "backups" } },
        },
        status: { phase: "Completed" },
      };
      const byNode = new Map<string, string[]>();
      for (const [k, n] of Object.entries(placed)) byNode.set(n, [...(byNode.get(n) ?? []), k]);
      const snapshots: NodeSnapshot[] = [...byNode].map(([n, keys], i) => {
        const s = buildNodeSnapshot(
          b,
          1,
          i + 1,
          n,
          keys.map((k) => vmi(k, n)),
        );
        s.status = { phase: "Succeeded", captured: keys.map(ref) };
        return s;
      });
      // Without spec.workloads every VM of the backup is restored; with it, the VMs not named get listed too.
      const listed = Object.keys(placed)
        .sort()
        .map((k) => ({ ...ref(k), ...(spec.workloads?.find((w) => keyOf(w) === k) ?? {}) }));
      const r = restore(spec.workloads ? { ...spec, workloads: listed } : spec);
      const resolution = resolveWorkloads(r, [b], snapshots, NOW);
      assert.equal(resolution.invalid, undefined);
      assert.equal(resolution.workloads[0]?.backupPath, backupPath(b));
      const vmsMap = new Map(Object.entries(placed).map(([k, n]) => [k, simVm(n)]));
      return new Sim(r, vmsMap, resolution, NODES, agent);
    }

    const outcomesOf = (sim: Sim) =>
      [...sim.steps.values()]
        .flatMap((s) => (s.status?.outcomes ?? []).map((o) => `${o.name} ${o.phase} ${o.node ?? "-"}`))
        .sort();

    const phasesOf = (sim: Sim) =>
      [...sim.steps.values()].flatMap((s) => (s.status?.outcomes ?? []).map((o) => `${o.name} ${o.phase}`)).sort();

    it("restores 2 nodes × 2 VMs one node after the other, to Completed, leaving every VM as it was", () => {
      const sim = setup();
      sim.run();
      const status = sim.restore.status!;
      assert.equal(status.phase, "Completed");
      assert.deepEqual(status.progress, {
        restored: "4/4",
        workloadsTotal: 4,
        workloadsRestored: 4,
        workloadsFailed: 0,
      });
      assert.deepEqual(
        status.results?.map((r) => `${r.name} ${r.phase} ${r.node} ${r.verified}`),
        ["a Restored n1 true", "b Restored n1 true", "c Restored n2 true", "d Restored n2 true"],
      );
      assert.deepEqual(
        status.conditions?.map((c) => `${c.type}=${c.status}`),
        ["Ready=True", "Progressing=False", "Failed=False", "PlanProblems=False"],
      );
      assert.deepEqual(
        [...sim.steps.values()].map((s) => [
          s.metadata.name,
          s.status?.phase,
          s.status?.workloads,
          s.status?.restoredCount,
        ]),
        [
          ["r1-n1", "Succeeded", 2, 2],
          ["r1-n2", "Succeeded", 2, 2],
        ],
      );
      assert.deepEqual(outcomesOf(sim), ["a Restored n1", "b Restored n1", "c Restored n2", "d Restored n2"]);
      for (const [k, v] of sim.vms) {
        assert.deepEqual(
          v,
          { home: v.home, runStrategy: "Always", vmi: { node: v.home, phase: "Running", migrating: false } },
          `${k} runs where it ran, unheld and unpinned`,
        );
      }
      assert.deepEqual(sim.claims, ["n1", "n2"]);
      assert.deepEqual(sim.lease, LEASE_FREE);
      assert.deepEqual(
        sim.events.map((e) => e.reason),
        ["Planned", "NodeStarted", "NodeSucceeded", "NodeStarted", "NodeSucceeded", "Completed"],
      );
      // One node at a time: n2's VMs are not touched before n1 is done, and nothing starts before its Job.
      const at = (entry: string) => {
        const i = sim.timeline.indexOf(entry);
        assert.ok(i >= 0, `${entry} in ${sim.timeline.join("; ")}`);
        return i;
      };
      assert.ok(at("RecordStep r1-n1 Succeeded") < at("HoldVm vms/c"));
      assert.ok(at("StartJob r1-n1") < at("StartVm vms/a@n1"));
      assert.ok(at("StartVm vms/a@n1") < at("ReleaseVm vms/a"));
      assert.ok(at("RecordStep r1-n2 Succeeded") < at("ReleaseLease"));

      // Finished: nothing more to do.
      const after = sim.pass();
      assert.deepEqual(after.actions, []);
      assert.deepEqual(after.status, status);
    });

    it("a VM whose disks fail verification is started again where it ran before; the restore is PartiallyFailed", () => {
      // b runs on n3 and is to be restored on n1 with conflictPolicy Stop; its backup does not verify.
      const sim = setup(
        { conflictPolicy: "Stop", workloads: [{ namespace: "vms", name: "b", targetNode: "n1" }] },
        { "vms/b": "n3" },
        (w) => (w.name === "b" ? { ...ref(keyOf(w)), ...CHECKSUM } : result(keyOf(w))),
      );
      sim.run();
      const status = sim.restore.status!;
      assert.deepEqual(
        status.plan?.map((e) => `${e.name} ${e.action} ${e.activeNode ?? "-"}→${e.restoreNode}`),
        ["a RestoreInPlace n1→n1", "b StopThenRestore n3→n1", "c RestoreInPlace n2→n2", "d RestoreInPlace n2→n2"],
      );
      assert.ok(sim.timeline.includes("HoldVm vms/b"));
      assert.ok(sim.timeline.includes("StartVm vms/b@n3"), "started again on n3");
      assert.ok(!sim.timeline.includes("StartVm vms/b@n1"), "never on the restore node");
      assert.deepEqual(sim.vm("vms/b"), {
        home: "n3",
        runStrategy: "Always",
        vmi: { node: "n3", phase: "Running", migrating: false },
      });

      const n1 = sim.steps.get("r1-n1")!;
      assert.equal(n1.status?.phase, "Failed");
      assert.equal(n1.status?.restoredCount, 1);
      const b = n1.status?.outcomes?.find((o) => o.name === "b");
      assert.deepEqual(b, {
        namespace: "vms",
        name: "b",
        phase: "Failed",
        node: "n3",
        verified: false,
        reason: "ChecksumMismatch",
        message:
          "ChecksumMismatch: disk.img: sha256 differs from the backup; its disks were not touched; started again on n3",
      });
      assert.equal(sim.steps.get("r1-n2")?.status?.phase, "Succeeded", "the next node is still restored");

      assert.equal(status.phase, "PartiallyFailed");
      assert.deepEqual(status.progress, {
        restored: "3/4",
        workloadsTotal: 4,
        workloadsRestored: 3,
        workloadsFailed: 1,
      });
      assert.equal(status.results?.find((r) => r.name === "b")?.phase, "Failed");
      assert.match(status.results?.find((r) => r.name === "b")?.message ?? "", /ChecksumMismatch/);
      assert.deepEqual(
        [
          condition({ actions: [], status, statusEvents: [] }, "Ready")?.status,
          condition({ actions: [], status, statusEvents: [] }, "Ready")?.reason,
        ],
        ["False", "PartiallyFailed"],
      );
      assert.deepEqual(
        sim.events.map((e) => `${e.type} ${e.reason}`),
        [
          "Normal Planned",
          "Normal NodeStarted",
          "Warning NodeFailed",
          "Normal NodeStarted",
          "Normal NodeSucceeded",
          "Warning PartiallyFailed",
        ],
      );
      assert.equal(sim.events.at(-1)?.message, "3 of 4 VMs restored; failed: vms/b");
      for (const v of sim.vms.values()) assert.equal(v.hold, undefined, "no VM is left held");
    });

    it("Migrate: a VM running on another node is live-migrated to the restore node first, and stays there", () => {
      const sim = setup({ workloads: [{ namespace: "vms", name: "b", targetNode: "n1" }] }, { "vms/b": "n3" });
      sim.run();
      assert.equal(sim.restore.status?.phase, "Completed");
      const i = sim.timeline.indexOf("CreateMigration vms/b@n1");
      assert.ok(i >= 0 && i < sim.timeline.indexOf("HoldVm vms/b"), sim.timeline.join("; "));
      assert.deepEqual(sim.vm("vms/b").vmi, { node: "n1", phase: "Running", migrating: false });
      assert.deepEqual(outcomesOf(sim), ["a Restored n1", "b Restored n1", "c Restored n2", "d Restored n2"]);
    });

    it("Migrate: a VM whose migration fails keeps running untouched; the others are restored", () => {
      const sim = setup({ workloads: [{ namespace: "vms", name: "b", targetNode: "n1" }] }, { "vms/b": "n3" });
      sim.vm("vms/b").failMigration = true;
      sim.run();
      assert.equal(sim.restore.status?.phase, "PartiallyFailed");
      assert.ok(!sim.timeline.includes("HoldVm vms/b"));
      assert.deepEqual(sim.vm("vms/b"), {
        home: "n3",
        runStrategy: "Always",
        vmi: { node: "n3", phase: "Running", migrating: false },
        migration: { phase: "Failed", target: "n1" },
        failMigration: true,
      });
      assert.deepEqual(
        sim.steps.get("r1-n1")?.status?.results?.map((r) => r.name),
        ["a"],
        "the Job was not asked to restore b",
      );
      assert.deepEqual(outcomesOf(sim), ["a Restored n1", "b Failed n3", "c Restored n2", "d Restored n2"]);
      assert.equal(
        sim.steps.get("r1-n1")?.status?.outcomes?.find((o) => o.name === "b")?.verified,
        false,
        "a Failed outcome says its disks were not verified",
      );
      assert.match(
        sim.steps.get("r1-n1")?.status?.outcomes?.find((o) => o.name === "b")?.message ?? "",
        /live migration from n3 to n1 failed/,
      );
    });

    it("a VM that does not stop within nodeTimeout is started again where it ran, not left Halted", () => {
      const sim = setup({ nodeTimeout: "1m" });
      sim.vm("vms/a").stuck = true;
      sim.run();
      assert.equal(sim.restore.status?.phase, "PartiallyFailed");
      assert.deepEqual(outcomesOf(sim), ["a Failed n1", "b Restored n1", "c Restored n2", "d Restored n2"]);
      assert.equal(
        sim.steps.get("r1-n1")?.status?.outcomes?.find((o) => o.name === "a")?.message,
        "not stopped within nodeTimeout; its disks were not touched",
      );
      assert.deepEqual(
        sim.steps.get("r1-n1")?.status?.results?.map((r) => r.name),
        ["b"],
        "the Job was not asked to restore a",
      );
      assert.ok(sim.timeline.includes("StartVm vms/a@n1"), sim.timeline.join("; "));
      assert.deepEqual(
        { ...sim.vm("vms/a"), stuck: undefined },
        {
          home: "n1",
          runStrategy: "Always",
          vmi: { node: "n1", phase: "Running", migrating: false },
          stuck: undefined,
        },
        "a runs again as it ran, unheld and unpinned",
      );
    });

    it("a restore Job that hangs is deleted after nodeTimeout; no VM starts before it is gone", () => {
      const sim = setup({ nodeTimeout: "1m" });
      sim.hungJobs.add("r1-n1");
      sim.jobLingers = 3;
      sim.run();
      const at = (entry: string) => {
        const i = sim.timeline.indexOf(entry);
        assert.ok(i >= 0, `${entry} in ${sim.timeline.join("; ")}`);
        return i;
      };
      assert.ok(at("DeleteJob r1-n1") < at("JobGone r1-n1"));
      assert.ok(at("JobGone r1-n1") < at("StartVm vms/a@n1"));
      assert.ok(at("JobGone r1-n1") < at("StartVm vms/b@n1"));
      assert.equal(sim.restore.status?.phase, "PartiallyFailed");
      assert.deepEqual(outcomesOf(sim), ["a Failed n1", "b Failed n1", "c Restored n2", "d Restored n2"]);
      assert.equal(
        sim.steps.get("r1-n1")?.status?.outcomes?.find((o) => o.name === "a")?.message,
        "not restored: the restore Job did not finish within nodeTimeout; its disks were not touched; started again on n1",
      );
      for (const [k, v] of sim.vms) {
        assert.deepEqual(
          v,
          { home: v.home, runStrategy: "Always", vmi: { node: v.home, phase: "Running", migrating: false } },
          `${k} runs where it ran, unheld and unpinned`,
        );
      }
    });

    it("a node that goes NotReady before its turn is failed without touching its VMs", () => {
      const sim = setup();
      sim.pass(); // planned while every node is Ready
      sim.nodes = [node("n1"), node("n2", false), node("n3")];
      sim.run();
      assert.equal(sim.restore.status?.phase, "PartiallyFailed");
      assert.equal(sim.steps.get("r1-n2")?.status?.phase, "Failed");
      assert.ok(!sim.timeline.some((e) => /vms\/[cd]/.test(e)), sim.timeline.join("; "));
      assert.deepEqual(sim.vm("vms/c"), simVm("n2"));
      assert.deepEqual(phasesOf(sim), ["a Restored", "b Restored", "c Failed", "d Failed"]);
    });

    it("waits for the Lease while another run holds it, then restores", () => {
      const sim = setup();
      sim.lease = LEASE_OTHER;
      for (let i = 0; i < 5; i++) {
        const d = sim.pass();
        if (i > 0) {
          assert.deepEqual(d.actions, []);
          assert.equal(condition(d, "Progressing")?.reason, "WaitingForVolumeLease");
        }
      }
      assert.ok(!sim.timeline.some((e) => e.startsWith("HoldVm")));
      sim.lease = LEASE_FREE;
      sim.run();
      assert.equal(sim.restore.status?.phase, "Completed");
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("decideRestore: VMs created from their captured definition, and definition Replace", () => {
  const captured = (
    runStrategy = "Always",
    volumes: unknown[] = [{ name: "root", persistentVolumeClaim: { claimName: "a-root" } }],
  ) => ({
    schemaVersion: 1,
    virtualMachine: {
      apiVersion: "kubevirt.io/v1",
      kind: "VirtualMachine",
      metadata: { name: "a", namespace: "vms", labels: { app: "db" } },
      spec: { runStrategy, template: { spec: { volumes } } },
    },
    dataVolumes: [],
    references: {
      secrets: [{ name: "a-cloudinit", usedBy: "volume cloudinit (cloudInitNoCloud.secretRef)" }],
      configMaps: [],
    },
  });
  const claim = {
    volume: "root",
    claimName: "a-root",
    sourceKind: "PersistentVolumeClaim" as const,
    volumeMode: "Filesystem" as const,
    accessModes: ["ReadWriteOnce"],
    storageClassName: "fast",
    sizeBytes: 1048576,
  };
  const withDefinition = { capture: { files: [], claims: [claim], definition: true } };
  const created = {
    files: [],
    renamedFiles: [],
    claims: [
      {
        volume: "root",
        claimName: "a-root",
        sourceKind: "PersistentVolumeClaim",
        volumeMode: "Filesystem",
        create: { accessModes: ["ReadWriteOnce"], storageClassName: "fast", storage: "1048576" },
      },
    ],
  } as const;

  /** vms/a was deleted: planned Create on n1, the node it was captured on. */
  const planCreate = (): Planned =>
    plan(
      [resolved("vms/a", { ...withDefinition, originalNode: "n1" })],
      [],
      {},
      {
        missingVms: new Map([["vms/a", structuredClone(created) as never]]),
      },
    );

  it("plans a deleted VM Create, its step naming the claim to create and asking for the definition", () => {
    const p = planCreate();
    assert.deepEqual(
      p.restore.status?.plan?.map((e) => [e.name, e.action, e.restoreNode, e.definition]),
      [["a", "RestoreThenStart", "n1", "Create"]],
    );
    const [w] = p.steps[0]!.spec.workloads;
    assert.equal(w?.definition, "Create");
    assert.equal(w?.reportDefinition, true);
    assert.deepEqual(w?.claims?.[0]?.create, {
      accessModes: ["ReadWriteOnce"],
      storageClassName: "fast",
      storage: "1048576",
    });
  });

  it("creates its missing claims before the Job, waits out one still being deleted, and holds no VM", () => {
    const p = planCreate();
    const preparing: NodeRestoreStatus = { phase: "Preparing", workloads: 1, startTime: iso(NOW - MINUTE) };
    const absent = decideRestore(stepWorld(p, preparing, { claimsNow: new Map() }), settings);
    assert.deepEqual(
      only(absent, "CreateClaim").map((a) => [a.claim.claimName, a.node]),
      [["a-root", "n1"]],
    );
    assert.deepEqual(vmActions(absent), []);
    assert.deepEqual(only(absent, "StartJob"), []);
    const deleting = decideRestore(
      stepWorld(p, preparing, { claimsNow: new Map([["vms/a-root", "Deleting"]]) }),
      settings,
    );
    assert.deepEqual(only(deleting, "CreateClaim"), []);
    assert.match(condition(deleting, "Progressing")?.message ?? "", /waiting for claim a-root to be deleted/);
    const present = decideRestore(
      stepWorld(p, preparing, { claimsNow: new Map([["vms/a-root", "Present"]]) }),
      settings,
    );
    assert.equal(only(present, "StartJob").length, 1);
  });

  it("fails a VM to create that appeared meanwhile (VMExists), touching nothing", () => {
    const p = planCreate();
    const preparing: NodeRestoreStatus = { phase: "Preparing", workloads: 1, startTime: iso(NOW - MINUTE) };
    const d = decideRestore(stepWorld(p, preparing, { vms: vms({ "vms/a": running("n2") }) }), settings);
    assert.deepEqual(only(d, "StartJob"), []);
    assert.deepEqual(vmActions(d), []);
    const outcome = records(d).at(-1)?.outcomes?.[0];
    assert.equal(outcome?.reason, "VMExists");
  });

  const starting = (definition: unknown): NodeRestoreStatus => ({
    phase: "Starting",
    workloads: 1,
    startTime: iso(NOW - 5 * MINUTE),
    startingSince: iso(NOW - MINUTE),
    results: [result("vms/a", { definition: definition as Record<string, unknown> })],
  });

  it("creates the restored VM halted and held, then starts it on the restore node like any restored VM", () => {
    const p = planCreate();
    const d = decideRestore(stepWorld(p, starting(captured())), settings);
    const [create] = only(d, "CreateVm");
    const vm = create!.objects.virtualMachine;
    assert.equal(vm.spec.runStrategy, "Halted");
    const holdNote = JSON.parse(vm.metadata.annotations!["fedbackup.io/restore-hold"]!) as VmHold;
    assert.deepEqual([holdNote.owner, holdNote.runStrategy], [ME, "Always"]);
    assert.deepEqual(records(d).at(-1)?.outcomes ?? [], []);
    // Next pass: it exists, held by this restore: started pinned to n1 as captured (Always).
    const next = decideRestore(
      stepWorld(p, starting(captured()), {
        vms: vms({ "vms/a": { exists: true, runStrategy: "Halted", hold: holdNote } }),
      }),
      settings,
    );
    assert.deepEqual(vmActions(next), ["StartVm a@n1 Always"]);
  });

  it("creates a VM whose Secret is missing halted, unheld, and fails it MissingReferences naming the Secret", () => {
    const p = planCreate();
    const d = decideRestore(
      stepWorld(p, starting(captured()), {
        missingReferences: new Map([["vms/a", ["Secret a-cloudinit (volume cloudinit)"]]]),
      }),
      settings,
    );
    const [create] = only(d, "CreateVm");
    assert.equal(create!.objects.virtualMachine.spec.runStrategy, "Halted");
    assert.equal(create!.objects.virtualMachine.metadata.annotations?.["fedbackup.io/restore-hold"], undefined);
    const outcome = records(d).at(-1)?.outcomes?.[0];
    assert.deepEqual([outcome?.phase, outcome?.reason], ["Failed", "MissingReferences"]);
    assert.match(outcome?.message ?? "", /Secret a-cloudinit/);
  });

  it("creates no VM from a definition that names a claim its capture did not hold (DefinitionMismatch)", () => {
    const p = planCreate();
    const foreign = captured("Always", [{ name: "root", persistentVolumeClaim: { claimName: "someone-elses" } }]);
    const d = decideRestore(stepWorld(p, starting(foreign)), settings);
    assert.deepEqual(only(d, "CreateVm"), []);
    assert.equal(records(d).at(-1)?.outcomes?.[0]?.reason, "DefinitionMismatch");
  });

  it("definition Replace puts the captured spec back on the held VM before it starts, then says Replaced", () => {
    const p = plan([resolved("vms/a", withDefinition)], [vmi("vms/a", "n1")], { definition: "Replace" });
    assert.equal(p.steps[0]!.spec.workloads[0]?.definition, "Replace");
    const changed = { runStrategy: "Halted", template: { spec: { volumes: [], terminationGracePeriodSeconds: 7 } } };
    const view = held("n1", { spec: changed });
    const replacing = decideRestore(stepWorld(p, starting(captured()), { vms: vms({ "vms/a": view }) }), settings);
    const [replace] = only(replacing, "ReplaceSpec");
    assert.equal(replace?.spec.runStrategy, "Halted");
    assert.deepEqual((replace?.spec.template as { spec: unknown }).spec, captured().virtualMachine.spec.template.spec);
    assert.equal(replace?.hold.runStrategy, "Always");
    assert.deepEqual(vmActions(replacing), []);
  });
});
