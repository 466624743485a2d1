import assert from "node:assert/strict";
import { buildDigest, type DigestInput, type DigestRow, type DigestVolume } from "../../../src/digest/index.js";
import { backup, hoursAgo, node, NOW, restore, step, vm, vmi } from "./fixtures.js";

// A failed step that was asked to capture apps/gone (spec.workloads) and captured nothing.
const expectedOnly = {
  ...step("apps/s", { backup: "b", node: "n", phase: "Failed" }),
  spec: { backupName: "b", node: "n", round: 1, workloads: [{ namespace: "apps", name: "gone", files: [] }] },
};

const empty: DigestInput = { vmis: [], backups: [], steps: [], restores: [] };

interface Case {
  title: string;
  input: Partial<DigestInput>;
  /** For each "namespace/name": the fields that row must have (others are not checked) ... */
  want: Record<string, Partial<DigestRow>>;
  /** ... and the fields it must not have. */
  absent?: Record<string, Array<keyof DigestRow>>;
  /** The keys of all rows, in order, when the case is about which rows there are. */
  keys?: string[];
}

const cases: Case[] = [
  {
    title: "a running VM never backed up",
    input: { vmis: [vmi("apps/web", { node: "node-a" })] },
    want: {
      "apps/web": {
        node: "node-a",
        phase: "Running",
        migrating: false,
        backups: 0,
        nodeFailures: 0,
        labels: { app: "demo" },
      },
    },
    absent: { "apps/web": ["lastBackup", "lastRestore", "nodeReady"] },
  },
  {
    title: "a VM that is not running has no node",
    input: {
      vmis: [{ metadata: { namespace: "apps", name: "off" }, status: { phase: "Succeeded", nodeName: "node-a" } }],
    },
    want: { "apps/off": { phase: "Succeeded", nodeFailures: 0 } },
    absent: { "apps/off": ["node"] },
  },
  {
    title: "a VMI without a status is Unknown",
    input: { vmis: [{ metadata: { namespace: "apps", name: "new" } }] },
    want: { "apps/new": { phase: "Unknown", migrating: false, labels: {} } },
  },
  {
    title: "the latest backup wins, and every backup holding a capture counts",
    input: {
      vmis: [vmi("apps/web", { node: "node-a" })],
      backups: [backup("apps/nightly-2", hoursAgo(2)), backup("apps/nightly-1", hoursAgo(26))],
      steps: [
        step("apps/nightly-2-r1-node-a", {
          backup: "nightly-2",
          node: "node-a",
          completionTime: hoursAgo(3),
          captured: ["apps/web"],
        }),
        step("apps/nightly-1-r1-node-a", {
          backup: "nightly-1",
          node: "node-a",
          completionTime: hoursAgo(27),
          captured: ["apps/web"],
        }),
      ],
    },
    want: {
      "apps/web": { backups: 2, lastBackup: { backup: "apps/nightly-2", at: hoursAgo(3), node: "node-a", round: 1 } },
    },
  },
  {
    title: "latest is decided by time, not by name or list order",
    input: {
      vmis: [vmi("apps/web", { node: "node-a" })],
      steps: [
        step("apps/z-old", { backup: "z-old", node: "node-a", completionTime: hoursAgo(50), captured: ["apps/web"] }),
        step("apps/a-new", { backup: "a-new", node: "node-b", completionTime: hoursAgo(1), captured: ["apps/web"] }),
        step("apps/m-mid", { backup: "m-mid", node: "node-c", completionTime: hoursAgo(10), captured: ["apps/web"] }),
      ],
    },
    want: {
      "apps/web": { backups: 3, lastBackup: { backup: "apps/a-new", at: hoursAgo(1), node: "node-b", round: 1 } },
    },
  },
  {
    title: "a VM that migrated and was captured in round 2 on another node",
    input: {
      vmis: [vmi("apps/db", { node: "node-b" })],
      backups: [backup("apps/nightly", hoursAgo(1))],
      steps: [
        step("apps/nightly-r1-node-a", {
          backup: "nightly",
          node: "node-a",
          completionTime: hoursAgo(2),
          captured: [],
        }),
        step("apps/nightly-r2-node-b", {
          backup: "nightly",
          node: "node-b",
          round: 2,
          completionTime: hoursAgo(1.5),
          captured: ["apps/db"],
        }),
      ],
    },
    want: {
      "apps/db": { backups: 1, lastBackup: { backup: "apps/nightly", at: hoursAgo(1.5), node: "node-b", round: 2 } },
    },
  },
  {
    title: "one backup capturing a VM twice counts once; the later round wins a tie",
    input: {
      vmis: [vmi("apps/db", { node: "node-b" })],
      steps: [
        step("apps/b-r1", { backup: "b", node: "node-a", completionTime: hoursAgo(2), captured: ["apps/db"] }),
        step("apps/b-r2", {
          backup: "b",
          node: "node-b",
          round: 2,
          completionTime: hoursAgo(2),
          captured: ["apps/db"],
        }),
      ],
    },
    want: { "apps/db": { backups: 1, lastBackup: { backup: "apps/b", at: hoursAgo(2), node: "node-b", round: 2 } } },
  },
  {
    title: "without a step completionTime the backup's completionTime is the time of the capture",
    input: {
      vmis: [vmi("apps/web", { node: "node-a" })],
      backups: [backup("apps/nightly", hoursAgo(4))],
      steps: [step("apps/s", { backup: "nightly", node: "node-a", startTime: hoursAgo(5), captured: ["apps/web"] })],
    },
    want: { "apps/web": { lastBackup: { backup: "apps/nightly", at: hoursAgo(4), node: "node-a", round: 1 } } },
  },
  {
    title: "without any completionTime: the step's startTime, then its creationTimestamp",
    input: {
      vmis: [vmi("apps/a", { node: "n" }), vmi("apps/b", { node: "n" })],
      steps: [
        step("apps/s1", {
          backup: "x",
          node: "n",
          startTime: hoursAgo(5),
          creationTimestamp: hoursAgo(6),
          captured: ["apps/a"],
        }),
        step("apps/s2", { backup: "y", node: "n", creationTimestamp: hoursAgo(7), captured: ["apps/b"] }),
      ],
    },
    want: {
      "apps/a": { lastBackup: { backup: "apps/x", at: hoursAgo(5), node: "n", round: 1 } },
      "apps/b": { lastBackup: { backup: "apps/y", at: hoursAgo(7), node: "n", round: 1 } },
    },
  },
  {
    title: "a step that names its backup only in the fedbackup.io/backup label",
    input: {
      vmis: [vmi("apps/web", { node: "node-a" })],
      steps: [
        step("apps/s", {
          backup: "weekly",
          node: "node-a",
          completionTime: hoursAgo(1),
          captured: ["apps/web"],
          labelOnly: true,
        }),
      ],
    },
    want: {
      "apps/web": { backups: 1, lastBackup: { backup: "apps/weekly", at: hoursAgo(1), node: "node-a", round: 1 } },
    },
  },
  {
    title: "a backup in another namespace capturing the VM",
    input: {
      vmis: [vmi("apps/web", { node: "node-a" })],
      steps: [
        step("ops/s", { backup: "all-vms", node: "node-a", completionTime: hoursAgo(1), captured: ["apps/web"] }),
      ],
    },
    want: {
      "apps/web": { backups: 1, lastBackup: { backup: "ops/all-vms", at: hoursAgo(1), node: "node-a", round: 1 } },
    },
  },
  {
    title: "a deleted VM that was backed up is Missing",
    input: {
      vmis: [vmi("apps/web", { node: "node-a" })],
      backups: [backup("apps/nightly", hoursAgo(1))],
      steps: [
        step("apps/s", {
          backup: "nightly",
          node: "node-c",
          completionTime: hoursAgo(1),
          captured: ["apps/web", "apps/gone"],
        }),
      ],
    },
    want: {
      "apps/gone": {
        phase: "Missing",
        migrating: false,
        labels: {},
        backups: 1,
        nodeFailures: 0,
        lastBackup: { backup: "apps/nightly", at: hoursAgo(1), node: "node-c", round: 1 },
      },
    },
    absent: { "apps/gone": ["node", "nodeReady", "lastRestore"] },
    keys: ["apps/gone", "apps/web"],
  },
  {
    title: "a VM that was expected but never captured and no longer exists is not listed",
    input: {
      steps: [expectedOnly],
    },
    want: {},
    keys: [],
  },
  {
    title: "restores: only Restored results count, and the latest wins",
    input: {
      vmis: [vmi("apps/web", { node: "node-a" }), vmi("apps/db", { node: "node-b" })],
      restores: [
        restore("apps/r1", {
          completionTime: hoursAgo(30),
          results: [
            { vm: "apps/web", node: "node-a" },
            { vm: "apps/db", node: "node-b" },
          ],
        }),
        restore("apps/r2", {
          completionTime: hoursAgo(3),
          results: [
            { vm: "apps/web", node: "node-c" },
            { vm: "apps/db", phase: "Failed" },
          ],
        }),
        restore("apps/r3", { startTime: hoursAgo(1), results: [{ vm: "apps/db", phase: "Running" }] }),
      ],
    },
    want: {
      "apps/web": { lastRestore: { restore: "apps/r2", at: hoursAgo(3), node: "node-c" } },
      "apps/db": { lastRestore: { restore: "apps/r1", at: hoursAgo(30), node: "node-b" } },
    },
  },
  {
    title: "a restore still running stamps its Restored results with its startTime; no node is an empty node",
    input: {
      vmis: [vmi("apps/web", { node: "node-a" })],
      restores: [restore("apps/r", { startTime: hoursAgo(1), results: [{ vm: "apps/web" }] })],
    },
    want: { "apps/web": { lastRestore: { restore: "apps/r", at: hoursAgo(1), node: "" } } },
  },
  {
    title: "a VM known only from a restore is Missing",
    input: { restores: [restore("apps/r", { completionTime: hoursAgo(1), results: [{ vm: "apps/old", node: "n" }] })] },
    want: {
      "apps/old": { phase: "Missing", backups: 0, lastRestore: { restore: "apps/r", at: hoursAgo(1), node: "n" } },
    },
    absent: { "apps/old": ["lastBackup"] },
  },
  {
    title: "node failures: failed steps of any backup on the VM's current node",
    input: {
      vmis: [vmi("apps/a", { node: "node-a" }), vmi("apps/b", { node: "node-b" }), vmi("apps/c", { phase: "Pending" })],
      steps: [
        step("apps/s1", { backup: "b1", node: "node-a", phase: "Failed" }),
        step("ops/s2", { backup: "b2", node: "node-a", phase: "Failed" }),
        step("apps/s3", { backup: "b1", node: "node-a", phase: "Succeeded" }),
        step("apps/s4", { backup: "b1", node: "node-b", phase: "Running" }),
        step("apps/s5", { backup: "b1", phase: "Failed" }),
      ],
    },
    want: { "apps/a": { nodeFailures: 2 }, "apps/b": { nodeFailures: 0 }, "apps/c": { nodeFailures: 0 } },
  },
  {
    title: "a migration in progress",
    input: {
      vmis: [
        vmi("apps/moving", { node: "node-a", migratingTo: "node-b" }),
        {
          ...vmi("apps/moved", { node: "node-b" }),
          status: { phase: "Running", nodeName: "node-b", migrationState: { targetNode: "node-b", completed: true } },
        },
        {
          ...vmi("apps/failed", { node: "node-a" }),
          status: { phase: "Running", nodeName: "node-a", migrationState: { targetNode: "node-b", failed: true } },
        },
      ],
    },
    want: {
      "apps/moving": { node: "node-a", migrating: true },
      "apps/moved": { node: "node-b", migrating: false },
      "apps/failed": { node: "node-a", migrating: false },
    },
  },
  {
    title: "with nodes given, whether the VM's node is Ready (a node that is gone is not)",
    input: {
      vmis: [vmi("apps/a", { node: "node-a" }), vmi("apps/b", { node: "node-b" }), vmi("apps/c", { node: "node-x" })],
      nodes: [node("node-a"), node("node-b", false)],
    },
    want: { "apps/a": { nodeReady: true }, "apps/b": { nodeReady: false }, "apps/c": { nodeReady: false } },
  },
  {
    title: "a VM's data disks from its spec, in spec order, with the volume modes its claims give",
    input: {
      vmis: [
        vmi("apps/mixed", {
          node: "node-a",
          volumes: [
            { name: "root", hostDisk: { path: "/var/lib/vmdisks/apps/mixed/root.img", type: "Disk" } },
            { name: "cloudinit", cloudInitNoCloud: { userData: "#cloud-config" } } as DigestVolume,
            { name: "data", persistentVolumeClaim: { claimName: "mixed-data" } },
            { name: "scratch", containerDisk: { image: "busybox" } } as DigestVolume,
            { name: "imported", dataVolume: { name: "mixed-dv" } },
          ],
        }),
        vmi("apps/plain", {
          node: "node-a",
          volumes: [{ name: "boot", containerDisk: { image: "fedora" } } as DigestVolume],
        }),
      ],
      claims: [
        { metadata: { namespace: "apps", name: "mixed-data" }, spec: { volumeMode: "Block" } },
        // Kubernetes defaults volumeMode to Filesystem; a claim without one is read as such.
        { metadata: { namespace: "apps", name: "mixed-dv" }, spec: {} },
        { metadata: { namespace: "other", name: "mixed-data" }, spec: { volumeMode: "Filesystem" } },
      ],
    },
    want: {
      "apps/mixed": {
        disks: [
          { volume: "root", type: "hostDisk" },
          { volume: "data", type: "persistentVolumeClaim", claim: "mixed-data", volumeMode: "Block" },
          { volume: "imported", type: "dataVolume", claim: "mixed-dv", volumeMode: "Filesystem" },
        ],
      },
      "apps/plain": { disks: [] },
    },
  },
  {
    title: "without the claims, a claim's volume mode is the one its last capture recorded, else left out",
    input: {
      vmis: [
        vmi("apps/db", {
          node: "node-a",
          volumes: [
            { name: "data", persistentVolumeClaim: { claimName: "db-data" } },
            { name: "new", dataVolume: { name: "db-new" } },
          ],
        }),
      ],
      steps: [
        step("apps/s", {
          backup: "b",
          node: "node-a",
          completionTime: hoursAgo(1),
          captured: ["apps/db"],
          workloads: [
            {
              namespace: "apps",
              name: "db",
              files: [],
              claims: [
                { volume: "data", claimName: "db-data", sourceKind: "PersistentVolumeClaim", volumeMode: "Block" },
              ],
            },
          ],
        }),
      ],
    },
    want: {
      "apps/db": {
        disks: [
          { volume: "data", type: "persistentVolumeClaim", claim: "db-data", volumeMode: "Block" },
          { volume: "new", type: "dataVolume", claim: "db-new" },
        ],
      },
    },
  },
  {
    title: "a claim the claims do not list (deleted since) has the volume mode of the last capture",
    input: {
      vmis: [vmi("apps/db", { node: "node-a", volumes: [{ name: "data", dataVolume: { name: "db-data" } }] })],
      claims: [{ metadata: { namespace: "apps", name: "other" }, spec: { volumeMode: "Filesystem" } }],
      steps: [
        step("apps/s", {
          backup: "b",
          node: "node-a",
          completionTime: hoursAgo(1),
          captured: ["apps/db"],
          workloads: [
            {
              namespace: "apps",
              name: "db",
              files: [],
              claims: [{ volume: "data", claimName: "db-data", sourceKind: "DataVolume", volumeMode: "Block" }],
            },
          ],
        }),
      ],
    },
    want: { "apps/db": { disks: [{ volume: "data", type: "dataVolume", claim: "db-data", volumeMode: "Block" }] } },
  },
  {
    title: "a Missing VM's disks are those of its latest capture: its files on the shared volume and its claims",
    input: {
      steps: [
        step("apps/old", {
          backup: "old",
          node: "node-a",
          completionTime: hoursAgo(30),
          captured: ["apps/gone", "apps/bare"],
          workloads: [{ namespace: "apps", name: "gone", files: ["apps/gone/disk0.img"] }],
        }),
        step("apps/new", {
          backup: "new",
          node: "node-b",
          completionTime: hoursAgo(2),
          captured: ["apps/gone"],
          workloads: [
            { namespace: "apps", name: "other", files: ["apps/other/disk0.img"] },
            {
              namespace: "apps",
              name: "gone",
              files: ["apps/gone/disk0.img"],
              claims: [
                { volume: "data", claimName: "gone-data", sourceKind: "DataVolume", volumeMode: "Block" },
                { volume: "logs", claimName: "gone-logs", volumeMode: "Filesystem" },
              ],
            },
          ],
        }),
      ],
    },
    want: {
      "apps/gone": {
        phase: "Missing",
        disks: [
          { type: "file", file: "apps/gone/disk0.img" },
          { volume: "data", type: "dataVolume", claim: "gone-data", volumeMode: "Block" },
          { volume: "logs", type: "persistentVolumeClaim", claim: "gone-logs", volumeMode: "Filesystem" },
        ],
      },
      // Its capturing step does not list it in spec.workloads: nothing is known of its disks.
      "apps/bare": { phase: "Missing", disks: [] },
    },
  },
  {
    title: "sorted by namespace, then name, by code units; a VMI listed twice is one row",
    input: {
      vmis: [vmi("b/x"), vmi("a/b"), vmi("a/B"), vmi("a/a"), vmi("a/a"), vmi("B/z")],
      steps: [step("a/s", { backup: "k", node: "n", completionTime: hoursAgo(1), captured: ["a/zz-gone", "0/first"] })],
    },
    want: {},
    keys: ["0/first", "B/z", "a/B", "a/a", "a/b", "a/zz-gone", "b/x"],
  },
  {
    title: "with the VirtualMachines: a captured VM with neither a VirtualMachine nor a VMI is Deleted",
    input: {
      vmis: [vmi("apps/web", { node: "node-a" })],
      // web runs; stopped has its VirtualMachine but no VMI; erased and restored-only have neither.
      vms: [vm("apps/web"), vm("apps/stopped")],
      backups: [backup("apps/nightly", hoursAgo(2))],
      steps: [
        step("apps/nightly-a", {
          backup: "nightly",
          node: "node-a",
          completionTime: hoursAgo(3),
          captured: ["apps/web", "apps/stopped", "apps/erased"],
          workloads: [{ namespace: "apps", name: "erased", files: ["apps/erased/disk0.img"] }],
        }),
      ],
      restores: [restore("apps/r", { completionTime: hoursAgo(1), results: [{ vm: "apps/restored-only" }] })],
    },
    want: {
      "apps/web": { phase: "Running", node: "node-a" },
      "apps/stopped": { phase: "Missing" },
      "apps/erased": {
        phase: "Deleted",
        migrating: false,
        labels: {},
        backups: 1,
        nodeFailures: 0,
        disks: [{ type: "file", file: "apps/erased/disk0.img" }],
        lastBackup: { backup: "apps/nightly", at: hoursAgo(3), node: "node-a", round: 1 },
      },
      // Known only from a restore: it no longer exists either, and has no capture to restore from.
      "apps/restored-only": { phase: "Deleted", backups: 0 },
    },
    absent: { "apps/erased": ["node", "nodeReady", "lastRestore"], "apps/restored-only": ["lastBackup"] },
  },
  {
    title: "a VM deleted and created again under the same name is not Deleted, with or without a VMI",
    input: {
      vmis: [vmi("apps/again", { node: "node-b" })],
      vms: [vm("apps/again"), vm("apps/again-stopped")],
      steps: [
        step("apps/s", {
          backup: "b",
          node: "node-a",
          completionTime: hoursAgo(30),
          captured: ["apps/again", "apps/again-stopped"],
        }),
      ],
    },
    want: { "apps/again": { phase: "Running", node: "node-b" }, "apps/again-stopped": { phase: "Missing" } },
  },
  {
    title: "the same VM name in another namespace does not keep a deleted VM alive",
    input: {
      vms: [vm("other/db")],
      steps: [step("apps/s", { backup: "b", node: "n", completionTime: hoursAgo(1), captured: ["apps/db"] })],
    },
    want: { "apps/db": { phase: "Deleted" } },
  },
  {
    title: "without the VirtualMachines (not readable) a VM without a VMI stays Missing",
    input: {
      steps: [step("apps/s", { backup: "b", node: "n", completionTime: hoursAgo(1), captured: ["apps/gone"] })],
    },
    want: { "apps/gone": { phase: "Missing" } },
  },
  {
    title: "an empty list of VirtualMachines: every VM without a VMI is Deleted",
    input: {
      vms: [],
      steps: [step("apps/s", { backup: "b", node: "n", completionTime: hoursAgo(1), captured: ["apps/gone"] })],
    },
    want: { "apps/gone": { phase: "Deleted" } },
  },
  {
    title: "whether the last capture carries the VM's definition, as its captured[] entry says (booleans only)",
    input: {
      vms: [],
      steps: [
        step("apps/s", {
          backup: "b",
          node: "node-a",
          completionTime: hoursAgo(1),
          captured: ["apps/with", "apps/without", "apps/unsaid", "apps/garbage"],
          definitions: { "apps/with": true, "apps/without": false, "apps/garbage": "true" },
        }),
      ],
    },
    want: {
      "apps/with": { lastBackup: { backup: "apps/b", at: hoursAgo(1), node: "node-a", round: 1, definition: true } },
      "apps/without": {
        lastBackup: { backup: "apps/b", at: hoursAgo(1), node: "node-a", round: 1, definition: false },
      },
      "apps/unsaid": { lastBackup: { backup: "apps/b", at: hoursAgo(1), node: "node-a", round: 1 } },
      "apps/garbage": { lastBackup: { backup: "apps/b", at: hoursAgo(1), node: "node-a", round: 1 } },
    },
  },
  {
    title: "the definition is the latest capture's, not any earlier one's",
    input: {
      vms: [],
      steps: [
        step("apps/old", {
          backup: "old",
          node: "node-a",
          completionTime: hoursAgo(48),
          captured: ["apps/db", "apps/web"],
          definitions: { "apps/db": true },
        }),
        step("apps/new", {
          backup: "new",
          node: "node-b",
          completionTime: hoursAgo(2),
          captured: ["apps/db", "apps/web"],
          definitions: { "apps/db": false, "apps/web": true },
        }),
      ],
    },
    want: {
      "apps/db": { lastBackup: { backup: "apps/new", at: hoursAgo(2), node: "node-b", round: 1, definition: false } },
      "apps/web": { lastBackup: { backup: "apps/new", at: hoursAgo(2), node: "node-b", round: 1, definition: true } },
    },
  },
];

