// Block disks in VM manifests: the layout's validation (untrusted input), the schema version rules, and
// completeness with the block disks' data files.
import assert from "node:assert/strict";
import { mkdir, truncate, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { BlockLayout, ManifestBlockDisk, WorkloadManifest } from "../../../src/agent/manifest.js";
import {
  ManifestError,
  backupBlockDiskPath,
  checkBlockLayout,
  checkManifestComplete,
  parseWorkloadManifest,
  readWorkloadManifest,
  workloadManifestPath,
  workloadManifestSchemaVersion,
  writeWorkloadManifest,
} from "../../../src/agent/manifest.js";
import { MiB, makeTempDir } from "./helpers.js";

const SHA = "b".repeat(64);

// 10 MiB + 4 KiB in 1 MiB chunks: holes at [1, 3) MiB and from 8 MiB to the end (the short last chunk): 6 MiB stored.
function layout(overrides: Partial<BlockLayout> = {}): BlockLayout {
  const bytes = 10 * MiB + 4096;
  const holes = [
    { offset: MiB, length: 2 * MiB },
    { offset: 8 * MiB, length: bytes - 8 * MiB },
  ];
  return { bytes, sha256: SHA, chunkBytes: MiB, holes, storedBytes: 6 * MiB, ...overrides };
}

function blockDisk(overrides: Partial<ManifestBlockDisk> = {}): ManifestBlockDisk {
  return {
    name: "rootdisk",
    source: { kind: "DataVolume", claimName: "a-root" },
    volumeMode: "Block",
    ...layout(),
    ...overrides,
  };
}

function manifest(blockDisks?: ManifestBlockDisk[]): WorkloadManifest {
  const files = [{ path: "vms/a/disk.img", bytes: 5, sha256: "a".repeat(64) }];
  return {
    schemaVersion: workloadManifestSchemaVersion(blockDisks),
    backup: { name: "nightly", uid: "uid-1" },
    workload: { namespace: "prod", name: "a", uid: "uid-a" },
    node: "node-1",
    round: 1,
    method: "CSI",
    indication: "GuestAgent",
    consistency: "ApplicationConsistent",
    freeze: { startedAt: "2025-01-01T00:00:00.000Z", endedAt: "2025-01-01T00:00:00.040Z", windowMs: 40 },
    extractAt: "Backup",
    files,
    ...(blockDisks ? { blockDisks } : {}),
    totalBytes: 5 + (blockDisks ?? []).reduce((sum, d) => sum + d.bytes, 0),
    startedAt: "2025-01-01T00:00:00.000Z",
    completedAt: "2025-01-01T00:00:01.000Z",
  };
}

const roundTrip = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

describe("agent/manifest: block disks", function () {
  it("accepts a canonical layout, a device without holes, an all-hole device and an empty one", () => {
    assert.deepEqual(checkBlockLayout(roundTrip(layout())), layout());
    checkBlockLayout(layout({ holes: [], storedBytes: 10 * MiB + 4096 }));
    checkBlockLayout(layout({ holes: [{ offset: 0, length: 10 * MiB + 4096 }], storedBytes: 0 }));
    checkBlockLayout({ bytes: 0, sha256: SHA, chunkBytes: 4096, holes: [], storedBytes: 0 });
    // A chunk size that is not a power of two is fine as long as it is whole pages.
    checkBlockLayout({
      bytes: 3 * 12288,
      sha256: SHA,
      chunkBytes: 12288,
      holes: [{ offset: 12288, length: 12288 }],
      storedBytes: 2 * 12288,
    });
  });

  it("accepts a claim's recorded shape and skipped volumes, and refuses access modes that are not strings", () => {
    const shaped = blockDisk({
      source: { kind: "DataVolume", claimName: "a-root", accessModes: ["ReadWriteOnce"], sizeBytes: 11 * MiB },
    });
    const m = { ...manifest([shaped]), skippedVolumes: [{ volume: "cloudinit", type: "cloudInitNoCloud" }] };
    assert.deepEqual(parseWorkloadManifest(structuredClone(m)), m);
    const bad = structuredClone(m) as unknown as { blockDisks: Array<{ source: { accessModes: unknown[] } }> };
    bad.blockDisks[0]!.source.accessModes = [7];
    assert.throws(() => parseWorkloadManifest(bad), /accessModes must be strings/);
    const noType = { ...structuredClone(m), skippedVolumes: [{ volume: "cloudinit" }] };
    assert.throws(() => parseWorkloadManifest(noType), ManifestError);
  });

  it("rejects hole lists that are not sorted, merged, chunk-aligned and within the device", () => {
    const bytes = 10 * MiB + 4096;
    const bad: [string, Partial<BlockLayout>, RegExp][] = [
      [
        "out of order",
        {
          holes: [
            { offset: 8 * MiB, length: bytes - 8 * MiB },
            { offset: MiB, length: 2 * MiB },
          ],
        },
        /holes\[1\] \(offset 1048576, length 2097152\) overlaps the hole before it or is out of order/,
      ],
      [
        "overlapping",
        {
          holes: [
            { offset: MiB, length: 3 * MiB },
            { offset: 2 * MiB, length: 2 * MiB },
          ],
          storedBytes: bytes - 5 * MiB,
        },
        /holes\[1\].*overlaps/,
      ],
      [
        "touching (not merged)",
        {
          holes: [
            { offset: MiB, length: 2 * MiB },
            { offset: 3 * MiB, length: MiB },
          ],
          storedBytes: bytes - 3 * MiB,
        },
        /holes\[1\].*touches the hole before it \(adjacent holes are merged into one\)/,
      ],
      [
        "past the end",
        { holes: [{ offset: 8 * MiB, length: 3 * MiB }], storedBytes: bytes - 3 * MiB },
        /ends past the end of the device/,
      ],
      [
        "unaligned offset",
        { holes: [{ offset: MiB + 4096, length: MiB }], storedBytes: bytes - MiB },
        /does not start on a chunk boundary/,
      ],
      [
        "unaligned length, not at the end",
        { holes: [{ offset: MiB, length: MiB + 512 }], storedBytes: bytes - MiB - 512 },
        /does not end on a chunk boundary .* nor at the end of the device/,
      ],
      ["empty", { holes: [{ offset: MiB, length: 0 }], storedBytes: bytes }, /holes\[0\].* is empty/],
      ["negative", { holes: [{ offset: -MiB, length: MiB }] }, /holes\[0\]\.offset must be a non-negative integer/],
      ["fractional", { holes: [{ offset: MiB, length: 1.5 }] }, /holes\[0\]\.length must be a non-negative integer/],
      ["not an array", { holes: {} as BlockLayout["holes"] }, /holes must be an array/],
      ["not objects", { holes: [5] as unknown as BlockLayout["holes"] }, /holes\[0\] is not a JSON object/],
      ["stored size", { storedBytes: 6 * MiB + 1 }, /storedBytes \(6291457\) is not the device size less the holes/],
      ["size in sectors", { bytes: bytes + 1 }, /bytes \(10489857\) is not a whole number of 512-byte sectors/],
      ["chunk size", { chunkBytes: 1000 }, /chunkBytes \(1000\) must be a multiple of 4096/],
      ["chunk size", { chunkBytes: 128 * MiB }, /chunkBytes .* from 4096 to 67108864/],
      ["sha256", { sha256: SHA.toUpperCase() }, /sha256 is not a lowercase hex sha256/],
    ];
    for (const [what, overrides, message] of bad) {
      assert.throws(
        () => checkBlockLayout(roundTrip(layout(overrides))),
        (err: unknown) => err instanceof ManifestError && err.code === "Invalid" && message.test(err.message),
        what,
      );
    }
  });

  describe("in a VM manifest", function () {
    let dir: string;
    let cleanup: () => Promise<void>;
    beforeEach(() => ({ dir, cleanup } = makeTempDir("block-manifest")));
    afterEach(() => cleanup());

    it("is version 2 with block disks and version 1 without, both read back", async () => {
      const plain = manifest();
      assert.equal(plain.schemaVersion, 1);
      assert.equal(JSON.stringify(roundTrip(plain)).includes("blockDisks"), false);
      const withDisks = manifest([
        blockDisk(),
        blockDisk({ name: "data", source: { kind: "PersistentVolumeClaim", claimName: "a-data" } }),
      ]);
      assert.equal(withDisks.schemaVersion, 2);
      assert.equal(withDisks.totalBytes, 5 + 2 * (10 * MiB + 4096));
      await writeWorkloadManifest(dir, withDisks);
      assert.deepEqual(await readWorkloadManifest(dir, "prod", "a"), withDisks);
      assert.equal(backupBlockDiskPath("prod", "a", "rootdisk"), "prod/a/devices/rootdisk.data");
      assert.throws(() => backupBlockDiskPath("prod", "a", "../x"), ManifestError);
    });

    it("rejects block disks in version 1, version 2 without them, and bad entries", async () => {
      const bad: [string, unknown, RegExp][] = [
        ["v1 with disks", { ...manifest([blockDisk()]), schemaVersion: 1 }, /blockDisks but has schemaVersion 1/],
        ["v2 without", { ...manifest(), schemaVersion: 2 }, /manifest\.blockDisks must be an array/],
        ["v3", { ...manifest([blockDisk()]), schemaVersion: 3 }, /schemaVersion must be 1 or 2/],
        [
          "total",
          { ...manifest([blockDisk()]), totalBytes: 5 },
          /totalBytes is not the sum of the file, block disk and filesystem disk sizes/,
        ],
        [
          "twice",
          manifest([blockDisk(), blockDisk({ source: { kind: "DataVolume", claimName: "b" } })]),
          /block disk rootdisk twice/,
        ],
        ["same claim", manifest([blockDisk(), blockDisk({ name: "other" })]), /claim a-root for two block disks/],
        ["name", manifest([blockDisk({ name: "a/b" })]), /invalid disk name/],
        [
          "kind",
          manifest([blockDisk({ source: { kind: "HostDisk" as "DataVolume", claimName: "x" } })]),
          /kind must be one of/,
        ],
        ["mode", manifest([blockDisk({ volumeMode: "Filesystem" as "Block" })]), /volumeMode must be one of Block/],
        [
          "holes",
          manifest([blockDisk({ holes: [{ offset: 4096, length: MiB }] })]),
          /manifest\.blockDisks\[0\]\.holes\[0\].*does not start on a chunk boundary/,
        ],
      ];
      for (const [what, value, message] of bad) {
        assert.throws(() => parseWorkloadManifest(roundTrip(value)), message, what);
        await assert.rejects(writeWorkloadManifest(dir, value as WorkloadManifest), message, what);
      }
    });

    it("is complete only when every block disk's data file has its stored size", async () => {
      const disk = blockDisk();
      await writeWorkloadManifest(dir, manifest([disk]));
      const file = join(dir, "prod/a/files/vms/a/disk.img");
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, "abcde");
      const check = () => checkManifestComplete(dir, "prod", "a", { backupUid: "uid-1", round: 1 });
      assert.deepEqual(await check(), { complete: false, reason: "the data of block disk rootdisk is missing" });
      const data = join(dir, backupBlockDiskPath("prod", "a", "rootdisk"));
      await mkdir(dirname(data), { recursive: true });
      await writeFile(data, "");
      await truncate(data, disk.storedBytes - 1);
      assert.deepEqual(await check(), {
        complete: false,
        reason: `the data of block disk rootdisk has ${disk.storedBytes - 1} bytes, the manifest lists ${disk.storedBytes}`,
      });
      await truncate(data, disk.storedBytes);
      assert.equal((await check()).complete, true);
      assert.equal(workloadManifestPath("prod", "a"), "prod/a/manifest.json");
    });
  });
});
