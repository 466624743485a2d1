// BackupLocation against a real S3 server (SeaweedFS, test/harness/object-store.ts) and the real API server:
// the operator validates each location and says which problem it has (wrong credentials, a missing bucket,
// an unreachable endpoint), refuses to use a Secret its creator may not read, and a FederatedBackup that
// references an Unavailable location stays New, creates no step, and starts once the location is Available.
import assert from "node:assert/strict";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import type { BackupLocation, FederatedBackup, NodeSnapshot } from "../../src/api/v1alpha1/index.js";
import { LABEL_BACKUP } from "../../src/api/labels.js";
import { KubeClient } from "../../src/k8s/client.js";
import { Resources, type ResourceType } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import type { S3Location } from "../../src/storage/s3-client.js";
import type { ObjectStore } from "../harness/object-store.js";
import { freePort } from "../harness/ports.js";
import { createVm } from "../harness/workloads.js";
import {
  adminClient,
  backupEnv,
  backupManifest,
  creatorPoliciesSettled,
  grantOperatorSecretReads,
  startOperator,
  type RunningOperator,
  waitFor,
  type BackupEnv,
} from "./operator-env.js";
import { deleteBackupLocations, objectStoreFor } from "./s3-locations.js";
import { cluster } from "./setup.js";

type Location = BackupLocation & KubeObject;
type Backup = FederatedBackup & KubeObject;
const BUCKET = "backups";
const b64 = (s: string) => Buffer.from(s).toString("base64");
const rbac = (plural: string, kind: string): ResourceType => ({
  group: "rbac.authorization.k8s.io",
  version: "v1",
  plural,
  kind,
  namespaced: true,
});

