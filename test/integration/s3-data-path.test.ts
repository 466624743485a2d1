// The agent's data path against a real S3 server (SeaweedFS): a VM's files and claim disk backed up to a
// bucket and restored from it byte for byte, a corrupt object refused with the disk untouched, and a
// backup cut short by the server dying mid-upload leaving no manifest and, once rerun, no incomplete upload.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { runNodeBackup, type NodeBackupPlan } from "../../src/agent/backup.js";
import type { ObjectStore as AgentObjectStore } from "../../src/agent/backup-dir.js";
import { cleanupBackup } from "../../src/agent/cleanup.js";
import { RestoreError, restoreWorkload } from "../../src/agent/restore.js";
import { backupIndexKey } from "../../src/storage/backup-index.js";
import { parseWorkloadManifest } from "../../src/storage/manifest-schema.js";
import { startObjectStore, type ObjectStore } from "../harness/object-store.js";
import {
  MiB,
  RecordingFreezer,
  alwaysActive,
  assertSameBytes,
  makeTempDir,
  memoryLog,
  realClock,
  writeRandomFile,
} from "../unit/agent/helpers.js";

const BUCKET = "backups";
const PREFIX = "cluster-a";
const BACKUP_PATH = "team/nightly-0123abcd";

describe("agent data path on an S3 location", function () {
  this.timeout(120_000);
  let store: ObjectStore;
  let root: string;
  let cleanup: () => Promise<void>;

  before(async () => {
    store = await startObjectStore({ buckets: [BUCKET] });
  });
  after(async () => {
    await store?.stop();
  });
  beforeEach(() => ({ dir: root, cleanup } = makeTempDir("s3-data-path")));
  afterEach(() => cleanup());

  const agentStore = (): AgentObjectStore => ({
    client: store.client(),
    location: store.location(BUCKET, PREFIX),
  });

  const plan = (workloads: NodeBackupPlan["workloads"], uid = "uid-1"): NodeBackupPlan => ({
    backup: { namespace: "team", name: "nightly", uid },
    node: "node-a",
    round: 1,
    method: "Copy",
    quiesce: "GuestAgent",
    freezeTimeoutMs: 1000,
    maxFreezeMs: 30_000,
    extractAt: "Backup",
    sharedRoot: join(root, "shared"),
    // Never mounted with an object store: the agent must not need it.
    locationRoot: join(root, "no-location-mounted"),
    claimsRoot: join(root, "claims"),
    backupPath: BACKUP_PATH,
    workloads,
  });
  const deps = (objectStore: AgentObjectStore) => ({
    freezer: new RecordingFreezer(),
    isActiveOnNode: alwaysActive,
    clock: realClock,
    log: memoryLog(),
    signals: [] as NodeJS.Signals[],
    objectStore,
  });

  async function objectsUnder(client: S3Client, prefix: string): Promise<Map<string, number>> {
    const page = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    return new Map((page.Contents ?? []).map((o) => [o.Key!, o.Size ?? -1]));
  }
  async function objectBytes(client: S3Client, key: string): Promise<Buffer> {
    const response = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return Buffer.from(await response.Body!.transformToByteArray());
  }
  const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

  it("backs up files and a claim's disk.img as objects, manifest last, and restores them byte for byte", async () => {
    const shared = join(root, "shared");
    const disk = "vms/a/disk.img";
    const seed = "vms/a/seed.iso";
    // 20 MiB + 1 with an all-zero MiB in the middle: three 8 MiB parts, the hole uploaded as zeros.
    await writeRandomFile(join(shared, disk), 20 * MiB + 1);
    const handle = await open(join(shared, disk), "r+");
    await handle.write(Buffer.alloc(MiB), 0, MiB, 4 * MiB);
    await handle.close();
    await writeRandomFile(join(shared, seed), 4096);
    await mkdir(join(root, "claims", "data-a"), { recursive: true });
    await writeRandomFile(join(root, "claims", "data-a", "disk.img"), 3 * MiB);
    const restoreRequest = () => ({
      locationRoot: join(root, "no-location-mounted"),
      objectStore: agentStore(),
      backupPath: BACKUP_PATH,
      namespace: "team",
      name: "a",
      sharedRoot: shared,
      allowedFiles: [disk, seed],
      allowedClaims: [{ volume: "data", claimName: "data-a", volumeMode: "Filesystem" as const }],
      claimsRoot: join(root, "claims"),
    });
    const pristine = {
      disk: await readFile(join(shared, disk)),
      seed: await readFile(join(shared, seed)),
      claim: await readFile(join(root, "claims", "data-a", "disk.img")),
    };

    const result = await runNodeBackup(
      plan([
        {
          namespace: "team",
          name: "a",
          uid: "uid-a",
          files: [disk, seed],
          claims: [{ volume: "data", claimName: "data-a", volumeMode: "Filesystem", snapshotMethod: "Copy" }],
        },
      ]),
      deps(agentStore()),
    );
    assert.deepEqual(result.failed, []);
    assert.equal(result.captured.length, 1);

    // The bucket holds exactly the VM's files, its manifest and the node manifest, with their sizes.
    const client = store.client();
    const base = `${PREFIX}/${BACKUP_PATH}`;
    const objects = await objectsUnder(client, `${base}/`);
    assert.deepEqual(
      [...objects].sort(),
      [
        [`${base}/nodes/node-a-r1.json`, objects.get(`${base}/nodes/node-a-r1.json`)],
        [`${base}/team/a/claims/data/disk.img`, 3 * MiB],
        [`${base}/team/a/files/${disk}`, 20 * MiB + 1],
        [`${base}/team/a/files/${seed}`, 4096],
        [`${base}/team/a/manifest.json`, objects.get(`${base}/team/a/manifest.json`)],
      ].sort(),
    );
    // The manifest's checksums are the sources' and the objects'.
    const manifest = parseWorkloadManifest(
      JSON.parse((await objectBytes(client, `${base}/team/a/manifest.json`)).toString()),
    );
    assert.deepEqual(
      manifest.files.map((f) => [f.path, f.sha256]),
      [
        [disk, sha256(pristine.disk)],
        [seed, sha256(pristine.seed)],
      ],
    );
    assert.equal(sha256(await objectBytes(client, `${base}/team/a/files/${disk}`)), sha256(pristine.disk));
    assert.equal(manifest.filesystemDisks?.[0]?.sha256, sha256(pristine.claim));
    // Nothing left half-uploaded.
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: `${PREFIX}/` }));
    assert.deepEqual(uploads.Uploads ?? [], []);

    // The disks change; the restore puts back what was backed up.
    await writeFile(join(shared, disk), Buffer.from("changed after the backup"));
    await writeRandomFile(join(root, "claims", "data-a", "disk.img"), 3 * MiB);
    const restored = await restoreWorkload(restoreRequest());
    assert.equal(restored.files, 3);
    assert.deepEqual(await readFile(join(shared, disk)), pristine.disk);
    assert.deepEqual(await readFile(join(shared, seed)), pristine.seed);
    assert.deepEqual(await readFile(join(root, "claims", "data-a", "disk.img")), pristine.claim);

    // An object changed at the location (same size): refused before the disk is touched.
    const key = `${base}/team/a/files/${disk}`;
    const corrupt = Buffer.from(pristine.disk);
    corrupt[7 * MiB] = corrupt[7 * MiB]! ^ 0xff;
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: corrupt }));
    await writeFile(join(shared, disk), Buffer.from("the current disk"));
    const error = await restoreWorkload(restoreRequest()).then(
      () => assert.fail("the restore should have failed"),
      (err: unknown) => err,
    );
    assert.ok(error instanceof RestoreError, String(error));
    assert.equal(error.reason, "ChecksumMismatch");
    assert.equal((await readFile(join(shared, disk))).toString(), "the current disk");
    await assertSameBytes(join(shared, seed), join(shared, seed));
  });

  it("leaves no manifest when the server dies mid-upload; the rerun completes and no incomplete upload is left [long]", async () => {
    const shared = join(root, "shared");
    const disk = "vms/big/disk.img";
    await writeRandomFile(join(shared, disk), 96 * MiB);
    const workloads = [{ namespace: "team", name: "big", uid: "uid-big", files: [disk] }];
    const base = `${PREFIX}/${BACKUP_PATH}-crash`;
    const crashPlan = { ...plan(workloads, "uid-2"), backupPath: `${BACKUP_PATH}-crash` };
    const client = store.client();

    // The server is killed once a multipart upload of the disk is under way.
    const killer = (async () => {
      for (;;) {
        const uploads = await client
          .send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: `${base}/` }))
          .catch(() => undefined);
        if (uploads?.Uploads?.length) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await store.kill();
    })();
    const first = await runNodeBackup(crashPlan, deps(agentStore())).catch((err: unknown) =>
      err instanceof Error ? err : new Error(String(err)),
    );
    await killer;
    if (!(first instanceof Error)) {
      assert.equal(first.captured.length, 0, "a VM captured while its upload was cut short");
      assert.equal(first.failed.length, 1);
    }

    await store.start();
    const after = await objectsUnder(client, `${base}/`);
    assert.equal(after.has(`${base}/team/big/manifest.json`), false, "a manifest for an incomplete VM");
    const left = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: `${base}/` }));
    assert.ok((left.Uploads ?? []).length > 0, "the crash left the upload incomplete, as a real crash would");

    const rerun = await runNodeBackup(crashPlan, deps(agentStore()));
    assert.deepEqual(rerun.failed, []);
    assert.equal(rerun.captured.length, 1);
    const objects = await objectsUnder(client, `${base}/`);
    assert.equal(objects.get(`${base}/team/big/files/${disk}`), 96 * MiB);
    assert.ok(objects.has(`${base}/team/big/manifest.json`));
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: `${base}/` }));
    assert.deepEqual(uploads.Uploads ?? [], [], "incomplete uploads left after the rerun");
    const stored = await objectBytes(client, `${base}/team/big/files/${disk}`);
    assert.equal(sha256(stored), sha256(await readFile(join(shared, disk))));
  });

  it("cleans up a deleted backup: its objects, its index and an upload left incomplete, nothing of another backup", async () => {
    const shared = join(root, "shared");
    const disk = "vms/c/disk.img";
    await writeRandomFile(join(shared, disk), 2 * MiB);
    const path = `${BACKUP_PATH}-clean`;
    const workloads = [{ namespace: "team", name: "c", uid: "uid-c", files: [disk] }];
    await runNodeBackup({ ...plan(workloads, "uid-3"), backupPath: path }, deps(agentStore()));
    const client = store.client();
    const put = (key: string) =>
      client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}/${key}`, Body: "{}" }));
    await put(backupIndexKey(path));
    await put(`${path}-other/kept.json`);
    await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: `${PREFIX}/${path}/team/c/files/x` }));

    await cleanupBackup({
      locationRoot: join(root, "none"),
      sharedRoot: shared,
      backupPath: path,
      objectStore: agentStore(),
    });
    assert.deepEqual([...(await objectsUnder(client, `${PREFIX}/${path}/`)).keys()], []);
    assert.equal((await objectsUnder(client, `${PREFIX}/${backupIndexKey(path)}`)).size, 0, "the index is left");
    assert.equal((await objectsUnder(client, `${PREFIX}/${path}-other/`)).size, 1, "another backup's object went");
    const uploads = await client.send(
      new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: `${PREFIX}/${path}/` }),
    );
    assert.deepEqual(uploads.Uploads ?? [], []);
  });
});
