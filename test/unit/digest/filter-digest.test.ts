import assert from "node:assert/strict";
import { buildDigest, filterDigest, type DigestCriteria, type DiskKind } from "../../../src/digest/index.js";
import { backup, hoursAgo, NOW, restore, step, vm, vmi } from "./fixtures.js";

// One fleet for every filter:
//   apps/web   Running on node-a (2 failed steps there), tier=web,  backed up 2h ago, restored 1h ago
//   apps/db    Running on node-b,                        tier=db,   backed up 30h ago (round 2)
//   apps/batch Pending,                                  no tier,   never backed up
//   ops/tools  Running on node-b,                        tier=web, critical, backed up 9d ago
//   ops/gone   Missing,                                  backed up 30h ago, restored 40h ago
const rows = buildDigest(
  {
    vmis: [
      vmi("apps/web", { node: "node-a", labels: { app: "shop", tier: "web" } }),
      vmi("apps/db", { node: "node-b", labels: { app: "shop", tier: "db" } }),
      vmi("apps/batch", { phase: "Pending", labels: { app: "batch" } }),
      vmi("ops/tools", { node: "node-b", labels: { app: "tools", tier: "web", critical: "true" } }),
    ],
    backups: [backup("apps/recent", hoursAgo(2)), backup("apps/daily", hoursAgo(29)), backup("ops/old", hoursAgo(216))],
    steps: [
      step("apps/recent-a", { backup: "recent", node: "node-a", completionTime: hoursAgo(2), captured: ["apps/web"] }),
      step("apps/daily-a", { backup: "daily", node: "node-a", phase: "Failed" }),
      step("apps/recent-b", { backup: "recent", node: "node-a", phase: "Failed" }),
      step("apps/daily-b2", {
        backup: "daily",
        node: "node-b",
        round: 2,
        completionTime: hoursAgo(30),
        captured: ["apps/db"],
      }),
      step("ops/old-b", { backup: "old", node: "node-b", completionTime: hoursAgo(216), captured: ["ops/tools"] }),
      step("ops/old-c", { backup: "old", node: "node-c", completionTime: hoursAgo(30), captured: ["ops/gone"] }),
    ],
    restores: [
      restore("apps/r", { completionTime: hoursAgo(1), results: [{ vm: "apps/web", node: "node-a" }] }),
      restore("ops/r", { completionTime: hoursAgo(40), results: [{ vm: "ops/gone", node: "node-c" }] }),
    ],
  },
  NOW,
);

const at = (h: number) => new Date(NOW - h * 3_600_000);

const cases: Array<{ title: string; criteria: DigestCriteria; want: string[] }> = [
  {
    title: "no criteria: everything",
    criteria: {},
    want: ["apps/batch", "apps/db", "apps/web", "ops/gone", "ops/tools"],
  },
  { title: "namespace", criteria: { namespace: "ops" }, want: ["ops/gone", "ops/tools"] },
  { title: "namespace without VMs", criteria: { namespace: "nothing" }, want: [] },
  { title: "selector a=b", criteria: { selector: "tier=web" }, want: ["apps/web", "ops/tools"] },
  { title: "selector a==b", criteria: { selector: "tier==db" }, want: ["apps/db"] },
  {
    title: "selector c!=d also holds where the label is absent (and for Missing VMs, which have no labels)",
    criteria: { selector: "tier!=web" },
    want: ["apps/batch", "apps/db", "ops/gone"],
  },
  { title: "selector e (exists)", criteria: { selector: "critical" }, want: ["ops/tools"] },
  { title: "selector !f (does not exist)", criteria: { selector: "!tier" }, want: ["apps/batch", "ops/gone"] },
  {
    title: "selector, all terms together",
    criteria: { selector: "app=shop,tier!=db,tier,!critical" },
    want: ["apps/web"],
  },
  { title: "selector in (...)", criteria: { selector: "app in (batch, tools)" }, want: ["apps/batch", "ops/tools"] },
  { title: "selector notin (...)", criteria: { selector: "app notin (shop,tools)" }, want: ["apps/batch", "ops/gone"] },
  {
    title: "empty selector: everything",
    criteria: { selector: "" },
    want: ["apps/batch", "apps/db", "apps/web", "ops/gone", "ops/tools"],
  },
  { title: "node", criteria: { node: "node-b" }, want: ["apps/db", "ops/tools"] },
  { title: "node that runs nothing (Missing VMs have no node)", criteria: { node: "node-c" }, want: [] },
  { title: "phase", criteria: { phase: "Running" }, want: ["apps/db", "apps/web", "ops/tools"] },
  { title: "phase, case-insensitive", criteria: { phase: "missing" }, want: ["ops/gone"] },
  { title: "several phases", criteria: { phase: "Pending, Missing" }, want: ["apps/batch", "ops/gone"] },
  {
    title: "backed up before 1d (never backed up does not count)",
    criteria: { backedUpBefore: at(24) },
    want: ["apps/db", "ops/gone", "ops/tools"],
  },
  { title: "backed up before 7d", criteria: { backedUpBefore: at(168) }, want: ["ops/tools"] },
  { title: "backed up since 1d", criteria: { backedUpSince: at(24) }, want: ["apps/web"] },
  {
    title: "backed up since is inclusive",
    criteria: { backedUpSince: at(30) },
    want: ["apps/db", "apps/web", "ops/gone"],
  },
  {
    title: "backed up between 7d and 1d",
    criteria: { backedUpSince: at(168), backedUpBefore: at(24) },
    want: ["apps/db", "ops/gone"],
  },
  { title: "restored since 2d", criteria: { restoredSince: at(48) }, want: ["apps/web", "ops/gone"] },
  { title: "restored since 2h", criteria: { restoredSince: at(2) }, want: ["apps/web"] },
  { title: "never backed up", criteria: { neverBackedUp: true }, want: ["apps/batch"] },
  {
    title: "neverBackedUp false filters nothing",
    criteria: { neverBackedUp: false },
    want: ["apps/batch", "apps/db", "apps/web", "ops/gone", "ops/tools"],
  },
  { title: "min node failures 1", criteria: { minNodeFailures: 1 }, want: ["apps/web"] },
  { title: "min node failures 3", criteria: { minNodeFailures: 3 }, want: [] },
  {
    title: "min node failures 0: everything",
    criteria: { minNodeFailures: 0 },
    want: ["apps/batch", "apps/db", "apps/web", "ops/gone", "ops/tools"],
  },
  {
    title: "criteria combine: namespace, selector, phase and backed up since",
    criteria: { namespace: "apps", selector: "app=shop", phase: "Running", backedUpSince: at(48) },
    want: ["apps/db", "apps/web"],
  },
];