describe("BackupLocation", function () {
  this.timeout(120_000);
  let store: ObjectStore;
  let env: BackupEnv;
  let revokeSecretReads: () => Promise<void>;
  let operator: RunningOperator | undefined;

  before(async function () {
    this.timeout(120_000);
    store = await objectStoreFor(this, [BUCKET]);
    env = await backupEnv("locations");
    // As the chart's backupLocations.s3 does.
    revokeSecretReads = await grantOperatorSecretReads(`fedbackup-test-locations-${env.namespace}`);
    await creatorPoliciesSettled();
    operator = await startOperator();
  });

  after(async () => {
    if (env) await deleteBackupLocations(env.namespace);
    // Stopped here, not at the end of the whole run: a second operator would act on every later test's runs.
    await operator?.stop();
    await revokeSecretReads?.();
    await store?.stop();
    env?.cleanup();
  });

  async function secret(name: string, accessKeyId: string, secretAccessKey: string): Promise<void> {
    await adminClient().apply(Resources.Secret, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name, namespace: env.namespace },
      type: "Opaque",
      data: { AWS_ACCESS_KEY_ID: b64(accessKeyId), AWS_SECRET_ACCESS_KEY: b64(secretAccessKey) },
    } as KubeObject);
  }

  function manifest(name: string, s3: S3Location): Location {
    return {
      apiVersion: "fedbackup.io/v1alpha1",
      kind: "BackupLocation",
      metadata: { name, namespace: env.namespace },
      spec: { s3, validationFrequency: "10s" },
    };
  }

  /** The location once its validation for the current spec has a reason. */
  function validated(name: string, client: KubeClient = adminClient()): Promise<Location> {
    return waitFor(`BackupLocation ${name} to be validated`, 20_000, async () => {
      const l = await client.get<Location>(Resources.BackupLocation, env.namespace, name);
      return l.status?.reason && l.status.observedGeneration === l.metadata.generation ? l : undefined;
    });
  }

  const s3 = (secretName: string, over: Partial<S3Location> = {}): S3Location => ({
    ...store.location(BUCKET, "cluster-a"),
    credentialsSecretRef: { name: secretName },
    ...over,
  });

  it("says which problem a location has: none, wrong credentials, a missing bucket, an unreachable endpoint", async () => {
    const client = adminClient();
    await secret("good", store.accessKeyId, store.secretAccessKey);
    await secret("wrong", store.accessKeyId, "not-the-secret");
    const closedPort = await freePort();
    const cases: Array<[name: string, location: S3Location, phase: string, reason: string]> = [
      ["offsite", s3("good"), "Available", "Validated"],
      ["wrong-key", s3("wrong"), "Unavailable", "InvalidCredentials"],
      ["no-bucket", s3("good", { bucket: "no-such-bucket" }), "Unavailable", "BucketNotFound"],
      ["closed", s3("good", { endpoint: `http://127.0.0.1:${closedPort}` }), "Unavailable", "Unreachable"],
      ["no-secret", s3("absent"), "Unavailable", "SecretNotFound"],
    ];
    const started = Date.now();
    for (const [name, location] of cases) await client.create(Resources.BackupLocation, manifest(name, location));
    for (const [name, , phase, reason] of cases) {
      const l = await validated(name);
      assert.deepEqual({ name, phase: l.status?.phase, reason: l.status?.reason }, { name, phase, reason });
      const available = l.status?.conditions?.find((c) => c.type === "Available");
      assert.equal(available?.status, phase === "Available" ? "True" : "False");
      assert.ok(l.status?.lastValidationTime, "the validation time is recorded");
    }
    // Every one answered within seconds, the closed port included (no retries, short timeouts).
    assert.ok(Date.now() - started < 15_000, `validated in ${Date.now() - started} ms`);
    const wrong = await validated("wrong-key");
    assert.match(wrong.status?.message ?? "", /SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied|HTTP 403/);
    // The probe object was deleted again: nothing is left under the prefix.
    const listed = await store.client().send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "cluster-a/" }));
    assert.equal(listed.KeyCount ?? 0, 0, JSON.stringify(listed.Contents));
  });

  it("a backup of an Unavailable location waits, creates no step, and starts once the location is Available", async () => {
    const client = adminClient();
    await secret("later", store.accessKeyId, "not-yet");
    await client.create(Resources.BackupLocation, manifest("later", s3("later")));
    assert.equal((await validated("later")).status?.reason, "InvalidCredentials");
    await createVm(client, env.namespace, env.shared.hostDir, { name: "web", node: "node-a" });
    const spec = backupManifest(env, "waits").spec;
    delete spec.location;
    await client.create(Resources.FederatedBackup, {
      ...backupManifest(env, "waits"),
      spec: { ...spec, locationRef: { name: "later" }, snapshot: { method: "Copy" } },
    });
    const waiting = await waitFor("the backup to wait for its location", 15_000, async () => {
      const fb = await client.get<Backup>(Resources.FederatedBackup, env.namespace, "waits");
      const progressing = fb.status?.conditions?.find((c) => c.type === "Progressing");
      return progressing?.reason === "LocationUnavailable" ? { fb, progressing } : undefined;
    });
    assert.equal(waiting.fb.status?.phase, "New");
    assert.match(
      waiting.progressing.message,
      /BackupLocation .*\/later \(spec\.locationRef\) is Unavailable \(InvalidCredentials/,
    );
    const steps = () =>
      client.list<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, {
        namespace: env.namespace,
        labelSelector: `${LABEL_BACKUP}=waits`,
      });
    assert.equal((await steps()).items.length, 0, "no step against an Unavailable location");

    // The Secret fixed; a change of the location's spec has it validated at once.
    await secret("later", store.accessKeyId, store.secretAccessKey);
    await client.patch(Resources.BackupLocation, env.namespace, "later", { spec: { validationFrequency: "11s" } });
    assert.equal((await validated("later")).status?.phase, "Available");
    const planned = await waitFor("the backup to plan its steps", 15_000, async () => {
      const items = (await steps()).items.filter((s) => !!s.spec.node);
      return items.length > 0 ? items : undefined;
    });
    // The step records the location it resolved: the bucket and the Secret's name, no key.
    assert.deepEqual(planned[0]!.spec.location.s3, s3("later"));
    const fb = await waitFor("the backup's status to follow its steps", 10_000, async () => {
      const current = await client.get<Backup>(Resources.FederatedBackup, env.namespace, "waits");
      return current.status?.phase !== "New" ? current : undefined;
    });
    assert.equal(fb.status?.location, `s3://${BUCKET}/cluster-a at ${store.endpoint}`);
  });

  it("does not use a Secret its creator may not read (SecretNotPermitted); spec.s3 cannot be changed", async () => {
    const admin = adminClient();
    const ns = env.namespace;
    await admin.create(Resources.ServiceAccount, {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "tenant", namespace: ns },
    });
    await admin.apply(rbac("roles", "Role"), {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "locations-only", namespace: ns },
      rules: [{ apiGroups: ["fedbackup.io"], resources: ["backuplocations"], verbs: ["get", "create", "patch"] }],
    } as KubeObject);
    await admin.apply(Resources.RoleBinding, {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "tenant-locations", namespace: ns },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "locations-only" },
      subjects: [{ kind: "ServiceAccount", name: "tenant", namespace: ns }],
    } as KubeObject);
    const tenant = new KubeClient(await cluster().serviceAccountKubeConfig(ns, "tenant"));
    try {
      // The tenant points the admin's Secret at an endpoint of its own (here: the store, to show it is not asked).
      await tenant.create(Resources.BackupLocation, manifest("exfiltrate", s3("good")));
      const refused = await validated("exfiltrate", tenant);
      assert.equal(refused.status?.phase, "Unavailable");
      assert.equal(refused.status?.reason, "SecretNotPermitted");
      assert.match(refused.status?.message ?? "", new RegExp(`system:serviceaccount:${ns}:tenant, who created`));
      // Nor can an existing location be pointed elsewhere.
      await assert.rejects(
        tenant.patch(Resources.BackupLocation, ns, "offsite", { spec: { s3: { endpoint: "http://203.0.113.1" } } }),
        /spec\.s3 is immutable/,
      );
    } finally {
      tenant.close();
    }
  });
});
