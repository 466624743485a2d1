// The BackupLocation decisions: when a location is validated again, what its credentials Secret and its
// creator's permission say before anything is sent to the store, and the status a validation's outcome
// makes. Pure; the reconciler reads, probes and writes.
import { parseDuration } from "../../api/duration.js";
import type { BackupLocation, BackupLocationStatus } from "../../api/v1alpha1/index.js";
import { credentialsFromSecretData, ACCESS_KEY_ID_KEY, SECRET_ACCESS_KEY_KEY } from "../../storage/s3-client.js";
import type { S3Credentials } from "../../storage/s3-client.js";
import { mergeConditions } from "../runtime/conditions.js";

export const AVAILABLE = "Available";
export const UNAVAILABLE = "Unavailable";
/** The reason of an Available location. */
export const VALIDATED = "Validated";
export const CLAIM_NOT_FOUND = "ClaimNotFound";
export const SECRET_NOT_FOUND = "SecretNotFound";
export const SECRET_INCOMPLETE = "SecretIncomplete";
/** The user who created the location may not read its credentials Secret (or cannot be known). */
export const SECRET_NOT_PERMITTED = "SecretNotPermitted";
/** The operator itself may not read Secrets (the chart value backupLocations.s3 is off). */
export const OPERATOR_SECRETS_NOT_PERMITTED = "OperatorSecretsNotPermitted";

export const DEFAULT_VALIDATION_FREQUENCY_MS = 60_000;
/** The CRD's minimum; a frequency below it (an older CRD) is raised to it. */
export const MIN_VALIDATION_FREQUENCY_MS = 10_000;

/** The outcome of one validation. */
export interface Validation {
  available: boolean;
  reason: string;
  message: string;
}

export function validationFrequencyMs(location: BackupLocation): number {
  const text = location.spec.validationFrequency;
  if (!text) return DEFAULT_VALIDATION_FREQUENCY_MS;
  try {
    return Math.max(MIN_VALIDATION_FREQUENCY_MS, parseDuration(text));
  } catch {
    return DEFAULT_VALIDATION_FREQUENCY_MS;
  }
}

/**
 * Whether to validate now: never validated, its spec changed since (generation), or validationFrequency has
 * passed since the last validation. Otherwise in how long. The status write of a validation wakes the
 * controller again, and is answered here with a wait, not with another probe.
 */
export function validationDue(location: BackupLocation, now: number): { due: true } | { due: false; inMs: number } {
  const status = location.status;
  const last = status?.lastValidationTime ? Date.parse(status.lastValidationTime) : NaN;
  if (Number.isNaN(last) || status?.observedGeneration !== location.metadata.generation) return { due: true };
  const left = last + validationFrequencyMs(location) - now;
  return left <= 0 ? { due: true } : { due: false, inMs: left };
}

/** What reading the credentials Secret gave (the reconciler maps the API server's answer to this). */
export type SecretRead =
  { found: true; data: Record<string, string> | undefined } | { found: false; forbidden: boolean };

/** The key pair, or why the location is Unavailable without asking the store anything. */
export function credentialsOf(
  read: SecretRead,
  namespace: string,
  secretName: string,
): { credentials: S3Credentials } | Validation {
  const secret = `Secret ${namespace}/${secretName} (spec.s3.credentialsSecretRef)`;
  if (!read.found && read.forbidden) {
    return unavailable(
      OPERATOR_SECRETS_NOT_PERMITTED,
      `the operator may not read ${secret}: install the chart with backupLocations.s3=true (it grants the ` +
        "operator get on Secrets), or grant the operator's ServiceAccount get on that Secret",
    );
  }
  if (!read.found) return unavailable(SECRET_NOT_FOUND, `${secret} does not exist`);
  const credentials = credentialsFromSecretData(read.data);
  if (!credentials) {
    const missing = [ACCESS_KEY_ID_KEY, SECRET_ACCESS_KEY_KEY].filter((k) => !read.data?.[k]);
    return unavailable(
      SECRET_INCOMPLETE,
      `${secret} must hold non-empty ${ACCESS_KEY_ID_KEY} and ${SECRET_ACCESS_KEY_KEY}` +
        (missing.length ? `; missing or empty: ${missing.join(", ")}` : "; a value is blank"),
    );
  }
  return { credentials };
}

/**
 * The creator's permission on the Secret, before the operator reads it: otherwise a user who may create
 * BackupLocations but not read a Secret could have its values sent to an endpoint of their choosing.
 * `creator` is the recorded creator's name, or why it cannot be trusted; `allowed` the SubjectAccessReview's
 * answer (absent when no review was made).
 */
export function creatorSecretVerdict(
  namespace: string,
  secretName: string,
  creator: { username: string; allowed: boolean } | { error: string },
): Validation | undefined {
  const secret = `Secret ${namespace}/${secretName}`;
  if ("error" in creator) {
    return unavailable(
      SECRET_NOT_PERMITTED,
      `the user who created this BackupLocation cannot be known (${creator.error}), so ${secret} is not read: ` +
        "create the BackupLocation again while the admission policies of crds/ are installed",
    );
  }
  if (creator.allowed) return undefined;
  return unavailable(
    SECRET_NOT_PERMITTED,
    `${creator.username}, who created this BackupLocation, may not read ${secret} (get secrets), so the operator ` +
      "does not use it: the BackupLocation must be created by a user who may",
  );
}

export function claimValidation(namespace: string, claimName: string, exists: boolean): Validation {
  return exists
    ? {
        available: true,
        reason: VALIDATED,
        message: `PersistentVolumeClaim ${namespace}/${claimName} exists (a claim is checked by its existence only)`,
      }
    : unavailable(
        CLAIM_NOT_FOUND,
        `PersistentVolumeClaim ${namespace}/${claimName} (spec.persistentVolumeClaim.claimName) does not exist`,
      );
}

/** The status after a validation at `nowIso`. */
export function locationStatus(location: BackupLocation, validation: Validation, nowIso: string): BackupLocationStatus {
  const generation = location.metadata.generation;
  return {
    phase: validation.available ? AVAILABLE : UNAVAILABLE,
    reason: validation.reason,
    message: validation.message,
    lastValidationTime: nowIso,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    conditions: mergeConditions(
      location.status?.conditions,
      [
        {
          type: AVAILABLE,
          status: validation.available ? "True" : "False",
          reason: validation.reason,
          message: validation.message,
        },
      ],
      generation,
      nowIso,
    ),
  };
}

function unavailable(reason: string, message: string): Validation {
  return { available: false, reason, message };
}
