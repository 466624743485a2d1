// The BackupLocation decisions (when to validate, what the Secret and its creator's permission say, the
// status) and the FederatedBackup's side: resolving spec.locationRef, waiting while the location is not
// Available, the location its steps record, and the cleanup Job's --location.
import assert from "node:assert/strict";
import type { BackupLocation, FederatedBackup } from "../../../src/api/v1alpha1/index.js";
import {
  claimValidation,
  creatorSecretVerdict,
  credentialsOf,
  locationStatus,
  validationDue,
  validationFrequencyMs,
} from "../../../src/controllers/backuplocation/decide.js";
import { buildCleanupJob, buildNodeSnapshot } from "../../../src/controllers/federatedbackup/builders.js";
import {
  decideBackup,
  LOCATION_RECHECK_MS,
  type BackupWorld,
} from "../../../src/controllers/federatedbackup/decide.js";
import {
  recordedLocation,
  resolveBackupLocation,
  type ResolvedLocation,
} from "../../../src/controllers/federatedbackup/location.js";
import { backupsWaitingForLocation } from "../../../src/controllers/federatedbackup/waiting-for-location.js";
import type { KubeObject } from "../../../src/k8s/types.js";
import type { ObservedWorkload } from "../../../src/planning/index.js";

const NOW = Date.parse("2026-11-30T04:00:00Z");
const b64 = (s: string) => Buffer.from(s).toString("base64");
const S3 = {
  endpoint: "https://s3.example:9000",
  bucket: "backups",
  prefix: "cluster-a",
  forcePathStyle: true,
  credentialsSecretRef: { name: "s3-credentials" },
};

function location(
  spec: Partial<BackupLocation["spec"]> = { s3: S3 },
  status?: BackupLocation["status"],
  generation = 1,
): BackupLocation & KubeObject {
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "BackupLocation",
    metadata: { name: "offsite", namespace: "vms", generation },
    spec,
    ...(status ? { status } : {}),
  };
}

const available = (generation = 1): BackupLocation["status"] => ({
  phase: "Available",
  reason: "Validated",
  message: "ok",
  lastValidationTime: "2026-11-30T03:59:30Z",
  observedGeneration: generation,
});

function backup(spec: Partial<FederatedBackup["spec"]>, phase?: FederatedBackup["status"]): FederatedBackup {
  return {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "FederatedBackup",
    metadata: { name: "nightly", namespace: "vms", uid: "0123456789abcdef", generation: 1 },
    spec: { sharedVolume: { claimName: "vmdisks", nodeMountPath: "/disks" }, ...spec },
    ...(phase ? { status: phase } : {}),
  };
}

