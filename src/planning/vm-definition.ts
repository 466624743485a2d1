// A VM's definition as a backup keeps it: what a restore needs to create the VirtualMachine again when it no
// longer exists (its spec, labels and annotations, the standalone DataVolumes it names), and the names of the
// Secrets and ConfigMaps it references, which are never invented by a restore and so must be reported.
//
// Everything the API server sets (status, uid, resourceVersion, managedFields, ...) is left out: a restore
// creates a new object, and those fields are either refused on create or would be wrong. The definition file
// sits at the backup location, which others than fedbackup can write, so what is read back is parsed by
// parseVmDefinition and never trusted: a restore creates objects from it.
//
// No I/O here: the agent reads the objects (agent/definition-capture.ts) and writes and reads the file
// (agent/definition-file.ts).

export const VM_DEFINITION_SCHEMA_VERSION = 1;

export interface DefinedObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: Record<string, unknown>;
}

/** A Secret or ConfigMap the VM's spec names, and where (e.g. `accessCredentials[0].sshPublicKey`). */
export interface Reference {
  name: string;
  usedBy: string;
}

export interface VmReferences {
  secrets: Reference[];
  configMaps: Reference[];
}

export interface VmDefinition {
  schemaVersion: typeof VM_DEFINITION_SCHEMA_VERSION;
  virtualMachine: DefinedObject;
  /** The standalone DataVolumes the VM's `dataVolume` volumes name (not its spec.dataVolumeTemplates). */
  dataVolumes: DefinedObject[];
  references: VmReferences;
}

/** An object as the API server returns it: only what a definition keeps is looked at. */
export interface ApiObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [field: string]: unknown;
  };
  spec?: Record<string, unknown>;
  [field: string]: unknown;
}

export const VIRTUAL_MACHINE_API_VERSION = "kubevirt.io/v1";
export const DATA_VOLUME_API_VERSION = "cdi.kubevirt.io/v1beta1";

/**
 * Annotations the API server, kubectl or KubeVirt put on objects; a new object must not carry them (KubeVirt
 * sets the observed API versions itself, and last-applied-configuration may hold a Secret's data).
 */
export const SERVER_SET_ANNOTATIONS: readonly string[] = [
  "kubevirt.io/latest-observed-api-version",
  "kubevirt.io/storage-observed-api-version",
  "kubectl.kubernetes.io/last-applied-configuration",
];

/** Limits on what a definition may hold, far above real VMs, so that a hostile file cannot be huge. */
export const DEFINITION_LIMITS = {
  /** The whole definition as JSON. */
  maxBytes: 4 * 1024 * 1024,
  maxDataVolumes: 64,
  maxReferences: 256,
  maxUsedByLength: 1024,
  // The API server bounds all labels or all annotations of an object to 256 KiB, not their number.
  maxMetadataEntries: 4096,
  maxMetadataKeyLength: 317,
  maxMetadataValueBytes: 256 * 1024,
} as const;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A DNS-1123 label (namespaces): lower-case alphanumerics and '-', at most 63 characters. */
export const isDnsLabel = (value: unknown): value is string =>
  typeof value === "string" && value.length <= 63 && DNS_LABEL.test(value);

/** A DNS-1123 subdomain (object names): labels joined by '.', at most 253 characters. */
export const isDnsSubdomain = (value: unknown): value is string =>
  typeof value === "string" && value.length <= 253 && DNS_SUBDOMAIN.test(value);

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

// A deep copy of JSON data (what the API server returns), so that a definition never shares objects with
// its source.
const copyJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/** The user's annotations: without SERVER_SET_ANNOTATIONS; undefined when none are left. */
export function userAnnotations(annotations: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!annotations) return undefined;
  const kept = Object.entries(annotations).filter(([key]) => !SERVER_SET_ANNOTATIONS.includes(key));
  return kept.length > 0 ? Object.fromEntries(kept) : undefined;
}

/**
 * An object as a definition keeps it: apiVersion, kind, name, namespace, labels, the user's annotations and
 * the spec. Status and every other metadata field (uid, resourceVersion, generation, creationTimestamp,
 * managedFields, ownerReferences, finalizers, deletionTimestamp, selfLink, ...) are left out.
 */
export function definedObject(object: ApiObject, defaults: { apiVersion: string; kind: string }): DefinedObject {
  const name = object.metadata?.name;
  const namespace = object.metadata?.namespace;
  if (!isDnsSubdomain(name)) throw new Error(`${defaults.kind} has no valid name: ${JSON.stringify(name)}`);
  if (!isDnsLabel(namespace)) throw new Error(`${defaults.kind} ${name} has no valid namespace`);
  const labels = object.metadata?.labels;
  const annotations = userAnnotations(object.metadata?.annotations);
  return {
    apiVersion: object.apiVersion ?? defaults.apiVersion,
    kind: object.kind ?? defaults.kind,
    metadata: {
      name,
      namespace,
      ...(labels && Object.keys(labels).length > 0 ? { labels: { ...labels } } : {}),
      ...(annotations ? { annotations } : {}),
    },
    spec: copyJson(object.spec ?? {}),
  };
}

