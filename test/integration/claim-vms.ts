// The VMs of the claim tests: 3 nodes, 10 VMs: 3 with hostDisks on the shared volume, 3 on Filesystem-mode
// claims (one a ReadWriteMany DataVolume, the others ReadWriteOnce), 3 on Block-mode claims (one with two
// devices; contents random, half zeros, all zeros), 1 mixing a hostDisk and a claim.
import type { VmFixture } from "../harness/workloads.js";

const KiB = 1024;
const MiB = 1024 * KiB;

export function tenVmsOnThreeNodes(): VmFixture[] {
  return [
    { name: "host-1", node: "node-a" },
    { name: "host-2", node: "node-b", disks: [256 * KiB] },
    { name: "host-3", node: "node-c" },
    {
      name: "fs-1",
      node: "node-a",
      claimDisks: [{ source: "persistentVolumeClaim", volumeMode: "Filesystem", size: 3 * MiB + 5 }],
    },
    {
      name: "fs-2",
      node: "node-b",
      claimDisks: [{ source: "dataVolume", volumeMode: "Filesystem", size: 2 * MiB, accessModes: ["ReadWriteMany"] }],
    },
    {
      name: "fs-3",
      node: "node-c",
      claimDisks: [{ source: "persistentVolumeClaim", volumeMode: "Filesystem", size: 1 * MiB }],
    },
    {
      name: "blk-1",
      node: "node-a",
      claimDisks: [{ source: "dataVolume", volumeMode: "Block", size: 4 * MiB, content: "mixed" }],
    },
    {
      name: "blk-2",
      node: "node-b",
      claimDisks: [
        { source: "persistentVolumeClaim", volumeMode: "Block", size: 4 * MiB, content: "mixed" },
        { source: "dataVolume", volumeMode: "Block", size: 2 * MiB, content: "random" },
      ],
    },
    {
      name: "blk-3",
      node: "node-c",
      claimDisks: [{ source: "persistentVolumeClaim", volumeMode: "Block", size: 3 * MiB, content: "zeros" }],
    },
    {
      name: "mixed",
      node: "node-c",
      disks: [128 * KiB],
      claimDisks: [{ source: "persistentVolumeClaim", volumeMode: "Filesystem", size: 512 * KiB }],
    },
  ];
}
