import assert from "node:assert/strict";
import type { FederatedBackup, NodeSnapshot } from "../../../src/api/v1alpha1/index.js";
import { buildNodeSnapshot } from "../../../src/controllers/federatedbackup/builders.js";
import { decideBackup, type BackupWorld } from "../../../src/controllers/federatedbackup/decide.js";
import { statusOutline } from "../../../src/controllers/federatedbackup/status-pace.js";
import type { ObservedNode, ObservedWorkload } from "../../../src/planning/index.js";

const NOW = Date.parse("2026-11-25T12:00:00Z");
const settings = { leaseRenewMs: 5_000, migrationWaitMs: 60_000 };

function backup(status?: FederatedBackup["status"], spec: Partial<FederatedBackup["spec"]> = {}): FederatedBackup {
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "FederatedBackup",
    metadata: { name: "nightly", namespace: "vms", uid: "0123456789abcdef", generation: 1 },
    spec: {
      sharedVolume: { claimName: "vmdisks", nodeMountPath: "/disks" },
      location: { persistentVolumeClaim: { claimName: "backups" } },
      ...spec,
    },
    ...(status ? { status } : {}),
  };
}

const node = (name: string, ready = true): ObservedNode => ({
  name,
  ready,
  schedulable: true,
  controlPlane: false,
  freeCpuMilli: 1000,
  freeMemoryBytes: 1e9,
  recentFailures: 0,
});

const vm = (name: string, on: string): ObservedWorkload => ({
  namespace: "vms",
  name,
  uid: name,
  phase: "Running",
  node: on,
  migrating: false,
  critical: false,
  priority: 0,
  files: [`vms/${name}/disk.img`],
});

function world(b: FederatedBackup, over: Partial<BackupWorld> = {}): BackupWorld {
  return {
    now: NOW,
    backup: b,
    steps: [],
    workloads: [],
    nodes: [node("n1"), node("n2")],
    lease: { ours: false, free: true },
    ...over,
  };
}

const kinds = (w: BackupWorld) => decideBackup(w, settings).actions.map((a) => a.kind);