describe("BackupLocation validation", () => {
  it("validates a new location, a changed spec, and once validationFrequency has passed", () => {
    assert.deepEqual(validationDue(location(), NOW), { due: true });
    assert.deepEqual(validationDue(location({ s3: S3 }, available(1), 2), NOW), { due: true });
    assert.deepEqual(validationDue(location({ s3: S3 }, available(1)), NOW), { due: false, inMs: 30_000 });
    const everyTenSeconds = location({ s3: S3, validationFrequency: "10s" }, available(1));
    assert.deepEqual(validationDue(everyTenSeconds, NOW), { due: true });
  });

  it("reads validationFrequency as a Go duration, 1m by default, never below 10s", () => {
    assert.equal(validationFrequencyMs(location()), 60_000);
    assert.equal(validationFrequencyMs(location({ s3: S3, validationFrequency: "1h30m" })), 5_400_000);
    assert.equal(validationFrequencyMs(location({ s3: S3, validationFrequency: "1s" })), 10_000);
    assert.equal(validationFrequencyMs(location({ s3: S3, validationFrequency: "soon" })), 60_000);
  });

  it("takes the key pair from the Secret, or says what is wrong with it", () => {
    const full = { AWS_ACCESS_KEY_ID: b64("AKID"), AWS_SECRET_ACCESS_KEY: b64("s3cr3t\n") };
    assert.deepEqual(credentialsOf({ found: true, data: full }, "vms", "s3-credentials"), {
      credentials: { accessKeyId: "AKID", secretAccessKey: "s3cr3t" },
    });
    const missing = credentialsOf({ found: false, forbidden: false }, "vms", "s3-credentials");
    assert.equal("reason" in missing && missing.reason, "SecretNotFound");
    const half = credentialsOf({ found: true, data: { AWS_ACCESS_KEY_ID: b64("AKID") } }, "vms", "s3-credentials");
    assert.equal("reason" in half && half.reason, "SecretIncomplete");
    assert.match("message" in half ? half.message : "", /missing or empty: AWS_SECRET_ACCESS_KEY/);
    const operator = credentialsOf({ found: false, forbidden: true }, "vms", "s3-credentials");
    assert.equal("reason" in operator && operator.reason, "OperatorSecretsNotPermitted");
    assert.match("message" in operator ? operator.message : "", /backupLocations\.s3=true/);
  });

  it("uses the Secret only for a creator who may get it, and never for an unknown creator", () => {
    assert.equal(creatorSecretVerdict("vms", "s3-credentials", { username: "alice", allowed: true }), undefined);
    const refused = creatorSecretVerdict("vms", "s3-credentials", { username: "mallory", allowed: false });
    assert.equal(refused?.reason, "SecretNotPermitted");
    assert.match(
      refused?.message ?? "",
      /mallory, who created this BackupLocation, may not read Secret vms\/s3-credentials/,
    );
    const unknown = creatorSecretVerdict("vms", "s3-credentials", { error: "the annotation is missing" });
    assert.equal(unknown?.reason, "SecretNotPermitted");
    assert.match(unknown?.message ?? "", /cannot be known \(the annotation is missing\)/);
  });

  it("a claim location is Available when the claim exists, ClaimNotFound otherwise", () => {
    assert.equal(claimValidation("vms", "backups", true).available, true);
    assert.equal(claimValidation("vms", "backups", false).reason, "ClaimNotFound");
  });

  it("writes phase, reason, message, the validation time and the Available condition", () => {
    const before = location({ s3: S3 }, available(1));
    before.status!.conditions = [
      {
        type: "Available",
        status: "True",
        reason: "Validated",
        message: "ok",
        lastTransitionTime: "2026-11-29T00:00:00Z",
        observedGeneration: 1,
      },
    ];
    const still = locationStatus(
      before,
      { available: true, reason: "Validated", message: "ok" },
      "2026-11-30T04:00:00Z",
    );
    assert.equal(still.lastValidationTime, "2026-11-30T04:00:00Z");
    assert.equal(still.conditions?.[0]?.lastTransitionTime, "2026-11-29T00:00:00Z", "kept while the status holds");
    const down = locationStatus(
      before,
      { available: false, reason: "Unreachable", message: "cannot reach" },
      "2026-11-30T04:00:00Z",
    );
    assert.equal(down.phase, "Unavailable");
    assert.equal(down.reason, "Unreachable");
    assert.equal(down.observedGeneration, 1);
    assert.deepEqual(
      {
        status: down.conditions?.[0]?.status,
        reason: down.conditions?.[0]?.reason,
        at: down.conditions?.[0]?.lastTransitionTime,
      },
      { status: "False", reason: "Unreachable", at: "2026-11-30T04:00:00Z" },
    );
  });
});