// The VM's template volumes, whatever the spec holds (it is read, not trusted).
function templateSpecOf(vmSpec: unknown): Record<string, unknown> {
  if (!isRecord(vmSpec) || !isRecord(vmSpec.template) || !isRecord(vmSpec.template.spec)) return {};
  return vmSpec.template.spec;
}

function volumesOf(vmSpec: unknown): Record<string, unknown>[] {
  const volumes = templateSpecOf(vmSpec).volumes;
  return Array.isArray(volumes) ? volumes.filter(isRecord) : [];
}

// The string at `path` below `value`, if there is one.
function stringAt(value: unknown, ...path: string[]): string | undefined {
  let at = value;
  for (const key of path) {
    if (!isRecord(at)) return undefined;
    at = at[key];
  }
  return typeof at === "string" && at.length > 0 ? at : undefined;
}

/** The names of the VM's spec.dataVolumeTemplates (DataVolumes KubeVirt creates and owns with the VM). */
export function dataVolumeTemplateNames(vmSpec: unknown): string[] {
  const templates = isRecord(vmSpec) && Array.isArray(vmSpec.dataVolumeTemplates) ? vmSpec.dataVolumeTemplates : [];
  return templates.map((t) => stringAt(t, "metadata", "name")).filter((n): n is string => n !== undefined);
}

/**
 * The DataVolumes the VM's `dataVolume` volumes name that are not among its spec.dataVolumeTemplates: they
 * exist on their own, so a definition must carry them for the VM to be created again. Sorted, once each,
 * valid names only (no other name can be an object).
 */
export function standaloneDataVolumeNames(vmSpec: unknown): string[] {
  const templates = new Set(dataVolumeTemplateNames(vmSpec));
  const names = volumesOf(vmSpec)
    .map((v) => stringAt(v, "dataVolume", "name"))
    .filter((n): n is string => n !== undefined && isDnsSubdomain(n) && !templates.has(n));
  return [...new Set(names)].sort();
}

// Where each volume source names a Secret or a ConfigMap (KubeVirt v1 field names).
const VOLUME_REFERENCES: ReadonlyArray<{ kind: keyof VmReferences; field: string; path: readonly string[] }> = [
  { kind: "secrets", field: "secret.secretName", path: ["secret", "secretName"] },
  { kind: "configMaps", field: "configMap.name", path: ["configMap", "name"] },
  { kind: "secrets", field: "cloudInitNoCloud.secretRef", path: ["cloudInitNoCloud", "secretRef", "name"] },
  {
    kind: "secrets",
    field: "cloudInitNoCloud.networkDataSecretRef",
    path: ["cloudInitNoCloud", "networkDataSecretRef", "name"],
  },
  { kind: "secrets", field: "cloudInitConfigDrive.secretRef", path: ["cloudInitConfigDrive", "secretRef", "name"] },
  {
    kind: "secrets",
    field: "cloudInitConfigDrive.networkDataSecretRef",
    path: ["cloudInitConfigDrive", "networkDataSecretRef", "name"],
  },
  { kind: "secrets", field: "sysprep.secret", path: ["sysprep", "secret", "name"] },
  { kind: "configMaps", field: "sysprep.configMap", path: ["sysprep", "configMap", "name"] },
  { kind: "secrets", field: "containerDisk.imagePullSecret", path: ["containerDisk", "imagePullSecret"] },
];

// Where each access credential names its Secret.
const CREDENTIAL_REFERENCES: ReadonlyArray<{ type: string; path: readonly string[] }> = [
  { type: "sshPublicKey", path: ["sshPublicKey", "source", "secret", "secretName"] },
  { type: "userPassword", path: ["userPassword", "source", "secret", "secretName"] },
];

/**
 * Every Secret and ConfigMap the VM's spec references: in its template's volumes (secret, configMap,
 * cloudInitNoCloud and cloudInitConfigDrive secretRef and networkDataSecretRef, sysprep, a containerDisk's
 * imagePullSecret) and its accessCredentials (sshPublicKey and userPassword). Each name once, sorted; a name
 * used in several places lists them all in usedBy. Names that are not DNS-1123 subdomains name no object
 * and are left out. At most DEFINITION_LIMITS.maxReferences of each kind (the first by name), far more than
 * a VM has volumes, so that a definition is always one parseVmDefinition accepts.
 */
