// The step's Job cutting a VM's claims in one VolumeGroupSnapshot (agent/csi-group.ts through
// takeVolumeSnapshot): an earlier attempt's group and labels go before any freeze, the claims are labelled
// and the group created inside the freeze, the VM thawed after the group's cut point, its members mapped to
// the claims and recorded as single snapshots are, the labels taken off; a VM on a driver without a group
// class keeps its single snapshots.
import assert from "node:assert/strict";
import { takeVolumeSnapshot } from "../../../src/agent/csi.js";
import type { NodeSnapshot } from "../../../src/api/v1alpha1/index.js";
import type { KubeClient } from "../../../src/k8s/client.js";
import { ApiError } from "../../../src/k8s/errors.js";
import type { ResourceType } from "../../../src/k8s/resources.js";
import type { KubeObject } from "../../../src/k8s/types.js";
import { claimSnapshotName, GROUP_SNAPSHOT_LABEL, groupSnapshotName } from "../../../src/planning/index.js";
import { RecordingFreezer, alwaysActive, memoryLog, realClock } from "./helpers.js";

const CUT = "2026-11-25T12:00:01Z";
type Obj = KubeObject & { spec?: Record<string, unknown>; status?: Record<string, unknown> };

/**
 * A KubeClient playing the snapshot controller: a created VolumeGroupSnapshot gets its cut point and one
 * member per claim carrying its label (owned by the group, as upstream), a VolumeSnapshot its cut point.
 */
function fakeCluster(claims: Record<string, Record<string, string>>, existing: Obj[] = []) {
  const objects = new Map<string, Obj>(existing.map((o) => [`${o.kind}/${o.metadata.name}`, o]));
  const labels = new Map(Object.entries(claims));
  const calls: string[] = [];
  let uid = 0;
  const client = {
    create: (type: ResourceType, obj: Obj) => {
      calls.push(`create ${type.kind} ${obj.metadata.name}`);
      const created: Obj = {
        ...obj,
        metadata: { ...obj.metadata, uid: `uid-${++uid}` },
        status: { creationTime: CUT },
      };
      objects.set(`${type.kind}/${obj.metadata.name}`, created);
      if (type.kind === "VolumeGroupSnapshot") {
        const match = (obj.spec as { source: { selector: { matchLabels: Record<string, string> } } }).source.selector
          .matchLabels;
        for (const [claim, l] of labels) {
          if (!Object.entries(match).every(([k, v]) => l[k] === v)) continue;
          const name = `snapshot-${claim}-${uid}`;
          objects.set(`VolumeSnapshot/${name}`, {
            metadata: {
              name,
              ownerReferences: [
                {
                  apiVersion: "groupsnapshot.storage.k8s.io/v1beta2",
                  kind: "VolumeGroupSnapshot",
                  name: obj.metadata.name!,
                  uid: created.metadata.uid!,
                },
              ],
            },
            spec: { source: { persistentVolumeClaimName: claim } },
            status: { creationTime: CUT, volumeGroupSnapshotName: obj.metadata.name },
          });
        }
        created.status = { creationTime: CUT, readyToUse: true };
      }
      return Promise.resolve(created);
    },
    get: (type: ResourceType, _ns: string, name: string) => {
      const o = objects.get(`${type.kind}/${name}`);
      return o ? Promise.resolve(o) : Promise.reject(new ApiError(404, "NotFound", `${name} not found`));
    },
    list: (type: ResourceType) =>
      Promise.resolve({ items: [...objects].filter(([k]) => k.startsWith(`${type.kind}/`)).map(([, o]) => o) }),
    delete: (type: ResourceType, _ns: string, name: string) => {
      calls.push(`delete ${type.kind} ${name}`);
      return objects.delete(`${type.kind}/${name}`)
        ? Promise.resolve()
        : Promise.reject(new ApiError(404, "NotFound", `${name} not found`));
    },
    patch: (
      type: ResourceType,
      _ns: string,
      name: string,
      patch: { metadata: { labels: Record<string, string | null> } },
    ) => {
      const l = labels.get(name);
      if (!l) return Promise.reject(new ApiError(404, "NotFound", `${name} not found`));
      for (const [k, v] of Object.entries(patch.metadata.labels)) {
        calls.push(`${v === null ? "unlabel" : "label"} ${name}`);
        if (v === null) delete l[k];
        else l[k] = v;
      }
      return Promise.resolve({ metadata: { name, labels: l } });
    },
  };
  return { client: client as unknown as KubeClient, calls, labels, objects };
}