describe("filterDigest", () => {
  for (const { title, criteria, want } of cases) {
    it(title, () => {
      assert.deepEqual(
        filterDigest(rows, criteria).map((r) => `${r.namespace}/${r.name}`),
        want,
      );
    });
  }

  it("rejects a bad selector", () => {
    assert.throws(() => filterDigest(rows, { selector: "a b" }), /invalid label selector "a b"/);
  });

  it("returns a new array and leaves the rows alone", () => {
    const copy = structuredClone(rows);
    const kept = filterDigest(rows, {});
    assert.notEqual(kept, rows);
    assert.deepEqual(rows, copy);
  });
});

describe("filterDigest by disks", () => {
  // VMs of both layouts: a VM keeps when one of its disks is of one of the kinds asked for.
  const fleet = buildDigest(
    {
      vmis: [
        vmi("apps/files", {
          node: "node-a",
          volumes: [{ name: "root", hostDisk: { path: "/var/lib/vmdisks/a.img" } }],
        }),
        vmi("apps/fs", {
          node: "node-a",
          volumes: [{ name: "root", persistentVolumeClaim: { claimName: "fs-root" } }],
        }),
        vmi("apps/blk", {
          node: "node-b",
          volumes: [{ name: "root", persistentVolumeClaim: { claimName: "blk-root" } }],
        }),
        vmi("apps/dv", { node: "node-b", volumes: [{ name: "root", dataVolume: { name: "dv-root" } }] }),
        vmi("apps/mixed", {
          node: "node-c",
          volumes: [
            { name: "root", hostDisk: { path: "/var/lib/vmdisks/m.img" } },
            { name: "data", persistentVolumeClaim: { claimName: "mixed-data" } },
          ],
        }),
        vmi("apps/none", { node: "node-c" }),
      ],
      claims: [
        { metadata: { namespace: "apps", name: "fs-root" }, spec: { volumeMode: "Filesystem" } },
        { metadata: { namespace: "apps", name: "blk-root" }, spec: { volumeMode: "Block" } },
        { metadata: { namespace: "apps", name: "dv-root" }, spec: { volumeMode: "Block" } },
        { metadata: { namespace: "apps", name: "mixed-data" }, spec: { volumeMode: "Filesystem" } },
      ],
      backups: [],
      steps: [
        step("apps/s", {
          backup: "b",
          node: "node-a",
          completionTime: hoursAgo(1),
          captured: ["apps/gone"],
          workloads: [
            {
              namespace: "apps",
              name: "gone",
              files: [],
              claims: [{ volume: "root", claimName: "gone-root", sourceKind: "DataVolume", volumeMode: "Filesystem" }],
            },
          ],
        }),
      ],
      restores: [],
    },
    NOW,
  );
  const disksCases: Array<[DiskKind[], string[]]> = [
    [["hostDisk"], ["files", "mixed"]],
    [["claim"], ["blk", "dv", "fs", "gone", "mixed"]],
    [["dataVolume"], ["dv", "gone"]],
    [["Filesystem"], ["fs", "gone", "mixed"]],
    [["Block"], ["blk", "dv"]],
    [
      ["hostDisk", "Block"],
      ["blk", "dv", "files", "mixed"],
    ],
    [[], ["blk", "dv", "files", "fs", "gone", "mixed", "none"]],
  ];
  for (const [disks, want] of disksCases) {
    it(`--disks ${disks.join(",") || "(none)"}: ${want.join(", ")}`, () => {
      assert.deepEqual(
        filterDigest(fleet, { disks }).map((r) => r.name),
        want,
      );
    });
  }
});

