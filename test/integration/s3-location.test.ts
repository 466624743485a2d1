// Backups on an S3 location, end to end against the real API server and a real S3 server (SeaweedFS): a
// FederatedBackup that references a BackupLocation writes 8 VMs on 3 nodes to the bucket, the objects are
// there with the sizes and checksums of the sources; then a second, empty cluster given only the same
// BackupLocation finds the backup (sync), lists its VMs in the digest, and restores every VM from the
// bucket, created from its definition, byte for byte.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import type { FederatedBackup } from "../../src/api/v1alpha1/index.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { runDigest } from "../../src/cli/digest.js";
import type { DigestRow } from "../../src/digest/index.js";
import { parseWorkloadManifest } from "../../src/storage/manifest-schema.js";
import { SimulatedVmController } from "../harness/kubevirt-vms.js";
import type { ObjectStore } from "../harness/object-store.js";
import { createVirtualMachine, diskPaths, type VmFixture } from "../harness/workloads.js";
import {
  adminClient,
  backupEnv,
  backupFinished,
  creatorPoliciesSettled,
  grantOperatorSecretReads,
  kubevirtDouble,
  podRunner,
  startOperator,
  waitFor,
  type BackupEnv,
} from "./operator-env.js";
import { describeResults, type Restore } from "./restore-runs.js";
import { BUCKET, backupTo, deleteBackupLocations, objectStoreFor, s3Location } from "./s3-locations.js";
import { startSecondCluster } from "./second-cluster.js";

const PREFIX = "cluster-a";
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