const stepName = "nightly-r1-n1";
const claim = (claimName: string, groupClass?: string) => ({
  volume: `v-${claimName}`,
  claimName,
  volumeMode: "Filesystem" as const,
  snapshotMethod: "CSI" as const,
  volumeSnapshotClassName: "snap",
  ...(groupClass ? { groupSnapshot: true, volumeGroupSnapshotClassName: groupClass } : {}),
});
const step = {
  apiVersion: "fedbackup.io/v1alpha1",
  kind: "NodeSnapshot",
  metadata: { name: stepName, namespace: "vms", uid: "step-uid", labels: { "fedbackup.io/backup": "nightly" } },
  spec: {
    node: "n1",
    round: 1,
    snapshot: { method: "Auto", quiesce: "GuestAgent", freezeTimeout: "30s", maxFreeze: "2m" },
    extractAt: "Backup",
    workloads: [
      { namespace: "vms", name: "a", uid: "ua", files: [], claims: [claim("pvc-a", "grp"), claim("pvc-b", "grp")] },
      { namespace: "vms", name: "s", uid: "us", files: [], claims: [claim("pvc-s")] },
    ],
  },
} as unknown as NodeSnapshot & KubeObject;

describe("agent/csi: a VM's claims in one VolumeGroupSnapshot", () => {
  it("labels the claims, cuts them in one group inside the freeze, records its members, takes the labels off", async () => {
    const group = groupSnapshotName(stepName, { namespace: "vms", name: "a" });
    const single = claimSnapshotName(stepName, "pvc-s");
    // An earlier attempt left its group and a label; a claim of another VM carries the label of nothing.
    const { client, calls, labels, objects } = fakeCluster(
      { "pvc-a": { [GROUP_SNAPSHOT_LABEL]: group }, "pvc-b": {}, "pvc-s": {}, other: {} },
      [{ kind: "VolumeGroupSnapshot", metadata: { name: group } }],
    );
    const freezer = new RecordingFreezer();
    const order: string[] = [];
    freezer.onFreeze = (vm) => Promise.resolve(void order.push(`freeze ${vm.name} after ${calls.length} calls`));
    freezer.onUnfreeze = (vm) => Promise.resolve(void order.push(`thaw ${vm.name} after ${calls.length} calls`));
    const taken = await takeVolumeSnapshot(
      step,
      { freezeTimeoutMs: 2000, maxFreezeMs: 30_000 },
      { client, freezer, isActiveOnNode: alwaysActive, clock: realClock, log: memoryLog(), pollMs: 1 },
    );
    assert.deepEqual(calls, [
      // Before any freeze: the earlier group (its members go with it) and its labels; the single snapshot.
      `delete VolumeGroupSnapshot ${group}`,
      "unlabel pvc-a",
      "unlabel pvc-b",
      `delete VolumeSnapshot ${single}`,
      // Inside the freeze.
      "label pvc-a",
      "label pvc-b",
      `create VolumeGroupSnapshot ${group}`,
      `create VolumeSnapshot ${single}`,
      // After the thaw.
      "unlabel pvc-a",
      "unlabel pvc-b",
    ]);
    assert.deepEqual(order.sort(), [
      "freeze a after 4 calls",
      "freeze s after 4 calls",
      "thaw a after 8 calls",
      "thaw s after 8 calls",
    ]);
    const created = objects.get(`VolumeGroupSnapshot/${group}`)!;
    assert.deepEqual(created.spec, {
      volumeGroupSnapshotClassName: "grp",
      source: { selector: { matchLabels: { [GROUP_SNAPSHOT_LABEL]: group } } },
    });
    assert.equal(created.metadata.ownerReferences?.[0]?.uid, "step-uid");
    assert.deepEqual(
      taken.claimSnapshots
        .map((c) => [c.name, c.claimName, c.volume, c.volumeSnapshot, c.creationTime])
        .sort((x, y) => (x[1]! < y[1]! ? -1 : 1)),
      [
        ["a", "pvc-a", "v-pvc-a", "snapshot-pvc-a-1", CUT],
        ["a", "pvc-b", "v-pvc-b", "snapshot-pvc-b-1", CUT],
        ["s", "pvc-s", "v-pvc-s", single, CUT],
      ],
    );
    assert.deepEqual(
      [...labels.values()].filter((l) => GROUP_SNAPSHOT_LABEL in l),
      [],
      "no label left",
    );
    freezer.assertAllThawed();
  });

  it("fails when the group is ready without a snapshot of one of its claims, and still takes the labels off", async () => {
    // pvc-b is gone when the group is cut: no member for it.
    const { client, labels } = fakeCluster({ "pvc-a": {} });
    const onlyA = {
      ...step,
      spec: { ...step.spec, workloads: step.spec.workloads!.slice(0, 1) },
    } as NodeSnapshot & KubeObject;
    await assert.rejects(
      takeVolumeSnapshot(
        onlyA,
        { freezeTimeoutMs: 2000, maxFreezeMs: 30_000 },
        {
          client,
          freezer: new RecordingFreezer(),
          isActiveOnNode: alwaysActive,
          clock: realClock,
          log: memoryLog(),
          pollMs: 1,
        },
      ),
      /is ready without a snapshot of claim pvc-b/,
    );
    assert.deepEqual(labels.get("pvc-a"), {});
  });
});
