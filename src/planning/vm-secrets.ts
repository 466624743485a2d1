// The Secrets a VM references, as a backup stores them when its FederatedBackup asks for it
// (spec.includeSecrets): name, namespace, labels, the user's annotations, type and data, nothing the server
// sets. Without includeSecrets a backup only names them (vm-definition.ts references).
//
// The file is plain JSON at the backup location (mode 0600, see agent/definition-file.ts): it is read back
// as untrusted input by parseSecretsFile. No I/O here.
import { isDnsLabel, isDnsSubdomain, userAnnotations } from "./vm-definition.js";

export const SECRETS_SCHEMA_VERSION = 1;

export interface StoredSecret {
  metadata: { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  type: string;
  /** As the API returns it: each value base64. */
  data: Record<string, string>;
}

export interface SecretsFile {
  schemaVersion: typeof SECRETS_SCHEMA_VERSION;
  secrets: StoredSecret[];
}

/** A Secret as the API server returns it (only what is stored is read). */
export interface SecretObject {
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  type?: string;
  data?: Record<string, string>;
}

export const SECRETS_LIMITS = {
  maxSecrets: 256,
  /** The API server's own limit on a Secret is 1 MiB; the file holds at most maxSecrets of them. */
  maxBytes: 256 * 1024 * 1024,
  maxSecretBytes: 1024 * 1024 + 64 * 1024,
} as const;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
// Secret data keys: alphanumerics, '-', '_' and '.' (the API server's rule).
const DATA_KEY = /^[-._a-zA-Z0-9]+$/;

/** A Secret as stored: without status-like and server-set metadata, without server-set annotations. */
export function storedSecretOf(secret: SecretObject): StoredSecret {
  const name = secret.metadata?.name;
  const namespace = secret.metadata?.namespace;
  if (!isDnsSubdomain(name) || !isDnsLabel(namespace)) throw new Error("the Secret has no valid name or namespace");
  const labels = secret.metadata?.labels;
  const annotations = userAnnotations(secret.metadata?.annotations);
  return {
    metadata: {
      name,
      namespace,
      ...(labels && Object.keys(labels).length > 0 ? { labels: { ...labels } } : {}),
      ...(annotations ? { annotations } : {}),
    },
    type: secret.type ?? "Opaque",
    data: { ...(secret.data ?? {}) },
  };
}

/** The secrets file's content for these Secrets, sorted by name. */
export function secretsFileOf(secrets: readonly SecretObject[]): SecretsFile {
  return {
    schemaVersion: SECRETS_SCHEMA_VERSION,
    secrets: secrets
      .map(storedSecretOf)
      .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0)),
  };
}

export class SecretsFileError extends Error {
  override readonly name = "SecretsFileError";
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

function fail(where: string, problem: string): never {
  // Never quotes a value: it may be secret data.
  throw new SecretsFileError(`secrets file: ${where} ${problem}`);
}

function onlyKeys(value: Record<string, unknown>, allowed: readonly string[], where: string): void {
  if (Object.keys(value).some((k) => !allowed.includes(k))) fail(where, `may only have ${allowed.join(", ")}`);
}

function stringMap(value: unknown, where: string, keyPattern?: RegExp, valuePattern?: RegExp): void {
  if (value === undefined) return;
  if (!isRecord(value)) fail(where, "is not an object");
  for (const [key, v] of Object.entries(value)) {
    if (key.length === 0 || key.length > 317 || (keyPattern && !keyPattern.test(key)))
      fail(where, "has an invalid key");
    if (typeof v !== "string" || (valuePattern && !valuePattern.test(v))) fail(`${where}.${key}`, "is not valid");
  }
}

/**
 * Checks a parsed secrets file (untrusted): schema version, each Secret's name (DNS-1123) in `namespace`,
 * once each, string type, base64 data under valid keys, sizes bounded. Throws a SecretsFileError that never
 * quotes the data.
 */
export function parseSecretsFile(value: unknown, namespace: string): SecretsFile {
  if (!isRecord(value)) fail("", "is not a JSON object");
  onlyKeys(value, ["schemaVersion", "secrets"], "");
  if (value.schemaVersion !== SECRETS_SCHEMA_VERSION) fail("schemaVersion", `must be ${SECRETS_SCHEMA_VERSION}`);
  if (!Array.isArray(value.secrets)) fail("secrets", "is not an array");
  if (value.secrets.length > SECRETS_LIMITS.maxSecrets) fail("secrets", `has more than ${SECRETS_LIMITS.maxSecrets}`);
  const seen = new Set<string>();
  value.secrets.forEach((secret, i) => {
    const at = `secrets[${i}]`;
    if (!isRecord(secret)) fail(at, "is not an object");
    onlyKeys(secret, ["metadata", "type", "data"], at);
    const metadata = secret.metadata;
    if (!isRecord(metadata)) fail(`${at}.metadata`, "is not an object");
    onlyKeys(metadata, ["name", "namespace", "labels", "annotations"], `${at}.metadata`);
    if (!isDnsSubdomain(metadata.name)) fail(`${at}.metadata.name`, "is not a DNS-1123 subdomain");
    if (metadata.namespace !== namespace) fail(`${at}.metadata.namespace`, `is not ${namespace}`);
    if (seen.has(metadata.name)) fail(at, `names ${metadata.name} twice`);
    seen.add(metadata.name);
    stringMap(metadata.labels, `${at}.metadata.labels`);
    stringMap(metadata.annotations, `${at}.metadata.annotations`);
    if (typeof secret.type !== "string" || secret.type.length === 0 || secret.type.length > 253) {
      fail(`${at}.type`, "must be a non-empty string");
    }
    stringMap(secret.data, `${at}.data`, DATA_KEY, BASE64);
    if (!isRecord(secret.data)) fail(`${at}.data`, "is missing");
    if (Buffer.byteLength(JSON.stringify(secret)) > SECRETS_LIMITS.maxSecretBytes) fail(at, "is too large");
  });
  return value as unknown as SecretsFile;
}