export function referencesOf(vmSpec: unknown): VmReferences {
  const found: Record<keyof VmReferences, Map<string, string[]>> = { secrets: new Map(), configMaps: new Map() };
  const add = (kind: keyof VmReferences, name: string | undefined, usedBy: string) => {
    if (name === undefined || !isDnsSubdomain(name)) return;
    const uses = found[kind].get(name) ?? [];
    if (!uses.includes(usedBy)) uses.push(usedBy);
    found[kind].set(name, uses);
  };
  for (const volume of volumesOf(vmSpec)) {
    const volumeName = typeof volume.name === "string" ? volume.name : "?";
    for (const { kind, field, path } of VOLUME_REFERENCES) {
      add(kind, stringAt(volume, ...path), `volume ${volumeName} (${field})`);
    }
  }
  const credentials = templateSpecOf(vmSpec).accessCredentials;
  (Array.isArray(credentials) ? credentials : []).forEach((credential, i) => {
    for (const { type, path } of CREDENTIAL_REFERENCES) {
      add("secrets", stringAt(credential, ...path), `accessCredentials[${i}].${type}`);
    }
  });
  const sorted = (map: Map<string, string[]>): Reference[] =>
    [...map.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .slice(0, DEFINITION_LIMITS.maxReferences)
      .map(([name, uses]) => ({ name, usedBy: truncate(uses.join("; "), DEFINITION_LIMITS.maxUsedByLength) }));
  return { secrets: sorted(found.secrets), configMaps: sorted(found.configMaps) };
}

const truncate = (text: string, max: number): string => (text.length <= max ? text : `${text.slice(0, max - 3)}...`);

/**
 * The definition of `vm` (a VirtualMachine as the API server returns it), with those of `dataVolumes` that
 * it names as standalone DataVolumes (standaloneDataVolumeNames) in its namespace; others are ignored.
 * Throws when the VM has no valid name or namespace.
 */
export function definitionOf(vm: ApiObject, dataVolumes: readonly ApiObject[]): VmDefinition {
  const virtualMachine = definedObject(vm, { apiVersion: VIRTUAL_MACHINE_API_VERSION, kind: "VirtualMachine" });
  const wanted = new Set(standaloneDataVolumeNames(vm.spec));
  const kept = new Map<string, DefinedObject>();
  for (const dv of dataVolumes) {
    const name = dv.metadata?.name;
    if (name === undefined || !wanted.has(name) || dv.metadata?.namespace !== virtualMachine.metadata.namespace) {
      continue;
    }
    kept.set(name, definedObject(dv, { apiVersion: DATA_VOLUME_API_VERSION, kind: "DataVolume" }));
  }
  return {
    schemaVersion: VM_DEFINITION_SCHEMA_VERSION,
    virtualMachine,
    // standaloneDataVolumeNames is sorted: the first maxDataVolumes by name, like the step's spec.
    dataVolumes: [...kept.values()]
      .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))
      .slice(0, DEFINITION_LIMITS.maxDataVolumes),
    references: referencesOf(vm.spec),
  };
}

// ---- reading one back ----

export class VmDefinitionError extends Error {
  override readonly name = "VmDefinitionError";
}

function fail(where: string, problem: string): never {
  throw new VmDefinitionError(`VM definition: ${where} ${problem}`);
}

function onlyKeys(value: Record<string, unknown>, allowed: readonly string[], where: string): void {
  const extra = Object.keys(value).filter((k) => !allowed.includes(k));
  if (extra.length > 0) fail(where, `has fields a definition never holds: ${extra.slice(0, 5).join(", ")}`);
}

function stringMap(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isRecord(value)) fail(where, "is not an object");
  const entries = Object.entries(value);
  if (entries.length > DEFINITION_LIMITS.maxMetadataEntries)
    fail(where, `has more than ${DEFINITION_LIMITS.maxMetadataEntries} entries`);
  for (const [key, v] of entries) {
    if (key.length === 0 || key.length > DEFINITION_LIMITS.maxMetadataKeyLength) fail(where, `has an invalid key`);
    if (typeof v !== "string") fail(`${where}.${key}`, "is not a string");
    if (Buffer.byteLength(v) > DEFINITION_LIMITS.maxMetadataValueBytes) fail(`${where}.${key}`, "is too long");
  }
  return value as Record<string, string>;
}

