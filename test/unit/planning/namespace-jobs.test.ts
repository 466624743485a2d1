import assert from "node:assert/strict";
import type { ClaimDisk, HostDiskDisk, VmDisk } from "../../../src/planning/disks.js";
import type { StepWorkloadDisks } from "../../../src/planning/namespace-jobs.js";
import { splitByNamespace } from "../../../src/planning/namespace-jobs.js";

const fs = (claimName: string): ClaimDisk => ({
  kind: "claim",
  volumes: [claimName],
  claimName,
  source: "persistentVolumeClaim",
  volumeMode: "Filesystem",
  accessModes: ["ReadWriteMany"],
});
const block = (claimName: string): ClaimDisk => ({ ...fs(claimName), volumeMode: "Block", source: "dataVolume" });
const host = (path: string): HostDiskDisk => ({
  kind: "hostDisk",
  volumes: ["root"],
  path: `/s/${path}`,
  sharedPath: path,
});
const local: HostDiskDisk = { kind: "hostDisk", volumes: ["local"], path: "/var/local/x.img" };

const vm = (key: string, ...disks: VmDisk[]): StepWorkloadDisks => {
  const [namespace, name] = key.split("/") as [string, string];
  return { workload: { namespace, name }, disks };
};

describe("splitByNamespace", () => {
  it("keeps a step without claims in one part of its own namespace, as today", () => {
    const { parts, leftOut } = splitByNamespace("backups", [
      vm("b/one", host("b/one/disk.img")),
      vm("a/two", host("a/two/disk.img")),
    ]);
    assert.deepEqual(parts, [
      {
        namespace: "backups",
        order: 1,
        workloads: [
          { namespace: "a", name: "two" },
          { namespace: "b", name: "one" },
        ],
        mounts: [],
        devices: [],
        sharedVolume: true,
      },
    ]);
    assert.deepEqual(leftOut, []);
  });

  it("gives each namespace with claims its own part, the step's namespace first, the others in code-unit order", () => {
    const { parts } = splitByNamespace("backups", [
      vm("zeta/db", block("db-root"), block("db-data")),
      vm("Alpha/web", fs("web-root")),
      vm("alpha/web", fs("web-root"), block("web-log")),
      vm("alpha/api", fs("shared-data"), fs("api-root")),
      vm("alpha/batch", fs("shared-data")),
      vm("backups/legacy", host("backups/legacy/disk.img")),
    ]);
    assert.deepEqual(
      parts.map((p) => [p.order, p.namespace, p.workloads.map((w) => w.name), p.mounts, p.devices, p.sharedVolume]),
      [
        [1, "backups", ["legacy"], [], [], true],
        [2, "Alpha", ["web"], ["web-root"], [], false],
        [3, "alpha", ["api", "batch", "web"], ["api-root", "shared-data", "web-root"], ["web-log"], false],
        [4, "zeta", ["db"], [], ["db-data", "db-root"], false],
      ],
    );
  });

  it("keeps a VM mixing hostDisks and claims whole, in its own namespace, and says that part needs the shared volume", () => {
    const { parts } = splitByNamespace("backups", [
      vm("tenant/mixed", host("tenant/mixed/disk.img"), block("mixed-data")),
    ]);
    assert.deepEqual(parts, [
      {
        namespace: "tenant",
        order: 1,
        workloads: [{ namespace: "tenant", name: "mixed" }],
        mounts: [],
        devices: ["mixed-data"],
        sharedVolume: true,
      },
    ]);
  });

  it("leaves out VMs with nothing to capture, and takes a VM listed twice once", () => {
    const { parts, leftOut } = splitByNamespace("backups", [
      vm("a/empty"),
      vm("a/elsewhere", local),
      vm("a/web", fs("web-root")),
      vm("a/web", fs("other")),
    ]);
    assert.deepEqual(leftOut, [
      { namespace: "a", name: "elsewhere" },
      { namespace: "a", name: "empty" },
    ]);
    assert.deepEqual(
      parts.map((p) => [p.namespace, p.mounts]),
      [["a", ["web-root"]]],
    );
  });

  it("mounts a claim once with the mode the first VM saw", () => {
    const { parts } = splitByNamespace("backups", [vm("a/y", block("disk")), vm("a/x", fs("disk"))]);
    assert.deepEqual([parts[0]!.mounts, parts[0]!.devices], [["disk"], []]);
  });

  it("gives the same parts whatever the input order", () => {
    const input = [vm("c/1", fs("a")), vm("b/2", block("b")), vm("backups/3", host("x")), vm("a/4", fs("c"))];
    assert.deepEqual(splitByNamespace("backups", input), splitByNamespace("backups", [...input].reverse()));
    assert.deepEqual(splitByNamespace("backups", []), { parts: [], leftOut: [] });
  });
});