describe("FederatedBackup spec.locationRef", () => {
  const ref = backup({ locationRef: { name: "offsite" } });
  const find = (found?: BackupLocation) => (name: string) => (name === "offsite" ? found : undefined);

  it("resolves an Available S3 location to its bucket and the backup's directory under the prefix", () => {
    const resolution = resolveBackupLocation(ref, find(location({ s3: S3 }, available())));
    assert.deepEqual(resolution, { location: { source: { s3: S3 }, path: "vms/nightly-01234567" } });
  });

  it("resolves a claim location with its pathPrefix, and an inline location as the backup says", () => {
    const claim = location({ persistentVolumeClaim: { claimName: "nfs", pathPrefix: "/vms/" } }, available());
    assert.deepEqual(resolveBackupLocation(ref, find(claim)), {
      location: { source: { persistentVolumeClaim: { claimName: "nfs" } }, path: "vms/vms/nightly-01234567" },
    });
    const inline = backup({ location: { persistentVolumeClaim: { claimName: "backups" } } });
    assert.deepEqual(resolveBackupLocation(inline, find()), {
      location: { source: { persistentVolumeClaim: { claimName: "backups" } }, path: "vms/nightly-01234567" },
    });
  });

  it("waits for a location that is missing, Unavailable, not validated yet or changed since", () => {
    const waiting = (found?: BackupLocation) => {
      const r = resolveBackupLocation(ref, find(found));
      return "waiting" in r ? r.waiting : undefined;
    };
    assert.equal(waiting()?.reason, "LocationNotFound");
    const down = location({ s3: S3 }, { phase: "Unavailable", reason: "InvalidCredentials", message: "refused" });
    assert.deepEqual(waiting(down), {
      reason: "LocationUnavailable",
      message:
        "BackupLocation vms/offsite (spec.locationRef) is Unavailable (InvalidCredentials: refused); the backup starts once it is Available",
    });
    assert.match(waiting(location())?.message ?? "", /has not been validated yet/);
    assert.match(
      waiting(location({ s3: S3 }, available(1), 2))?.message ?? "",
      /has changed since it was last validated/,
    );
  });

  it("a run waiting for its location stays New, plans nothing and looks again later", () => {
    const w: BackupWorld = {
      now: NOW,
      backup: ref,
      steps: [],
      workloads: [vm("a")],
      nodes: [
        {
          name: "n1",
          ready: true,
          schedulable: true,
          controlPlane: false,
          freeCpuMilli: 1000,
          freeMemoryBytes: 1e9,
          recentFailures: 0,
        },
      ],
      lease: { ours: false, free: true },
      locationWaiting: { reason: "LocationUnavailable", message: "BackupLocation vms/offsite is Unavailable" },
    };
    const decision = decideBackup(w, { leaseRenewMs: 5_000, migrationWaitMs: 60_000 });
    assert.deepEqual(decision.actions, []);
    assert.equal(decision.status.phase, "New");
    assert.equal(decision.requeueAfterMs, LOCATION_RECHECK_MS);
    const progressing = decision.status.conditions?.find((c) => c.type === "Progressing");
    assert.deepEqual(
      { reason: progressing?.reason, message: progressing?.message },
      { reason: "LocationUnavailable", message: "BackupLocation vms/offsite is Unavailable" },
    );
  });

  it("records the resolved location in the steps it plans, and reports it in the status", () => {
    const resolved: ResolvedLocation = { source: { s3: S3 }, path: "vms/nightly-01234567" };
    const w: BackupWorld = {
      now: NOW,
      backup: ref,
      steps: [],
      workloads: [vm("a")],
      nodes: [
        {
          name: "n1",
          ready: true,
          schedulable: true,
          controlPlane: false,
          freeCpuMilli: 1000,
          freeMemoryBytes: 1e9,
          recentFailures: 0,
        },
      ],
      lease: { ours: false, free: true },
      location: resolved,
    };
    const decision = decideBackup(w, { leaseRenewMs: 5_000, migrationWaitMs: 60_000 });
    const created = decision.actions.flatMap((a) => (a.kind === "CreateStep" ? [a.step] : []));
    assert.equal(created.length, 1);
    assert.deepEqual(created[0]!.spec.location, { s3: S3, path: "vms/nightly-01234567" });
    assert.deepEqual(recordedLocation(created), resolved);
    assert.equal(decision.status.location, "s3://backups/cluster-a at https://s3.example:9000");
    assert.equal(decision.status.backupPath, "vms/nightly-01234567");
  });

  it("passes an S3 location to the cleanup Job as --location, without any secret value", () => {
    const resolved: ResolvedLocation = { source: { s3: S3 }, path: "vms/nightly-01234567" };
    const job = buildCleanupJob(ref, "n1", { agentImage: "fedbackup:test" }, resolved);
    const args = JSON.stringify(job.spec);
    const container = (job.spec as { template: { spec: { containers: Array<{ args: string[] }> } } }).template.spec
      .containers[0]!;
    assert.ok(container.args.includes(`--location=${JSON.stringify({ s3: S3 })}`), args);
    assert.ok(container.args.includes("--backup-path=vms/nightly-01234567"));
    const claimJob = buildCleanupJob(
      ref,
      "n1",
      { agentImage: "fedbackup:test" },
      {
        source: { persistentVolumeClaim: { claimName: "nfs" } },
        path: "p",
      },
    );
    const claimArgs = (
      claimJob.spec as typeof job.spec & { template: { spec: { containers: Array<{ args: string[] }> } } }
    ).template.spec.containers[0]!.args;
    assert.ok(!claimArgs.some((a) => a.startsWith("--location")), "a claim is mounted, as before");
  });

  it("a backup with spec.locationRef is not built without its resolution", () => {
    assert.throws(() => buildNodeSnapshot(ref, 1, 1, "n1", [vm("a")]), /BackupLocation was not resolved/);
  });

  it("a location's change wakes the new backups of its namespace that reference it", () => {
    const backups = [
      { ...ref, metadata: { ...ref.metadata, name: "waiting" } },
      { ...ref, metadata: { ...ref.metadata, name: "running" }, status: { phase: "InProgress" as const } },
      { ...backup({ locationRef: { name: "other" } }), metadata: { ...ref.metadata, name: "other" } },
      { ...ref, metadata: { ...ref.metadata, name: "elsewhere", namespace: "prod" } },
    ] as Array<FederatedBackup & KubeObject>;
    const keys = backupsWaitingForLocation({ list: (f) => (f ? backups.filter(f) : backups) });
    assert.deepEqual([...keys("update", location())], ["vms/waiting"]);
  });
});

function vm(name: string): ObservedWorkload {
  return {
    namespace: "vms",
    name,
    uid: name,
    phase: "Running",
    node: "n1",
    migrating: false,
    critical: false,
    priority: 0,
    files: [`vms/${name}/disk.img`],
  };
}
