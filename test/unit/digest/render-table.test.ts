import assert from "node:assert/strict";
import { formatAge, renderDeletedTable, renderTable, type DigestRow } from "../../../src/digest/index.js";
import { hoursAgo, NOW } from "./fixtures.js";

describe("formatAge", () => {
  const cases: Array<{ at: string; want: string }> = [
    { at: new Date(NOW - 5_000).toISOString(), want: "5s ago" },
    { at: new Date(NOW - 59_999).toISOString(), want: "59s ago" },
    { at: new Date(NOW - 60_000).toISOString(), want: "1m ago" },
    { at: hoursAgo(0.5), want: "30m ago" },
    { at: hoursAgo(2), want: "2h ago" },
    { at: hoursAgo(23.9), want: "23h ago" },
    { at: hoursAgo(24), want: "1d ago" },
    { at: hoursAgo(24 * 400), want: "400d ago" },
    { at: new Date(NOW + 60_000).toISOString(), want: "0s ago" },
    { at: "not a time", want: "?" },
  ];
  for (const { at, want } of cases) it(`${at} → ${want}`, () => assert.equal(formatAge(at, NOW), want));
});

describe("renderTable", () => {
  const rows: DigestRow[] = [
    {
      namespace: "apps",
      name: "web",
      node: "node-a",
      nodeReady: true,
      phase: "Running",
      migrating: true,
      disks: [
        { volume: "root", type: "hostDisk" },
        { volume: "data", type: "dataVolume", claim: "web-data", volumeMode: "Block" },
        { volume: "logs", type: "dataVolume", claim: "web-logs", volumeMode: "Block" },
      ],
      lastBackup: { backup: "apps/nightly", at: hoursAgo(2), node: "node-a", round: 1 },
      lastRestore: { restore: "apps/r1", at: hoursAgo(72), node: "node-a" },
      backups: 3,
      nodeFailures: 2,
      labels: {},
    },
    {
      namespace: "apps",
      name: "db",
      node: "node-b",
      nodeReady: false,
      phase: "Running",
      migrating: false,
      disks: [{ volume: "disk0", type: "persistentVolumeClaim", claim: "db-0", volumeMode: "Filesystem" }],
      lastBackup: { backup: "ops/all", at: hoursAgo(0.25), node: "node-b", round: 2 },
      backups: 1,
      nodeFailures: 0,
      labels: {},
    },
    {
      namespace: "ops",
      name: "gone",
      phase: "Missing",
      migrating: false,
      disks: [],
      backups: 0,
      nodeFailures: 0,
      labels: {},
    },
  ];

  it("lays out the columns kubectl-style", () => {
    assert.equal(
      renderTable(rows, NOW),
      [
        "NAMESPACE   NAME   NODE                PHASE                 DISKS                             LAST BACKUP   BACKUP    LAST RESTORE   FAILURES",
        "apps        web    node-a              Running (Migrating)   hostDisk, 2× dataVolume (Block)   2h ago        nightly   3d ago         2",
        "apps        db     node-b (NotReady)   Running               claim (Filesystem)                15m ago       ops/all   -              0",
        "ops         gone   -                   Missing               -                                 never         -         -              0",
        "",
      ].join("\n"),
    );
  });

  it("prints the header alone for no rows", () => {
    assert.equal(
      renderTable([], NOW),
      "NAMESPACE   NAME   NODE   PHASE   DISKS   LAST BACKUP   BACKUP   LAST RESTORE   FAILURES\n",
    );
  });
});

describe("renderDeletedTable", () => {
  const deleted = (name: string, fields: Partial<DigestRow>): DigestRow => ({
    namespace: "apps",
    name,
    phase: "Deleted",
    migrating: false,
    disks: [],
    backups: 1,
    nodeFailures: 0,
    labels: {},
    ...fields,
  });
  const rows: DigestRow[] = [
    deleted("db", {
      disks: [{ volume: "root", type: "persistentVolumeClaim", claim: "db-root", volumeMode: "Block" }],
      lastBackup: { backup: "apps/nightly", at: hoursAgo(2), node: "node-a", round: 1, definition: true },
      lastRestore: { restore: "apps/r1", at: hoursAgo(72), node: "node-a" },
    }),
    deleted("old", {
      disks: [{ type: "file", file: "apps/old/disk0.img" }],
      lastBackup: { backup: "ops/weekly", at: hoursAgo(200), node: "node-b", round: 2, definition: false },
    }),
    // A capture recorded before captures said whether they carry the definition: it carries none.
    deleted("legacy", { lastBackup: { backup: "apps/nightly", at: hoursAgo(30), node: "", round: 1 } }),
    deleted("restored-only", { backups: 0, lastRestore: { restore: "apps/r1", at: hoursAgo(72), node: "" } }),
  ];

  it("shows the last capture: when, which backup, on which node, whether it carries the definition", () => {
    assert.equal(
      renderDeletedTable(rows, NOW),
      [
        "NAMESPACE   NAME            DISKS           LAST BACKUP   BACKUP       CAPTURED ON   DEFINITION   LAST RESTORE",
        "apps        db              claim (Block)   2h ago        nightly      node-a        yes          3d ago",
        "apps        old             file            8d ago        ops/weekly   node-b        no           -",
        "apps        legacy          -               1d ago        nightly      -             no           -",
        "apps        restored-only   -               never         -            -             -            3d ago",
        "",
      ].join("\n"),
    );
  });

  it("prints the header alone for no rows", () => {
    assert.equal(
      renderDeletedTable([], NOW),
      "NAMESPACE   NAME   DISKS   LAST BACKUP   BACKUP   CAPTURED ON   DEFINITION   LAST RESTORE\n",
    );
  });
});