describe("buildDigest", () => {
  for (const c of cases) {
    it(c.title, () => {
      const rows = buildDigest({ ...empty, ...c.input }, NOW);
      const byKey = new Map(rows.map((r) => [`${r.namespace}/${r.name}`, r]));
      if (c.keys) assert.deepEqual([...byKey.keys()], c.keys);
      for (const [key, want] of Object.entries(c.want)) {
        const row = byKey.get(key);
        assert.ok(row, `no row for ${key}`);
        const got = Object.fromEntries(Object.keys(want).map((f) => [f, row[f as keyof DigestRow]]));
        assert.deepEqual(got, want, key);
      }
      for (const [key, fields] of Object.entries(c.absent ?? {})) {
        for (const f of fields) assert.ok(!(f in byKey.get(key)!), `${key}: ${f} should be absent`);
      }
    });
  }

  it("writes the fields of a row in a fixed order, without undefined values", () => {
    const [row] = buildDigest(
      {
        ...empty,
        vmis: [vmi("apps/web", { node: "node-a" })],
        nodes: [node("node-a")],
        steps: [step("apps/s", { backup: "b", node: "node-a", completionTime: hoursAgo(1), captured: ["apps/web"] })],
        restores: [restore("apps/r", { completionTime: hoursAgo(1), results: [{ vm: "apps/web", node: "node-a" }] })],
      },
      NOW,
    );
    assert.deepEqual(Object.keys(row!), [
      "namespace",
      "name",
      "node",
      "nodeReady",
      "phase",
      "migrating",
      "disks",
      "lastBackup",
      "lastRestore",
      "backups",
      "nodeFailures",
      "labels",
    ]);
    assert.ok(Object.values(row!).every((v) => v !== undefined));
  });

  it("hands out copies: rows sharing a step or restore do not share objects", () => {
    const rows = buildDigest(
      {
        ...empty,
        steps: [
          step("apps/s", { backup: "b", node: "n", completionTime: hoursAgo(1), captured: ["apps/a", "apps/b"] }),
        ],
        restores: [restore("apps/r", { completionTime: hoursAgo(1), results: [{ vm: "apps/a" }, { vm: "apps/b" }] })],
      },
      NOW,
    );
    assert.notEqual(rows[0]!.lastBackup, rows[1]!.lastBackup);
    assert.notEqual(rows[0]!.lastRestore, rows[1]!.lastRestore);
    rows[0]!.lastBackup!.node = "changed";
    assert.equal(rows[1]!.lastBackup!.node, "n");
  });

  it("stamps a capture with no time at all with now", () => {
    const bare = { metadata: { namespace: "apps", name: "s" }, spec: { backupName: "b", node: "n", round: 1 } };
    const rows = buildDigest(
      { ...empty, steps: [{ ...bare, status: { captured: [{ namespace: "apps", name: "a" }] } }] },
      NOW,
    );
    assert.equal(rows[0]!.lastBackup!.at, new Date(NOW).toISOString());
  });

  it("leaves its input untouched", () => {
    const input: DigestInput = {
      ...empty,
      vmis: [vmi("apps/web", { node: "node-a", labels: { app: "web" } })],
      steps: [step("apps/s", { backup: "b", node: "node-a", completionTime: hoursAgo(1), captured: ["apps/web"] })],
    };
    const before = structuredClone(input);
    const [row] = buildDigest(input, NOW);
    row!.labels.app = "changed";
    assert.deepEqual(input, before);
  });
});