describe("filterDigest with deleted VMs", () => {
  // apps/web runs on node-a (1 failed step there), tier=web; apps/stopped has its VirtualMachine, no VMI;
  // apps/old-db (captured 30h ago on node-a, restored 1h ago, a claim) and ops/erased (captured 2h ago on
  // node-b, a hostDisk file) exist only in backups; ops/restored-only is known only from a restore.
  const fleet = buildDigest(
    {
      vmis: [vmi("apps/web", { node: "node-a", labels: { tier: "web" } })],
      vms: [vm("apps/web"), vm("apps/stopped")],
      backups: [],
      steps: [
        step("apps/daily", {
          backup: "daily",
          node: "node-a",
          completionTime: hoursAgo(30),
          captured: ["apps/old-db", "apps/stopped"],
          workloads: [
            {
              namespace: "apps",
              name: "old-db",
              claims: [{ volume: "root", claimName: "old-db-root", volumeMode: "Block" }],
            },
          ],
        }),
        step("apps/failed", { backup: "daily", node: "node-a", phase: "Failed" }),
        step("ops/recent", {
          backup: "recent",
          node: "node-b",
          completionTime: hoursAgo(2),
          captured: ["ops/erased", "apps/web"],
          workloads: [{ namespace: "ops", name: "erased", files: ["ops/erased/disk0.img"] }],
        }),
      ],
      restores: [
        restore("apps/r", { completionTime: hoursAgo(1), results: [{ vm: "apps/old-db", node: "node-a" }] }),
        restore("ops/r", { completionTime: hoursAgo(3), results: [{ vm: "ops/restored-only" }] }),
      ],
    },
    NOW,
  );
  const at = (h: number) => new Date(NOW - h * 3_600_000);
  const deleted = ["apps/old-db", "ops/erased", "ops/restored-only"];

  const deletedCases: Array<{ title: string; criteria: DigestCriteria; want: string[] }> = [
    { title: "by default: the cluster's VMs, none deleted", criteria: {}, want: ["apps/stopped", "apps/web"] },
    { title: "deleted false is the default", criteria: { deleted: false }, want: ["apps/stopped", "apps/web"] },
    { title: "deleted: only the deleted VMs", criteria: { deleted: true }, want: deleted },
    {
      title: "deleted, one namespace",
      criteria: { deleted: true, namespace: "ops" },
      want: ["ops/erased", "ops/restored-only"],
    },
    { title: "deleted, phase Deleted: all of them", criteria: { deleted: true, phase: "deleted" }, want: deleted },
    { title: "deleted, phase Running: none", criteria: { deleted: true, phase: "Running" }, want: [] },
    { title: "without deleted, phase Deleted: none", criteria: { phase: "Deleted" }, want: [] },
    {
      title: "deleted, an equality selector: none (no labels)",
      criteria: { deleted: true, selector: "tier=web" },
      want: [],
    },
    { title: "deleted, a does-not-exist selector: all", criteria: { deleted: true, selector: "!tier" }, want: deleted },
    { title: "deleted, a node: none (they run nowhere)", criteria: { deleted: true, node: "node-a" }, want: [] },
    { title: "deleted, min node failures 1: none", criteria: { deleted: true, minNodeFailures: 1 }, want: [] },
    { title: "deleted, min node failures 0: all", criteria: { deleted: true, minNodeFailures: 0 }, want: deleted },
    { title: "deleted, backed up since 1d", criteria: { deleted: true, backedUpSince: at(24) }, want: ["ops/erased"] },
    {
      title: "deleted, backed up before 1d",
      criteria: { deleted: true, backedUpBefore: at(24) },
      want: ["apps/old-db"],
    },
    { title: "deleted, restored since 2h", criteria: { deleted: true, restoredSince: at(2) }, want: ["apps/old-db"] },
    {
      title: "deleted, never backed up",
      criteria: { deleted: true, neverBackedUp: true },
      want: ["ops/restored-only"],
    },
    {
      title: "deleted, disks from the capture: a claim",
      criteria: { deleted: true, disks: ["claim"] },
      want: ["apps/old-db"],
    },
    {
      title: "deleted, disks from the capture: Block",
      criteria: { deleted: true, disks: ["Block"] },
      want: ["apps/old-db"],
    },
    {
      title: "deleted, disks from the capture: a hostDisk file",
      criteria: { deleted: true, disks: ["hostDisk"] },
      want: ["ops/erased"],
    },
  ];
  for (const { title, criteria, want } of deletedCases) {
    it(title, () => {
      assert.deepEqual(
        filterDigest(fleet, criteria).map((r) => `${r.namespace}/${r.name}`),
        want,
      );
    });
  }
});