describe("Backups on an S3 location", function () {
  this.timeout(600_000);
  let store: ObjectStore;
  let sim: SimulatedVmController;
  let env: BackupEnv;
  let revokeSecretReads: () => Promise<void>;

  before(async function () {
    this.timeout(120_000);
    store = await objectStoreFor(this, [BUCKET]);
    await kubevirtDouble();
    await podRunner();
    sim = new SimulatedVmController(adminClient());
    await sim.start();
    env = await backupEnv("s3");
    // As the chart's backupLocations.s3 does: the operator reads the location's Secret to validate it.
    revokeSecretReads = await grantOperatorSecretReads(`fedbackup-test-s3-${env.namespace}`);
    await creatorPoliciesSettled();
  });

  after(async () => {
    if (env) await deleteBackupLocations(env.namespace);
    await revokeSecretReads?.();
    await sim?.stop();
    await store?.stop();
    env?.cleanup();
  });

  it("backs up 8 VMs on 3 nodes to the bucket; a second cluster with the same location restores them byte for byte [long]", async () => {
    const ns = env.namespace;
    const nodes = ["node-a", "node-b", "node-c"];
    const vms: VmFixture[] = Array.from({ length: 8 }, (_, i) => ({
      name: `vm-${i}`,
      node: nodes[i % 3]!,
      // Two disks each, one larger than an upload part (8 MiB), so that some files are multipart uploads.
      disks: [i === 0 ? 9 * 1024 * 1024 : 256 * 1024, 64 * 1024],
    }));
    const operator = await startOperator();
    try {
      await s3Location(store, ns, "offsite", PREFIX);
      for (const vm of vms) await createVirtualMachine(adminClient(), ns, env.shared.hostDir, vm);
      const file = (vm: VmFixture, i: number) => path.join(env.shared.hostDir, diskPaths(ns, vm)[i]!);
      const sources = new Map(vms.flatMap((vm) => [0, 1].map((i) => [file(vm, i), readFileSync(file(vm, i))])));

      await adminClient().create(Resources.FederatedBackup, backupTo(env, "nightly", "offsite"));
      const fb = await backupFinished(ns, "nightly", 240_000);
      assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status?.conditions));
      assert.equal(fb.status?.progress?.workloadsCaptured, 8);

      // The bucket: every VM's files and manifest under the backup's path, with their sizes.
      const s3 = store.client();
      const base = `${PREFIX}/${fb.status.backupPath}`;
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${base}/` }));
      const objects = new Map((listed.Contents ?? []).map((o) => [o.Key!.slice(base.length + 1), o.Size!]));
      for (const vm of vms) {
        const key = `${ns}/${vm.name}/manifest.json`;
        assert.ok(objects.has(key), `no manifest for ${vm.name}: ${[...objects.keys()].join(", ")}`);
        const body = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${base}/${key}` }));
        const manifest = parseWorkloadManifest(JSON.parse(await body.Body!.transformToString()));
        assert.equal(manifest.files.length, 2);
        assert.equal(objects.get(`${ns}/${vm.name}/definition.json`), manifest.definition?.bytes, "definition size");
        for (const f of manifest.files) {
          const source = sources.get(path.join(env.shared.hostDir, f.path))!;
          assert.equal(f.sha256, sha256(source), `${vm.name} ${f.path}: the manifest's sha256 is not the source's`);
          assert.equal(objects.get(`${ns}/${vm.name}/files/${f.path}`), source.length, `${f.path}: object size`);
        }
      }
      // Each node's run recorded itself; nothing else is there, and no upload was left incomplete.
      const others = [...objects.keys()].filter(
        (k) => !/^[^/]+\/vm-[0-7]\/(manifest\.json|definition\.json|files\/.+)$/.test(k),
      );
      assert.ok(
        others.every((k) => /^nodes\/node-[abc]-r1\.json$/.test(k)),
        `unexpected objects: ${others.join(", ")}`,
      );
      const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: `${PREFIX}/` }));
      assert.deepEqual(uploads.Uploads ?? [], []);

      // The index of the finished run reaches the location at its next sync (validationFrequency 10s).
      const indexKey = `${PREFIX}/.fedbackup/index/${fb.status.backupPath}.json`;
      await waitFor("the backup's index at the location", 30_000, async () => {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: indexKey }));
        return page.KeyCount ? true : undefined;
      });

      // Disaster recovery: a second cluster, empty, given only the same BackupLocation, finds the backup.
      const second = await startSecondCluster();
      try {
        const shared = await second.namespace(ns);
        await s3Location(store, ns, "offsite", PREFIX, second.client);
        const synced = await waitFor("the backup synced into the second cluster", 60_000, async () => {
          const b = await second.client
            .get<FederatedBackup & KubeObject>(Resources.FederatedBackup, ns, "nightly")
            .catch(() => undefined);
          return b?.status?.phase ? b : undefined;
        });
        assert.equal(synced.status?.phase, "Completed");
        assert.equal(synced.metadata.labels?.["fedbackup.io/synced"], "true");
        assert.deepEqual(synced.spec.locationRef, { name: "offsite" });
        // The digest of the second cluster lists the VMs that exist only in that backup.
        let out = "";
        const code = await runDigest(
          ["--kubeconfig", second.controlPlane.kubeconfigPath, "-n", ns, "--deleted", "-o", "json"],
          (text) => (out += text),
          () => {},
        );
        assert.equal(code, 0);
        const rows = JSON.parse(out) as DigestRow[];
        assert.deepEqual(rows.map((r) => r.name).sort(), vms.map((v) => v.name).sort());

        // Every VM restored from the bucket into the new cluster, created from its definition, byte for byte.
        await second.client.create(Resources.WorkloadRestore, {
          apiVersion: "fedbackup.io/v1alpha1",
          kind: "WorkloadRestore",
          metadata: { name: "disaster-recovery", namespace: ns },
          spec: { backupRef: { name: "nightly" } },
        } as KubeObject);
        const r = await waitFor("the restore in the second cluster", 240_000, async () => {
          const got = await second.client.get<Restore>(Resources.WorkloadRestore, ns, "disaster-recovery");
          return ["Completed", "PartiallyFailed", "Failed"].includes(got.status?.phase ?? "") ? got : undefined;
        });
        assert.equal(r.status?.phase, "Completed", describeResults(r));
        assert.deepEqual(
          r.status?.results?.map((x) => `${x.name} ${x.phase} ${x.definition}`).sort(),
          vms.map((v) => `${v.name} Restored Created`).sort(),
        );
        for (const vm of vms) {
          for (const i of [0, 1]) {
            const restored = readFileSync(path.join(shared.hostDir, diskPaths(ns, vm)[i]!));
            assert.ok(restored.equals(sources.get(file(vm, i))!), `${vm.name} disk ${i} is not its backup`);
          }
          await waitFor(`${vm.name} Running on ${vm.node} in the second cluster`, 60_000, async () => {
            const vmi = await second.client
              .get<KubeObject & { status?: { phase?: string; nodeName?: string } }>(
                Resources.VirtualMachineInstance,
                ns,
                vm.name,
              )
              .catch(() => undefined);
            return vmi?.status?.phase === "Running" && vmi.status.nodeName === vm.node ? true : undefined;
          });
        }
      } finally {
        await second.stop();
      }
    } finally {
      await operator.stop();
    }
  });

  it("completes a backup whose S3 server died mid-upload: no manifest for the VM cut short, no upload left incomplete", async () => {
    const ns = env.namespace;
    const vm: VmFixture = { name: "big", node: "node-b", disks: [48 * 1024 * 1024] };
    const operator = await startOperator();
    try {
      await s3Location(store, ns, "flaky", "interrupted");
      await createVirtualMachine(adminClient(), ns, env.shared.hostDir, vm);
      const source = readFileSync(path.join(env.shared.hostDir, diskPaths(ns, vm)[0]!));
      const s3 = store.client();
      const uploads = async () =>
        (await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: "interrupted/" }))).Uploads ?? [];
      const manifests = async () =>
        ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "interrupted/" }))).Contents ?? []).filter(
          (o) => o.Key!.endsWith(`/${vm.name}/manifest.json`),
        );

      await adminClient().create(Resources.FederatedBackup, backupTo(env, "interrupted", "flaky"));
      // The server dies once the disk's multipart upload is under way, and comes back a moment later.
      await waitFor("the disk's upload to start", 60_000, async () => ((await uploads()).length ? true : undefined));
      await store.kill();
      await new Promise((r) => setTimeout(r, 1_000));
      await store.start();
      assert.deepEqual(await manifests(), [], "a manifest for the VM whose upload was cut short");

      const fb = await backupFinished(ns, "interrupted", 240_000);
      assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status?.conditions));
      const [manifest] = await manifests();
      assert.ok(manifest, "no manifest once the backup completed");
      const body = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: manifest.Key! }));
      const parsed = parseWorkloadManifest(JSON.parse(await body.Body!.transformToString()));
      assert.equal(parsed.files[0]?.sha256, sha256(source));
      assert.deepEqual(await uploads(), [], "an upload left incomplete");
    } finally {
      await operator.stop();
    }
  });
});
