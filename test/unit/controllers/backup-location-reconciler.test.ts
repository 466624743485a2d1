// The BackupLocation reconciler's order of reads: the creator's permission is asked before the credentials
// Secret is read, a refused creator's Secret is never read nor sent to the store, and a location whose
// validation is not due costs no request at all.
import assert from "node:assert/strict";
import type { BackupLocation } from "../../../src/api/v1alpha1/index.js";
import { BackupLocationReconciler } from "../../../src/controllers/backuplocation/reconciler.js";
import { ANNOTATION_CREATED_BY, CREATOR_POLICY_NAME } from "../../../src/controllers/runtime/creator-access.js";
import type { KubeClient } from "../../../src/k8s/client.js";
import { ApiError } from "../../../src/k8s/errors.js";
import type { Informer } from "../../../src/k8s/informer.js";
import type { ResourceType } from "../../../src/k8s/resources.js";
import type { KubeObject } from "../../../src/k8s/types.js";
import type { S3Credentials, S3Location } from "../../../src/storage/s3-client.js";
import { createLogger } from "../../../src/telemetry/logger.js";

type Location = BackupLocation & KubeObject;
const NOW = Date.parse("2026-11-30T04:00:00Z");
const b64 = (s: string) => Buffer.from(s).toString("base64");

const POLICY_KINDS: Record<string, string> = {
  mutatingadmissionpolicies: "MutatingAdmissionPolicy",
  mutatingadmissionpolicybindings: "MutatingAdmissionPolicyBinding",
  validatingadmissionpolicies: "ValidatingAdmissionPolicy",
  validatingadmissionpolicybindings: "ValidatingAdmissionPolicyBinding",
};

/** An API server double: the creator policies installed long ago, one Secret, SubjectAccessReviews answered. */
function apiServer(allowed: boolean) {
  const requests: string[] = [];
  const statuses: unknown[] = [];
  const lookup = (type: ResourceType, namespace: string | undefined, name: string): KubeObject => {
    requests.push(`get ${type.plural} ${namespace ?? ""}/${name}`);
    const kind = POLICY_KINDS[type.plural];
    if (kind && name === CREATOR_POLICY_NAME) {
      return {
        kind,
        metadata: { name, creationTimestamp: "2026-01-01T00:00:00Z" },
        spec: { policyName: CREATOR_POLICY_NAME, validationActions: ["Deny"] },
      } as KubeObject;
    }
    if (type.plural === "secrets" && name === "s3-credentials") {
      return {
        metadata: { name, namespace },
        data: { AWS_ACCESS_KEY_ID: b64("AKID"), AWS_SECRET_ACCESS_KEY: b64("s3cr3t") },
      } as KubeObject;
    }
    throw new ApiError(404, "NotFound", `${type.plural} ${name} not found`);
  };
  const get = (type: ResourceType, namespace: string | undefined, name: string): Promise<KubeObject> =>
    new Promise((resolve) => resolve(lookup(type, namespace, name)));
  const client = {
    get,
    find: (type: ResourceType, namespace: string | undefined, name: string) =>
      get(type, namespace, name).catch((err: unknown) => {
        if (err instanceof ApiError && err.status === 404) return undefined;
        throw err;
      }),
    create: (type: ResourceType, obj: KubeObject & { spec?: { user?: string; resourceAttributes?: object } }) => {
      requests.push(`create ${type.plural} ${obj.spec?.user} ${JSON.stringify(obj.spec?.resourceAttributes)}`);
      return Promise.resolve({ ...obj, status: { allowed } });
    },
    apply: (type: ResourceType, obj: KubeObject & { status?: unknown }) => {
      requests.push(`apply ${type.plural}/status`);
      statuses.push(obj.status);
      return Promise.resolve(obj);
    },
  } as unknown as KubeClient;
  return { client, requests, statuses };
}

function location(status?: BackupLocation["status"]): Location {
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "BackupLocation",
    metadata: {
      name: "offsite",
      namespace: "vms",
      generation: 1,
      creationTimestamp: "2026-11-29T00:00:00Z",
      annotations: { [ANNOTATION_CREATED_BY]: JSON.stringify({ username: "mallory", groups: ["tenants"] }) },
    },
    spec: {
      s3: {
        endpoint: "https://attacker.example",
        bucket: "b",
        credentialsSecretRef: { name: "s3-credentials" },
      },
    },
    ...(status ? { status } : {}),
  };
}

function reconcilerFor(allowed: boolean, cached: Location) {
  const server = apiServer(allowed);
  const probes: Array<{ location: S3Location; credentials: S3Credentials }> = [];
  const locations = {
    get: (key: string) => (key === "vms/offsite" ? cached : undefined),
    observe: () => {},
  } as unknown as Informer<Location>;
  const reconciler = new BackupLocationReconciler({
    client: server.client,
    locations,
    log: createLogger("test", "error"),
    clock: { now: () => NOW },
    probe: (location, credentials) => {
      probes.push({ location, credentials });
      return Promise.resolve({ ok: true, message: "probed" });
    },
  });
  return { reconciler, probes, ...server };
}

describe("BackupLocation reconciler", () => {
  it("asks whether the creator may get the Secret first, and neither reads nor sends it when not", async () => {
    const { reconciler, probes, requests, statuses } = reconcilerFor(false, location());
    const result = await reconciler.reconcile("vms/offsite");
    assert.equal(probes.length, 0, "nothing is sent to the endpoint");
    assert.ok(!requests.some((r) => r.startsWith("get secrets")), requests.join("\n"));
    assert.ok(
      requests.includes(
        `create subjectaccessreviews mallory ${JSON.stringify({ namespace: "vms", verb: "get", group: "", resource: "secrets", name: "s3-credentials" })}`,
      ),
      requests.join("\n"),
    );
    assert.deepEqual(
      statuses.map((s) => (s as BackupLocation["status"])?.reason),
      ["SecretNotPermitted"],
    );
    assert.deepEqual(result, { requeueAfterMs: 60_000 });
  });

  it("probes with the Secret's key pair when the creator may read it, and records Available", async () => {
    const { reconciler, probes, requests, statuses } = reconcilerFor(true, location());
    await reconciler.reconcile("vms/offsite");
    const sar = requests.findIndex((r) => r.startsWith("create subjectaccessreviews"));
    const secret = requests.indexOf("get secrets vms/s3-credentials");
    assert.ok(sar >= 0 && secret > sar, requests.join("\n"));
    assert.deepEqual(probes[0]?.credentials, { accessKeyId: "AKID", secretAccessKey: "s3cr3t" });
    const status = statuses[0] as BackupLocation["status"];
    assert.deepEqual(
      { phase: status?.phase, reason: status?.reason, at: status?.lastValidationTime, gen: status?.observedGeneration },
      { phase: "Available", reason: "Validated", at: "2026-11-30T04:00:00Z", gen: 1 },
    );
  });

  it("does nothing but wait when the last validation is recent and for the current spec", async () => {
    const recent = location({
      phase: "Available",
      reason: "Validated",
      message: "probed",
      lastValidationTime: "2026-11-30T03:59:45Z",
      observedGeneration: 1,
    });
    const { reconciler, probes, requests } = reconcilerFor(true, recent);
    assert.deepEqual(await reconciler.reconcile("vms/offsite"), { requeueAfterMs: 45_000 });
    assert.deepEqual(requests, []);
    assert.equal(probes.length, 0);
  });
});
