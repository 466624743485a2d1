// The S3 client fedbackup uses for an object-store location, built the same way by the operator (to probe a
// BackupLocation and to read its backups) and by the agent (to write and read a VM's files).
//
// The AWS SDK v3 is the client: the one S3-compatible stores test against, signing for any endpoint with
// path-style addressing, with the multipart calls the agent's bounded part loop uses
// (s3-location-dir.ts). Retries are the SDK's standard mode: a request (a part) that fails is retried a few
// times; a store that stays down fails it.
import { S3Client } from "@aws-sdk/client-s3";
import { Agent as HttpsAgent } from "node:https";
import { NodeHttpHandler } from "@smithy/node-http-handler";

/** An S3 location as BackupLocation.spec.s3 and the node steps' spec.location.s3 spell it. */
export interface S3Location {
  /** http(s)://host[:port] of the S3 API. */
  endpoint: string;
  bucket: string;
  /** Key prefix under which every backup of this location lives (no leading or trailing '/'). */
  prefix?: string;
  region?: string;
  /** Path-style requests (endpoint/bucket/key): what most self-hosted stores need. */
  forcePathStyle?: boolean;
  /** Secret in the same namespace with the keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. */
  credentialsSecretRef: { name: string };
  /** PEM certificates to trust for an https endpoint, in addition to the system's. */
  caBundle?: string;
}

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** The keys of the credentials Secret (the AWS environment names, so `--from-env-file` fills it). */
export const ACCESS_KEY_ID_KEY = "AWS_ACCESS_KEY_ID";
export const SECRET_ACCESS_KEY_KEY = "AWS_SECRET_ACCESS_KEY";

/** The region when a location names none; S3-compatible stores accept it. */
export const DEFAULT_REGION = "us-east-1";

/** Reads the key pair from a Secret's data (base64 values); undefined when a key is missing or empty. */
export function credentialsFromSecretData(data: Record<string, string> | undefined): S3Credentials | undefined {
  const decode = (key: string) => (data?.[key] ? Buffer.from(data[key], "base64").toString("utf8").trim() : "");
  const accessKeyId = decode(ACCESS_KEY_ID_KEY);
  const secretAccessKey = decode(SECRET_ACCESS_KEY_KEY);
  return accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined;
}

export interface S3ClientOptions {
  /** Attempts per request, the first included (the SDK's standard retry mode). */
  maxAttempts?: number;
  /** Milliseconds to wait for a connection before a request fails (an unreachable endpoint). */
  connectionTimeoutMs?: number;
  /** Milliseconds a request may stay idle before it fails. */
  requestTimeoutMs?: number;
}

export function s3ClientFor(location: S3Location, credentials: S3Credentials, opts: S3ClientOptions = {}): S3Client {
  const httpsAgent = location.caBundle ? new HttpsAgent({ ca: location.caBundle, keepAlive: true }) : undefined;
  return new S3Client({
    endpoint: location.endpoint,
    region: location.region || DEFAULT_REGION,
    forcePathStyle: location.forcePathStyle ?? false,
    credentials,
    maxAttempts: opts.maxAttempts ?? 3,
    // Checksums only when an operation requires them: S3-compatible stores differ in the newer ones, and the
    // agent verifies every file with its own sha256.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: new NodeHttpHandler({
      connectionTimeout: opts.connectionTimeoutMs ?? 5_000,
      requestTimeout: opts.requestTimeoutMs ?? 120_000,
      // A request idle that long fails (and is retried) instead of only being warned about: an upload to a
      // store that died mid-request must not hang the step until its Job's deadline.
      throwOnRequestTimeout: true,
      ...(httpsAgent ? { httpsAgent } : {}),
    }),
  });
}

/** The key of `path` (relative to the location) under the location's prefix. */
export function objectKey(location: Pick<S3Location, "prefix">, path: string): string {
  const prefix = (location.prefix ?? "").replace(/^\/+|\/+$/g, "");
  return prefix ? `${prefix}/${path}` : path;
}
