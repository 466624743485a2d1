// The operator's check of an S3 location (BackupLocation.spec.s3): the bucket exists and the key pair may use
// it (HeadBucket), and may write and delete under the location's prefix (a small probe object put, then
// deleted). A failure is classified into a reason a user can act on; the classification is pure and tested
// on the SDK's error shapes. Short timeouts and one attempt per request, so that an unreachable endpoint is
// reported in seconds rather than after the agent's retries.
import { DeleteObjectCommand, HeadBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { randomBytes } from "node:crypto";
import { objectKey, s3ClientFor, type S3Credentials, type S3Location } from "./s3-client.js";

export const UNREACHABLE = "Unreachable";
export const INVALID_CREDENTIALS = "InvalidCredentials";
export const BUCKET_NOT_FOUND = "BucketNotFound";
export const NOT_WRITABLE = "NotWritable";
/** Anything else the store answered: its error name and message are in the message. */
export const VALIDATION_FAILED = "ValidationFailed";

export type ProbeFailureReason =
  | typeof UNREACHABLE
  | typeof INVALID_CREDENTIALS
  | typeof BUCKET_NOT_FOUND
  | typeof NOT_WRITABLE
  | typeof VALIDATION_FAILED;

export type ProbeRequest = "HeadBucket" | "PutObject" | "DeleteObject";

export type ProbeOutcome = { ok: true; message: string } | { ok: false; reason: ProbeFailureReason; message: string };

/** Connection failures: the endpoint cannot be reached at all (refused, no such host, no route, timed out). */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "ECONNABORTED",
]);

/** Errors of the SDK's HTTP handler and of Node's TLS that mean the same. */
const NETWORK_NAMES = new Set(["TimeoutError", "AbortError", "RequestTimeout"]);

const CREDENTIAL_ERRORS = new Set(["InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"]);

/** The directory of the probe objects under the location's prefix. */
export const PROBE_DIRECTORY = ".fedbackup";

/** The key of one probe object: `<prefix>/.fedbackup/probe-<token>`. */
export function probeKey(location: Pick<S3Location, "prefix">, token: string): string {
  return objectKey(location, `${PROBE_DIRECTORY}/probe-${token}`);
}

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  cause?: unknown;
}

/** Why a probe request failed, in words a user can act on. */
export function classifyProbeError(
  err: unknown,
  request: ProbeRequest,
  location: Pick<S3Location, "endpoint" | "bucket" | "prefix">,
): { reason: ProbeFailureReason; message: string } {
  const e = (typeof err === "object" && err !== null ? err : {}) as ErrorShape;
  const name = typeof e.name === "string" ? e.name : "";
  const code = typeof e.code === "string" ? e.code : "";
  const detail = typeof e.message === "string" && e.message && e.message !== "UnknownError" ? e.message : "";
  const status = typeof e.$metadata?.httpStatusCode === "number" ? e.$metadata.httpStatusCode : undefined;
  const what = [name && name !== "Error" ? name : code, status ? `HTTP ${status}` : "", detail]
    .filter((s) => s)
    .join(": ");
  const bucket = `bucket ${location.bucket} at ${location.endpoint}`;

  if (NETWORK_CODES.has(code) || NETWORK_NAMES.has(name) || (status === undefined && isTlsError(code))) {
    const tls = isTlsError(code) ? " (the server's certificate is not trusted: set spec.s3.caBundle)" : "";
    return { reason: UNREACHABLE, message: `cannot reach ${location.endpoint}${tls}: ${what}` };
  }
  if (CREDENTIAL_ERRORS.has(name)) {
    return {
      reason: INVALID_CREDENTIALS,
      message: `the store refused the credentials Secret's key pair for ${bucket} (${what})`,
    };
  }
  if (name === "NoSuchBucket" || (request === "HeadBucket" && (status === 404 || name === "NotFound"))) {
    return { reason: BUCKET_NOT_FOUND, message: `${bucket} does not exist (${what})` };
  }
  const denied = status === 403 || name === "AccessDenied" || name === "Forbidden";
  if (denied && request === "HeadBucket") {
    return {
      reason: INVALID_CREDENTIALS,
      message: `the credentials Secret's key pair may not use ${bucket} (${what}): a wrong key pair, or one without access to the bucket`,
    };
  }
  if (denied) {
    const verb = request === "PutObject" ? "write" : "delete";
    return {
      reason: NOT_WRITABLE,
      message: `the key pair may read ${bucket} but not ${verb} objects under ${probeKey(location, "*")} (${what}); backups need to write and delete there`,
    };
  }
  return { reason: VALIDATION_FAILED, message: `${request} on ${bucket} failed: ${what || String(err)}` };
}

function isTlsError(code: string): boolean {
  return (
    code.startsWith("ERR_TLS") ||
    code.startsWith("CERT_") ||
    code.includes("SELF_SIGNED") ||
    code === "UNABLE_TO_VERIFY_LEAF_SIGNATURE" ||
    code === "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
  );
}

export interface ProbeOptions {
  /** Milliseconds to connect (default 3 s). */
  connectionTimeoutMs?: number;
  /** Milliseconds a request may stay idle (default 5 s). */
  requestTimeoutMs?: number;
  /** The probe object's token (default 8 random bytes, hex). */
  token?: string;
}

/** HeadBucket, then put and delete a probe object under the prefix: the first failure is the outcome. */
export async function probeS3(
  location: S3Location,
  credentials: S3Credentials,
  options: ProbeOptions = {},
): Promise<ProbeOutcome> {
  const client = s3ClientFor(location, credentials, {
    maxAttempts: 1,
    connectionTimeoutMs: options.connectionTimeoutMs ?? 3_000,
    requestTimeoutMs: options.requestTimeoutMs ?? 5_000,
  });
  const key = probeKey(location, options.token ?? randomBytes(8).toString("hex"));
  const steps: Array<[ProbeRequest, () => Promise<unknown>]> = [
    ["HeadBucket", () => client.send(new HeadBucketCommand({ Bucket: location.bucket }))],
    [
      "PutObject",
      () =>
        client.send(
          new PutObjectCommand({
            Bucket: location.bucket,
            Key: key,
            Body: "fedbackup location probe\n",
            ContentType: "text/plain",
          }),
        ),
    ],
    ["DeleteObject", () => client.send(new DeleteObjectCommand({ Bucket: location.bucket, Key: key }))],
  ];
  try {
    for (const [request, send] of steps) {
      try {
        await send();
      } catch (err) {
        return { ok: false, ...classifyProbeError(err, request, location) };
      }
    }
  } finally {
    client.destroy();
  }
  return {
    ok: true,
    message: `bucket ${location.bucket} at ${location.endpoint} exists, and a probe object under ${
      objectKey(location, PROBE_DIRECTORY) || PROBE_DIRECTORY
    }/ was written and deleted`,
  };
}
