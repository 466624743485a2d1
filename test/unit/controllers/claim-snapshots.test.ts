// The operator's side of claims cut with CSI: what a step's spec and status say, the claims restored from
// the snapshots, the extract Job that reads them, the agent's access to them, the step's phase, and the
// Event that says what Auto picked.
import assert from "node:assert/strict";
import type { FederatedBackup, NodeSnapshot } from "../../../src/api/v1alpha1/index.js";
import {
  buildExtractJob,
  buildNodeSnapshot,
  buildRestoredClaimSnapshots,
  claimSnapshotNames,
  groupSnapshotsOf,
  stepAccessOf,
  usesCsiCut,
} from "../../../src/controllers/federatedbackup/builders.js";
import { claimMethodsSummary } from "../../../src/controllers/federatedbackup/claim-methods-event.js";
import { decideBackup } from "../../../src/controllers/federatedbackup/decide.js";
import { deriveStepPhase } from "../../../src/controllers/federatedbackup/steps.js";
import { buildStepAccess } from "../../../src/controllers/runtime/agent-access.js";
import { volumeDriver } from "../../../src/controllers/runtime/claim-methods.js";
import {
  claimSnapshotName,
  groupSnapshotName,
  restoredClaimSnapshotName,
  type ObservedWorkload,
} from "../../../src/planning/index.js";

const NOW = Date.parse("2026-11-25T12:00:00Z");
const WHY = "Auto picked CSI: a VolumeSnapshotClass exists for driver rbd.csi.ceph.com";

const backup: FederatedBackup = {
  apiVersion: "fedbackup.io/v1alpha1",
  kind: "FederatedBackup",
  metadata: { name: "nightly", namespace: "vms", uid: "0123456789abcdef", generation: 1 },
  spec: {
    sharedVolume: { claimName: "vmdisks", nodeMountPath: "/disks" },
    location: { persistentVolumeClaim: { claimName: "backups" } },
  },
};

const vm = (name: string, claims: ObservedWorkload["claims"], files: string[] = []): ObservedWorkload => ({
  namespace: "vms",
  name,
  uid: name,
  phase: "Running",
  node: "n1",
  migrating: false,
  critical: false,
  priority: 0,
  files,
  claims,
});

const csiClaim = (claimName: string, volumeMode: "Filesystem" | "Block") => ({
  volume: `v-${claimName}`,
  claimName,
  sourceKind: "PersistentVolumeClaim" as const,
  volumeMode,
  snapshotMethod: "CSI" as const,
  why: WHY,
  volumeSnapshotClassName: "rbd-snap",
});

function csiStep(): NodeSnapshot {
  const step = buildNodeSnapshot(backup, 1, 1, "n1", [
    vm("a", [csiClaim("pvc-a", "Filesystem"), csiClaim("pvc-b", "Block")]),
    vm("c", [
      {
        volume: "root",
        claimName: "pvc-c",
        sourceKind: "DataVolume",
        volumeMode: "Filesystem",
        snapshotMethod: "Copy",
        why: "Auto picked Copy: it is not on a CSI volume, and its filesystem's reflink support is unknown",
      },
    ]),
    vm("h", undefined, ["vms/h/disk.img"]),
  ]);
  step.metadata.uid = "step-uid";
  return step;
}

const taken = (step: NodeSnapshot): NodeSnapshot => ({
  ...step,
  status: {
    phase: "Running",
    volumeSnapshot: {
      creationTime: "2026-11-25T11:59:00Z",
      workloads: [{ namespace: "vms", name: "a", freezeWindowMs: 30 }],
    },
    claimSnapshots: ["pvc-a", "pvc-b"].map((claimName, i) => ({
      namespace: "vms",
      name: "a",
      volume: `v-${claimName}`,
      claimName,
      volumeMode: i === 0 ? ("Filesystem" as const) : ("Block" as const),
      volumeSnapshot: claimSnapshotName(step.metadata.name!, claimName),
      creationTime: "2026-11-25T11:59:00Z",
    })),
    captured: [
      { namespace: "vms", name: "c" },
      { namespace: "vms", name: "h" },
    ],
  },
});

