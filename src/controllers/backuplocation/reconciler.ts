// BackupLocation reconciler: when a validation is due (decide.ts), gather what the location needs (its claim;
// or its creator's permission on the credentials Secret, the Secret, then a probe of the store), decide its
// status, and write it. A status is written at every validation, lastValidationTime included.
import { rfc3339 } from "../../api/timestamps.js";
import type { BackupLocation } from "../../api/v1alpha1/index.js";
import { mayUser } from "../../k8s/access-review.js";
import type { KubeClient } from "../../k8s/client.js";
import { isForbidden, isNotFound } from "../../k8s/errors.js";
import type { Informer } from "../../k8s/informer.js";
import { Resources } from "../../k8s/resources.js";
import type { KubeObject } from "../../k8s/types.js";
import type { S3Credentials, S3Location } from "../../storage/s3-client.js";
import type { ProbeOutcome } from "../../storage/s3-probe.js";
import type { Logger } from "../../telemetry/logger.js";
import { ANNOTATION_CREATED_BY, creatorTrust, parseCreator } from "../runtime/creator-access.js";
import { readCreatorPolicies } from "../runtime/creator-check.js";
import { tryGet, writeStatus } from "../runtime/objects.js";
import type { ReconcileResult } from "../runtime/work-queue.js";
import type { EventSink } from "../../k8s/events.js";
import type { SyncReport } from "./sync.js";
import {
  claimValidation,
  creatorSecretVerdict,
  credentialsOf,
  locationStatus,
  validationDue,
  validationFrequencyMs,
  type SecretRead,
  type Validation,
  VALIDATED,
} from "./decide.js";

export interface LocationReconcilerDeps {
  client: KubeClient;
  locations: Informer<BackupLocation & KubeObject>;
  log: Logger;
  clock: { now(): number };
  /** The store probe (storage/s3-probe.ts). */
  probe: (location: S3Location, credentials: S3Credentials) => Promise<ProbeOutcome>;
  /** The backup sync of an Available S3 location (sync.ts); none: no sync. */
  sync?: (location: BackupLocation & KubeObject, credentials: S3Credentials) => Promise<SyncReport>;
  events?: EventSink;
}

export class BackupLocationReconciler {
  constructor(private readonly deps: LocationReconcilerDeps) {}

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const { locations, client, clock } = this.deps;
    const cached = locations.get(key);
    if (!cached || cached.metadata.deletionTimestamp) return;
    const due = validationDue(cached, clock.now());
    if (!due.due) return { requeueAfterMs: due.inMs };
    const location = structuredClone(cached);
    const validation = await this.validate(location);
    const status = locationStatus(location, validation, rfc3339(clock.now()));
    if (location.status?.phase !== status.phase || location.status?.reason !== status.reason) {
      this.deps.log.info("backup location validated", {
        location: key,
        phase: status.phase,
        reason: status.reason,
        message: status.message,
      });
    }
    const written = await writeStatus(client, Resources.BackupLocation, location, status);
    locations.observe(written);
    if (validation.available && validation.credentials) await this.sync(written, validation.credentials);
    return { requeueAfterMs: validationFrequencyMs(location) };
  }

  // The location's backups, both ways (sync.ts), with the credentials the validation read. A failed sync is
  // logged and tried again at the next validation; it does not make the location Unavailable.
  private async sync(location: BackupLocation & KubeObject, credentials: S3Credentials): Promise<void> {
    if (!this.deps.sync) return;
    const key = `${location.metadata.namespace}/${location.metadata.name}`;
    try {
      const report = await this.deps.sync(location, credentials);
      if (report.pushed || report.pulled || report.pruned || report.invalid.length) {
        this.deps.log.info("backup location synced", { location: key, ...report });
      }
      for (const { path, message } of report.invalid) {
        this.deps.events?.record(location, "Warning", "SyncFailed", `${path}: ${message}`);
      }
      if (report.pulled) {
        this.deps.events?.record(location, "Normal", "BackupsSynced", `${report.pulled} backups found at the location`);
      }
    } catch (err) {
      this.deps.log.warn("backup location sync failed", {
        location: key,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  private async validate(location: BackupLocation & KubeObject): Promise<Validation & { credentials?: S3Credentials }> {
    const namespace = location.metadata.namespace!;
    const claim = location.spec.persistentVolumeClaim;
    if (claim) {
      const found = await tryGet(this.deps.client, Resources.PersistentVolumeClaim, namespace, claim.claimName);
      return claimValidation(namespace, claim.claimName, !!found);
    }
    const s3 = location.spec.s3!;
    const secretName = s3.credentialsSecretRef.name;
    // The creator first: the Secret is not even read for a location its creator could not read it through.
    const refused = creatorSecretVerdict(namespace, secretName, await this.creatorOf(location, secretName));
    if (refused) return refused;
    const read = await this.readSecret(namespace, secretName);
    const credentials = credentialsOf(read, namespace, secretName);
    if (!("credentials" in credentials)) return credentials;
    const outcome = await this.deps.probe(s3, credentials.credentials);
    return outcome.ok
      ? { available: true, reason: VALIDATED, message: outcome.message, credentials: credentials.credentials }
      : { available: false, reason: outcome.reason, message: outcome.message };
  }

  /** The recorded creator, and whether they may get the Secret (a SubjectAccessReview), or why not known. */
  private async creatorOf(
    location: BackupLocation & KubeObject,
    secretName: string,
  ): Promise<{ username: string; allowed: boolean } | { error: string }> {
    const { client } = this.deps;
    const creator = parseCreator(location.metadata.annotations?.[ANNOTATION_CREATED_BY]);
    if ("error" in creator) return creator;
    const trust = creatorTrust(location.metadata.creationTimestamp, await readCreatorPolicies(client));
    if (!trust.trusted) return { error: trust.why };
    const allowed = await mayUser(client, creator, {
      namespace: location.metadata.namespace!,
      verb: "get",
      group: "",
      resource: "secrets",
      name: secretName,
    });
    return { username: creator.username, allowed };
  }

  /** A direct GET (the operator may get Secrets, never list or watch them). */
  private async readSecret(namespace: string, name: string): Promise<SecretRead> {
    try {
      const secret = await this.deps.client.get<KubeObject & { data?: Record<string, string> }>(
        Resources.Secret,
        namespace,
        name,
      );
      return { found: true, data: secret.data };
    } catch (err) {
      if (isNotFound(err)) return { found: false, forbidden: false };
      if (isForbidden(err)) return { found: false, forbidden: true };
      throw err;
    }
  }
}