function parseObject(
  value: unknown,
  where: string,
  expected: { apiVersions: readonly string[]; kind: string; namespace?: string },
): DefinedObject {
  if (!isRecord(value)) fail(where, "is not an object");
  onlyKeys(value, ["apiVersion", "kind", "metadata", "spec"], where);
  if (typeof value.apiVersion !== "string" || !expected.apiVersions.includes(value.apiVersion)) {
    fail(`${where}.apiVersion`, `must be ${expected.apiVersions.join(" or ")}`);
  }
  if (value.kind !== expected.kind) fail(`${where}.kind`, `must be ${expected.kind}`);
  const metadata = value.metadata;
  if (!isRecord(metadata)) fail(`${where}.metadata`, "is not an object");
  onlyKeys(metadata, ["name", "namespace", "labels", "annotations"], `${where}.metadata`);
  if (!isDnsSubdomain(metadata.name)) fail(`${where}.metadata.name`, "is not a DNS-1123 subdomain");
  if (!isDnsLabel(metadata.namespace)) fail(`${where}.metadata.namespace`, "is not a DNS-1123 label");
  if (expected.namespace !== undefined && metadata.namespace !== expected.namespace) {
    fail(`${where}.metadata.namespace`, `is ${metadata.namespace}, not the VM's ${expected.namespace}`);
  }
  stringMap(metadata.labels, `${where}.metadata.labels`);
  const annotations = stringMap(metadata.annotations, `${where}.metadata.annotations`);
  const serverSet = Object.keys(annotations ?? {}).find((k) => SERVER_SET_ANNOTATIONS.includes(k));
  if (serverSet) fail(`${where}.metadata.annotations`, `holds ${serverSet}, which the server sets`);
  if (!isRecord(value.spec)) fail(`${where}.spec`, "is not an object");
  return value as unknown as DefinedObject;
}

function parseReferences(value: unknown, where: string): Reference[] {
  if (!Array.isArray(value)) fail(where, "is not an array");
  if (value.length > DEFINITION_LIMITS.maxReferences)
    fail(where, `has more than ${DEFINITION_LIMITS.maxReferences} entries`);
  const seen = new Set<string>();
  value.forEach((ref, i) => {
    const at = `${where}[${i}]`;
    if (!isRecord(ref)) fail(at, "is not an object");
    onlyKeys(ref, ["name", "usedBy"], at);
    if (!isDnsSubdomain(ref.name)) fail(`${at}.name`, "is not a DNS-1123 subdomain");
    if (seen.has(ref.name)) fail(at, `names ${ref.name} twice`);
    seen.add(ref.name);
    if (typeof ref.usedBy !== "string" || ref.usedBy.length > DEFINITION_LIMITS.maxUsedByLength) {
      fail(`${at}.usedBy`, `must be a string of at most ${DEFINITION_LIMITS.maxUsedByLength} characters`);
    }
  });
  return value as Reference[];
}

/**
 * Checks a parsed definition file (untrusted: from the backup location): schema version, the
 * VirtualMachine's and DataVolumes' shapes, kinds and DNS-1123 names, every object in the VM's namespace,
 * no server-set field or annotation, DataVolumes and references named once each, and sizes bounded. Throws a
 * VmDefinitionError naming the first problem.
 */
export function parseVmDefinition(value: unknown): VmDefinition {
  if (!isRecord(value)) fail("", "is not a JSON object");
  const size = Buffer.byteLength(JSON.stringify(value));
  if (size > DEFINITION_LIMITS.maxBytes) fail("", `is ${size} bytes, more than ${DEFINITION_LIMITS.maxBytes}`);
  onlyKeys(value, ["schemaVersion", "virtualMachine", "dataVolumes", "references"], "");
  if (value.schemaVersion !== VM_DEFINITION_SCHEMA_VERSION) {
    fail("schemaVersion", `must be ${VM_DEFINITION_SCHEMA_VERSION}`);
  }
  const vm = parseObject(value.virtualMachine, "virtualMachine", {
    apiVersions: [VIRTUAL_MACHINE_API_VERSION],
    kind: "VirtualMachine",
  });
  const namespace = vm.metadata.namespace;
  if (!Array.isArray(value.dataVolumes)) fail("dataVolumes", "is not an array");
  if (value.dataVolumes.length > DEFINITION_LIMITS.maxDataVolumes) {
    fail("dataVolumes", `has more than ${DEFINITION_LIMITS.maxDataVolumes} entries`);
  }
  const dvNames = new Set<string>();
  value.dataVolumes.forEach((dv, i) => {
    const parsed = parseObject(dv, `dataVolumes[${i}]`, {
      apiVersions: [DATA_VOLUME_API_VERSION],
      kind: "DataVolume",
      namespace,
    });
    if (dvNames.has(parsed.metadata.name)) fail(`dataVolumes[${i}]`, `names ${parsed.metadata.name} twice`);
    dvNames.add(parsed.metadata.name);
  });
  const references = value.references;
  if (!isRecord(references)) fail("references", "is not an object");
  onlyKeys(references, ["secrets", "configMaps"], "references");
  parseReferences(references.secrets, "references.secrets");
  parseReferences(references.configMaps, "references.configMaps");
  return value as unknown as VmDefinition;
}