describe("claims cut with CSI (operator)", () => {
  it("a step's spec records each claim's method, why and class; the step takes snapshots of its CSI claims", () => {
    const step = csiStep();
    const a = step.spec.workloads!.find((w) => w.name === "a")!;
    assert.deepEqual(
      a.claims!.map((c) => [c.claimName, c.snapshotMethod, c.why, c.volumeSnapshotClassName]),
      [
        ["pvc-a", "CSI", WHY, "rbd-snap"],
        ["pvc-b", "CSI", WHY, "rbd-snap"],
      ],
    );
    assert.equal(usesCsiCut(step), true);
    assert.deepEqual(claimSnapshotNames(step), [
      claimSnapshotName(step.metadata.name!, "pvc-a"),
      claimSnapshotName(step.metadata.name!, "pvc-b"),
    ]);
    const copyOnly = buildNodeSnapshot(backup, 1, 1, "n1", [vm("h", undefined, ["vms/h/disk.img"])]);
    assert.equal(usesCsiCut(copyOnly), false);
  });

  it("a VM whose CSI claims are all groupSnapshot is cut in one VolumeGroupSnapshot, granted by name with its claims", () => {
    const group = (claimName: string) => ({
      ...csiClaim(claimName, "Filesystem"),
      groupSnapshot: true,
      volumeGroupSnapshotClassName: "rbd-group",
    });
    const step = buildNodeSnapshot(backup, 1, 1, "n1", [
      vm("g", [group("pvc-g1"), group("pvc-g2")]),
      vm("a", [csiClaim("pvc-a", "Filesystem")]),
    ]);
    step.metadata.uid = "step-uid";
    assert.deepEqual(
      step.spec
        .workloads!.find((w) => w.name === "g")!
        .claims!.map((c) => [c.groupSnapshot, c.volumeGroupSnapshotClassName]),
      [
        [true, "rbd-group"],
        [true, "rbd-group"],
      ],
    );
    // g's members are named by the snapshot controller: only a's snapshot is named after the step.
    assert.deepEqual(claimSnapshotNames(step), [claimSnapshotName(step.metadata.name!, "pvc-a")]);
    const groups = [
      { name: groupSnapshotName(step.metadata.name!, { namespace: "vms", name: "g" }), claims: ["pvc-g1", "pvc-g2"] },
    ];
    assert.deepEqual(groupSnapshotsOf(step), groups);
    assert.deepEqual(stepAccessOf(step).groupSnapshots, groups);
    // Without group snapshots, the access asks for none.
    assert.equal(stepAccessOf(csiStep()).groupSnapshots, undefined);
  });

  it("grants the agent get and delete on its claims' snapshots by name, and create", () => {
    const step = csiStep();
    const access = buildStepAccess(stepAccessOf(step));
    const rules = access.roles.flatMap(
      (r) => r.rules as Array<{ resources: string[]; verbs: string[]; resourceNames?: string[] }>,
    );
    const snapshots = rules.filter((r) => r.resources.includes("volumesnapshots"));
    assert.deepEqual(
      snapshots.map((r) => [r.verbs.join(","), r.resourceNames]),
      [
        ["create", undefined],
        ["get,delete", claimSnapshotNames(step)],
      ],
    );
  });

  it("restores each claim snapshot into a claim of its volume mode, its source's class and size", () => {
    const step = taken(csiStep());
    const sources = new Map([
      ["pvc-a", { spec: { storageClassName: "rbd" }, status: { capacity: { storage: "10Gi" } } }],
      ["pvc-b", { spec: { storageClassName: "rbd-block", resources: { requests: { storage: "4Gi" } } } }],
    ]);
    const claims = buildRestoredClaimSnapshots(backup, step, sources);
    assert.deepEqual(
      claims.map((c) => [
        c.metadata.name,
        c.spec.volumeMode,
        c.spec.storageClassName,
        c.spec.resources.requests.storage,
        c.spec.dataSource.name,
      ]),
      step.status!.claimSnapshots!.map((c, i) => [
        restoredClaimSnapshotName(c.volumeSnapshot),
        i === 0 ? "Filesystem" : "Block",
        i === 0 ? "rbd" : "rbd-block",
        i === 0 ? "10Gi" : "4Gi",
        c.volumeSnapshot,
      ]),
    );
    assert.equal(claims[0]!.metadata.ownerReferences[0]!.kind, "NodeSnapshot");
    // A source that is gone is not restored.
    assert.equal(buildRestoredClaimSnapshots(backup, step, new Map([["pvc-a", sources.get("pvc-a")!]])).length, 1);
  });

  it("the extract Job reads the restored claims where the claims were, and not the VMs' own claims", () => {
    const step = taken(csiStep());
    const job = buildExtractJob(backup, step, { agentImage: "img" });
    const pod = (job.spec as { template: { spec: Record<string, unknown> } }).template.spec as {
      volumes: Array<{ name: string; persistentVolumeClaim?: { claimName: string } }>;
      containers: Array<{
        args: string[];
        volumeMounts: Array<{ mountPath: string }>;
        volumeDevices?: Array<{ devicePath: string }>;
      }>;
    };
    const claimNames = pod.volumes.flatMap((v) => (v.persistentVolumeClaim ? [v.persistentVolumeClaim.claimName] : []));
    const restored = step.status!.claimSnapshots!.map((c) => restoredClaimSnapshotName(c.volumeSnapshot));
    for (const name of restored) assert.ok(claimNames.includes(name), name);
    for (const own of ["pvc-a", "pvc-b", "pvc-c"]) assert.ok(!claimNames.includes(own), own);
    // No snapshot of the shared claim: the shared claim itself is mounted.
    assert.ok(claimNames.includes("vmdisks"));
    assert.ok(pod.containers[0]!.args.includes("--from-snapshot"));
    assert.ok(pod.containers[0]!.volumeMounts.some((m) => m.mountPath.endsWith(`/${restored[0]}`)));
    assert.ok(pod.containers[0]!.volumeDevices!.some((d) => d.devicePath.endsWith(`/${restored[1]}`)));
  });

  it("goes on to the extraction once the snapshot Job is done, and releases the snapshots after it", () => {
    const step = taken(csiStep());
    const done = { name: "j", complete: true, failed: false, completionTime: "2026-11-25T11:59:30Z" };
    const running = deriveStepPhase({ step, job: done }, NOW);
    assert.deepEqual(running, {
      phase: "Running",
      message: "extracting from 2 VolumeSnapshots of claims",
      startExtract: true,
      // The snapshot Job was the cut: a pipelined run hands the cut on while this step extracts.
      cutDone: true,
    });
    const finished: NodeSnapshot = { ...step, status: { ...step.status, capturedCount: 3 } };
    assert.equal(
      deriveStepPhase({ step: finished, job: done, extract: { ...done, name: "x" } }, NOW).phase,
      "Succeeded",
    );
    const b: FederatedBackup = { ...backup, status: { phase: "InProgress", progress: { round: 1 } } };
    const d = decideBackup(
      {
        now: NOW,
        backup: b,
        steps: [{ step: finished, job: done, extract: { ...done, name: "x" } }],
        workloads: [],
        nodes: [],
        lease: { ours: true, free: false, renewedAt: NOW, holderNode: "n1" },
      },
      { leaseRenewMs: 5_000, migrationWaitMs: 60_000 },
    );
    assert.ok(d.actions.some((a) => a.kind === "ReleaseVolumeSnapshot"));
  });

  it("says in one Event what the method picked for the claims, grouped by method and why", () => {
    const message = claimMethodsSummary([csiStep()]);
    assert.equal(
      message,
      `2 claims by CSI (${WHY}): vms/pvc-a, vms/pvc-b; 1 claim by Copy (Auto picked Copy: it is not on a CSI volume, and its filesystem's reflink support is unknown): vms/pvc-c`,
    );
    assert.equal(claimMethodsSummary([buildNodeSnapshot(backup, 1, 1, "n1", [vm("h", undefined, ["x"])])]), undefined);
  });

  it("a PV's driver is its spec.csi.driver, else the provisioner that made it", () => {
    assert.equal(volumeDriver({ metadata: {}, spec: { csi: { driver: "rbd.csi.ceph.com" } } }), "rbd.csi.ceph.com");
    assert.equal(
      volumeDriver({
        metadata: { annotations: { "pv.kubernetes.io/provisioned-by": "hostpath.csi.k8s.io" } },
        spec: {},
      }),
      "hostpath.csi.k8s.io",
    );
    assert.equal(volumeDriver({ metadata: {}, spec: {} }), undefined);
  });
});