describe("decideBackup", () => {
  it("plans round 1 from the VMs where they run: one step per node, most VMs first", () => {
    const d = decideBackup(world(backup(), { workloads: [vm("a", "n1"), vm("b", "n2"), vm("c", "n2")] }), settings);
    const created = d.actions.flatMap((a) => (a.kind === "CreateStep" ? [a.step] : []));
    assert.deepEqual(
      created.map((s) => [s.spec.node, s.spec.order, s.spec.workloads?.map((w) => w.name)]),
      [
        ["n2", 1, ["b", "c"]],
        ["n1", 2, ["a"]],
      ],
    );
    assert.equal(d.status.phase, "InProgress");
    assert.equal(d.status.progress?.workloadsExpected, 3);
  });

  it("fails a backup that selects nothing, with a reason that says so", () => {
    const d = decideBackup(world(backup()), settings);
    assert.equal(d.status.phase, "Failed");
    assert.equal(d.status.conditions?.find((c) => c.type === "Ready")?.reason, "NothingSelected");
  });

  it("names the namespaces that do not exist when they are why nothing is selected, and warns when some do not", () => {
    const none = decideBackup(world(backup(), { missingNamespaces: ["tyop"] }), settings);
    assert.match(
      none.status.conditions?.find((c) => c.type === "Ready")?.message ?? "",
      /namespaces that do not exist: tyop/,
    );
    const some = decideBackup(world(backup(), { workloads: [vm("a", "n1")], missingNamespaces: ["tyop"] }), settings);
    assert.equal(some.status.phase, "InProgress");
    assert.ok(
      some.actions.some((a) => a.kind === "Event" && a.reason === "NamespaceNotFound" && a.message.includes("tyop")),
    );
  });

  it("fails an invalid spec once and does not requeue it", () => {
    const d = decideBackup(
      world(backup(), { invalid: { reason: "LocationClaimNotFound", message: "no claim" } }),
      settings,
    );
    assert.equal(d.status.phase, "Failed");
    assert.equal(d.requeueAfterMs, undefined);
    assert.equal(d.status.conditions?.find((c) => c.type === "Failed")?.reason, "LocationClaimNotFound");
  });

  describe("one step at a time", () => {
    const b = backup({ phase: "InProgress", progress: { round: 1 } });
    const steps = (): NodeSnapshot[] => [
      buildNodeSnapshot(b, 1, 1, "n2", [vm("b", "n2")]),
      buildNodeSnapshot(b, 1, 2, "n1", [vm("a", "n1")]),
    ];

    it("claims the volume's Lease for the first node and starts its Job", () => {
      assert.deepEqual(kinds(world(b, { steps: steps().map((step) => ({ step })) })), [
        "ClaimLease",
        "StartJob",
        "RecordStepPhase",
        "Event",
      ]);
    });

    it("waits while another run holds the Lease", () => {
      const d = decideBackup(
        world(b, {
          steps: steps().map((step) => ({ step })),
          lease: { ours: false, free: false, owner: "FederatedBackup/vms/other" },
        }),
        settings,
      );
      assert.deepEqual(d.actions, []);
      assert.equal(d.status.conditions?.find((c) => c.type === "Progressing")?.reason, "WaitingForVolumeLease");
    });

    it("gives back the back ends it holds while it waits for another, names the one it waits for and lists them all", () => {
      const d = decideBackup(
        world(b, {
          steps: steps().map((step) => ({ step })),
          lease: {
            ours: false,
            free: false,
            heldSome: true,
            keys: ["storageclass/fast", "volume/nfs:h:/d"],
            blockedKey: "volume/nfs:h:/d",
            owner: "WorkloadRestore/vms/r1",
          },
        }),
        settings,
      );
      assert.deepEqual(
        d.actions.map((a) => a.kind),
        ["ReleaseLease"],
      );
      const progressing = d.status.conditions?.find((c) => c.type === "Progressing");
      assert.equal(progressing?.reason, "WaitingForVolumeLease");
      assert.match(
        progressing?.message ?? "",
        /storage back end volume\/nfs:h:\/d is in use by WorkloadRestore\/vms\/r1/,
      );
      assert.deepEqual(d.status.storageBackends, ["storageclass/fast", "volume/nfs:h:/d"]);
    });

    it("fails the step of a node that is not Ready when its turn comes, without a Job", () => {
      const d = decideBackup(
        world(b, { steps: steps().map((step) => ({ step })), nodes: [node("n1"), node("n2", false)] }),
        settings,
      );
      const record = d.actions.find((a) => a.kind === "RecordStepPhase");
      assert.equal(record?.kind === "RecordStepPhase" && record.phase, "Failed");
      assert.ok(!d.actions.some((a) => a.kind === "StartJob"));
    });

    it("fails a running step whose node went NotReady and deletes its Job", () => {
      const [first, second] = steps();
      first!.status = { phase: "Running" };
      const w = world(b, {
        steps: [{ step: first!, job: { name: "j", complete: false, failed: false } }, { step: second! }],
        nodes: [node("n1"), node("n2", false)],
      });
      assert.deepEqual(kinds(w), ["DeleteJob", "RecordStepPhase", "Event"]);
      // The step names the VMs it leaves uncaptured, and that its node's guests may need a thaw.
      const record = decideBackup(w, settings).actions.find((a) => a.kind === "RecordStepPhase");
      assert.ok(record?.kind === "RecordStepPhase");
      assert.equal(record.thawPending, true);
      assert.deepEqual(
        record.failed?.map((f) => [`${f.namespace}/${f.name}`, f.reason]),
        (first!.spec.workloads ?? []).map((x) => [`${x.namespace}/${x.name}`, "NodeFailed"]),
      );
      assert.ok((record.failed?.length ?? 0) > 0);
    });

    it("marks a step whose Job failed (its agent killed, out of retries) for the operator's thaw", () => {
      const [first, second] = steps();
      first!.status = { phase: "Running" };
      const w = world(b, {
        steps: [
          { step: first!, job: { name: "j", complete: false, failed: true, failureReason: "BackoffLimitExceeded" } },
          { step: second! },
        ],
        lease: { ours: true, free: false, renewedAt: NOW, holderNode: "n2" },
      });
      const record = decideBackup(w, settings).actions.find((a) => a.kind === "RecordStepPhase");
      assert.ok(record?.kind === "RecordStepPhase");
      assert.equal(record.phase, "Failed");
      assert.equal(record.thawPending, true);
    });

    it("does not conclude from a completed Job before the agent's report arrived", () => {
      const [first, second] = steps();
      first!.status = { phase: "Running" };
      const w = world(b, {
        steps: [
          { step: first!, job: { name: "j", complete: true, failed: false, completionTime: "2026-11-25T11:59:59Z" } },
          { step: second! },
        ],
        lease: { ours: true, free: false, renewedAt: NOW, holderNode: "n2" },
      });
      assert.deepEqual(kinds(w), []);
    });
  });

  describe("pipelined steps (spec.pipeline.lookAhead 2)", () => {
    const b = backup(
      { phase: "InProgress", progress: { round: 1 } },
      { pipeline: { lookAhead: 2, maxExtractions: 2 } },
    );
    const nodes = ["n1", "n2", "n3", "n4"].map((n) => node(n));
    const steps = (): NodeSnapshot[] =>
      nodes.map((n, i) => buildNodeSnapshot(b, 1, i + 1, n.name, [vm(`vm-${n.name}`, n.name)]));
    const keys = ["volume/nfs:h:/d"];
    const running = (step: NodeSnapshot, cut = false): NodeSnapshot => ({
      ...step,
      status: { phase: "Running", ...(cut ? { cutCompletionTime: "2026-11-25T11:59:59Z" } : {}) },
    });
    const job = { name: "j", complete: false, failed: false };

    it("gives the first node the turn and starts its Job and the next two, each waiting for its turn", () => {
      const d = decideBackup(
        world(b, { steps: steps().map((step) => ({ step })), nodes, lease: { ours: false, free: true, keys } }),
        settings,
      );
      const claim = d.actions.find((a) => a.kind === "ClaimLease");
      assert.deepEqual(claim?.kind === "ClaimLease" && [claim.node, claim.step], ["n1", steps()[0]!.metadata.name]);
      const started = d.actions.flatMap((a) => (a.kind === "StartJob" ? [[a.step.spec.node, a.waitsForTurn]] : []));
      assert.deepEqual(started, [
        ["n1", true],
        ["n2", true],
        ["n3", true],
      ]);
    });

    it("hands the turn to the next node once the holder's cut is made, and starts one more Job", () => {
      const [s1, s2, s3, s4] = steps();
      const d = decideBackup(
        world(b, {
          steps: [
            { step: running(s1!, true), job },
            { step: running(s2!), job },
            { step: running(s3!), job },
            { step: s4! },
          ],
          nodes,
          lease: { ours: true, free: false, keys, holderNode: "n1", holderStep: s1!.metadata.name!, renewedAt: NOW },
        }),
        settings,
      );
      const claim = d.actions.find((a) => a.kind === "ClaimLease");
      assert.deepEqual(claim?.kind === "ClaimLease" && [claim.node, claim.step], ["n2", s2!.metadata.name]);
      assert.deepEqual(
        d.actions.flatMap((a) => (a.kind === "StartJob" ? [a.step.spec.node] : [])),
        ["n4"],
      );

      assert.equal(d.status.coordinatingNode, "n2");
    });

    it("hands the turn on first in the pass, before it records the end of a step that finished", () => {
      const [s1, s2, s3, s4] = steps();
      const ended: NodeSnapshot = { ...running(s1!, true), status: { ...running(s1!, true).status, capturedCount: 1 } };
      const d = decideBackup(
        world(b, {
          steps: [
            { step: ended, job: { ...job, complete: true } },
            { step: running(s2!, true), job },
            { step: running(s3!), job },
            { step: s4! },
          ],
          nodes,
          lease: { ours: true, free: false, keys, holderNode: "n2", holderStep: s2!.metadata.name!, renewedAt: NOW },
        }),
        settings,
      );
      assert.deepEqual(
        d.actions.map((a) => (a.kind === "ClaimLease" ? `ClaimLease ${a.node}` : a.kind)),
        ["ClaimLease n3", "RecordStepPhase", "Event", "StartJob", "RecordStepPhase", "Event"],
      );
    });

    it("thaws what a failed step's agent left frozen before anyone else cuts; a lost node's does not hold the cut", () => {
      const [s1, s2, s3, s4] = steps();
      const failed = (step: NodeSnapshot): NodeSnapshot => ({
        ...step,
        status: { phase: "Failed", thawPending: true, completionTime: "2026-11-25T11:59:00Z" },
      });
      const lease = { ours: true, free: false, keys, holderNode: "n1", holderStep: s1!.metadata.name!, renewedAt: NOW };
      const held = decideBackup(
        world(b, {
          steps: [{ step: failed(s1!) }, { step: running(s2!), job }, { step: running(s3!), job }, { step: s4! }],
          nodes,
          lease,
        }),
        settings,
      );
      assert.equal(
        held.actions.find((a) => a.kind === "ClaimLease"),
        undefined,
        "the cut stays where it was",
      );
      assert.match(
        held.status.conditions!.find((c) => c.type === "Progressing")!.message,
        /thawing the VMs the agent of n1 left frozen/,
      );
      // The same with n1 lost: its VMs cannot be reached, and the run goes on.
      const lost = decideBackup(
        world(b, {
          steps: [{ step: failed(s1!) }, { step: running(s2!), job }, { step: running(s3!), job }, { step: s4! }],
          nodes: nodes.map((n) => (n.name === "n1" ? { ...n, ready: false } : n)),
          lease,
        }),
        settings,
      );
      const claim = lost.actions.find((a) => a.kind === "ClaimLease");
      assert.deepEqual(claim?.kind === "ClaimLease" && claim.node, "n2");
    });

    it("does not start the next strict step in the pass that finds the previous one's Job failed", () => {
      const strict = backup({ phase: "InProgress", progress: { round: 1 } });
      const [s1, s2] = nodes.map((n, i) => buildNodeSnapshot(strict, 1, i + 1, n.name, [vm(`vm-${n.name}`, n.name)]));
      const d = decideBackup(
        world(strict, {
          steps: [{ step: running(s1!), job: { ...job, failed: true } }, { step: s2! }],
          nodes,
          lease: { ours: true, free: false, keys, holderNode: "n1", holderStep: s1!.metadata.name!, renewedAt: NOW },
        }),
        settings,
      );
      const recorded = d.actions.find((a) => a.kind === "RecordStepPhase");
      assert.ok(recorded?.kind === "RecordStepPhase" && recorded.phase === "Failed" && recorded.thawPending);
      assert.deepEqual(
        d.actions.filter((a) => a.kind === "StartJob" || a.kind === "ClaimLease"),
        [],
      );
    });

    it("does not hand the turn on before the holder's cut is made", () => {
      const [s1, s2, s3, s4] = steps();
      const d = decideBackup(
        world(b, {
          steps: [{ step: running(s1!), job }, { step: running(s2!), job }, { step: running(s3!), job }, { step: s4! }],
          nodes,
          lease: { ours: true, free: false, keys, holderNode: "n1", holderStep: s1!.metadata.name!, renewedAt: NOW },
        }),
        settings,
      );
      assert.deepEqual(d.actions, []);
    });

    it("runs strictly one step at a time with lookAhead 0 (the default), its agent not waiting", () => {
      const strict = backup({ phase: "InProgress", progress: { round: 1 } });
      const d = decideBackup(
        world(strict, {
          steps: steps().map((step) => ({ step })),
          nodes,
          lease: { ours: false, free: true, keys },
        }),
        settings,
      );
      const started = d.actions.flatMap((a) => (a.kind === "StartJob" ? [[a.step.spec.node, a.waitsForTurn]] : []));
      assert.deepEqual(started, [["n1", false]]);
    });
  });

  describe("a CSI step", () => {
    const b = backup(
      { phase: "InProgress", progress: { round: 1 } },
      { snapshot: { method: "CSI", volumeSnapshotClassName: "csi" } },
    );
    const lease = { ours: true, free: false, renewedAt: NOW, holderNode: "n2" };
    const done = { name: "j", complete: true, failed: false, completionTime: "2026-11-25T11:59:00Z" };
    const snapshotTaken = (): NodeSnapshot => {
      const step = buildNodeSnapshot(b, 1, 1, "n2", [vm("b", "n2")]);
      step.status = {
        phase: "Running",
        snapshotMethod: "CSI",
        volumeSnapshot: { name: step.metadata.name!, creationTime: "2026-11-25T11:58:59Z", workloads: [] },
      };
      return step;
    };

    it("restores the snapshot and starts the extract Job once the snapshot Job is done", () => {
      assert.deepEqual(kinds(world(b, { steps: [{ step: snapshotTaken(), job: done }], lease })), ["StartExtract"]);
    });

    it("is not done when the extract agent has reported but its Job has not completed", () => {
      const step = snapshotTaken();
      step.status = { ...step.status, capturedCount: 1, captured: [{ namespace: "vms", name: "b" }] };
      const extract = { name: "x", complete: false, failed: false };
      assert.deepEqual(kinds(world(b, { steps: [{ step, job: done, extract }], lease })), []);
    });

    it("succeeds with the extract Job, then releases the restored claim and the snapshot", () => {
      const step = snapshotTaken();
      step.status = { ...step.status, capturedCount: 1, captured: [{ namespace: "vms", name: "b" }] };
      const w = world(b, { steps: [{ step, job: done, extract: { ...done, name: "x" } }], lease });
      const d = decideBackup(w, settings);
      const record = d.actions.find((a) => a.kind === "RecordStepPhase");
      assert.equal(record?.kind === "RecordStepPhase" && record.phase, "Succeeded");
      assert.ok(d.actions.some((a) => a.kind === "ReleaseVolumeSnapshot"));
      step.status = {
        ...step.status,
        phase: "Succeeded",
        volumeSnapshot: { ...step.status.volumeSnapshot, released: true },
      };
      assert.ok(!kinds(w).includes("ReleaseVolumeSnapshot"), "released once");
    });

    it("fails with a failed extract Job", () => {
      const extract = { name: "x", complete: false, failed: true, failureReason: "BackoffLimitExceeded" };
      const d = decideBackup(world(b, { steps: [{ step: snapshotTaken(), job: done, extract }], lease }), settings);
      const record = d.actions.find((a) => a.kind === "RecordStepPhase");
      assert.equal(record?.kind === "RecordStepPhase" && record.phase, "Failed");
      assert.match(record?.kind === "RecordStepPhase" ? (record.message ?? "") : "", /extract Job failed/);
    });
  });

  describe("the status outline (what a paced pass compares without building the VM lists)", () => {
    const b = backup({ phase: "InProgress", progress: { round: 1, nodesTotal: 2 } });
    const [s1, s2] = [
      buildNodeSnapshot(b, 1, 1, "n1", [vm("a", "n1")]),
      buildNodeSnapshot(b, 1, 2, "n2", [vm("b", "n2")]),
    ];
    const done = (step: NodeSnapshot, captured: string[]): NodeSnapshot => ({
      ...step,
      status: {
        phase: "Succeeded",
        captured: captured.map((name) => ({ namespace: "vms", name, files: 1 })),
        completionTime: "2026-11-25T11:59:00Z",
      },
    });
    const complete = { name: "j", complete: true, failed: false };
    const worlds: Array<[string, BackupWorld]> = [
      ["planning", world(backup(), { workloads: [vm("a", "n1"), vm("b", "n2")] })],
      ["a node running", world(b, { steps: [{ step: s1 }, { step: s2 }] })],
      ["one node done", world(b, { steps: [{ step: done(s1, ["a"]), job: complete }, { step: s2 }] })],
      [
        "the round done, one VM not captured",
        world(b, {
          steps: [
            { step: done(s1, ["a"]), job: complete },
            { step: done(s2, []), job: complete },
          ],
        }),
      ],
      [
        "finished, one VM missing",
        world(backup({ phase: "Verifying", progress: { round: 1, nodesTotal: 2 } }), {
          steps: [
            { step: done(s1, ["a"]), job: complete },
            { step: done(s2, []), job: complete },
          ],
        }),
      ],
    ];
    for (const [what, w] of worlds) {
      it(`is the full status's outline: ${what}`, () => {
        const d = decideBackup(w, settings);
        assert.deepEqual(d.outline(), statusOutline(d.status));
        assert.equal(d.phase, d.status.phase);
        if (what.startsWith("finished")) assert.equal(d.phase, "PartiallyFailed");
      });
    }
  });

  describe("a finished backup", () => {
    it("is deleted once its ttl has passed", () => {
      const b = backup({ phase: "Completed", expiresAt: "2026-11-25T11:00:00Z" }, { ttl: "24h" });
      assert.deepEqual(kinds(world(b)), ["DeleteBackup"]);
    });

    it("is looked at again when it expires", () => {
      const b = backup({ phase: "Completed", expiresAt: "2026-11-25T13:00:00Z" }, { ttl: "24h" });
      const d = decideBackup(world(b), settings);
      assert.deepEqual(d.actions, []);
      assert.equal(d.requeueAfterMs, 3_600_000);
    });

    it("gives back a Lease it still holds and keeps its status", () => {
      const b = backup({ phase: "PartiallyFailed", missing: [{ namespace: "vms", name: "a", reason: "NotFound" }] });
      const d = decideBackup(world(b, { lease: { ours: true, free: false } }), settings);
      assert.deepEqual(
        d.actions.map((a) => a.kind),
        ["ReleaseLease"],
      );
      assert.deepEqual(d.status, b.status);
    });
  });
});
