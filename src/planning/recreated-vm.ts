// The objects a restore creates from a VM's captured definition: the VirtualMachine (and the standalone
// DataVolumes it names), under the target's name and namespace, its claims and hostDisk files renamed as the
// restore planned them, and for a copy new MAC addresses, firmware UUID and serial (copy-identity.ts).
//
// A DataVolume whose claim the restore has written must not be imported again by CDI: its template (or the
// standalone DataVolume) carries cdi.kubevirt.io/storage.prePopulated, which tells CDI the claim of that name
// is already populated, and cdi.kubevirt.io/allowClaimAdoption, which lets the DataVolume take the existing
// claim as its own (the way Velero's KubeVirt plugin restores DataVolumes).
import { copyFirmwareUuid, copyMacAddress, copySerial } from "./copy-identity.js";
import { isCopy } from "./restore-target.js";
import type { WorkloadRef } from "./types.js";
import type { DefinedObject, VmDefinition } from "./vm-definition.js";

export const ANNOTATION_CDI_PREPOPULATED = "cdi.kubevirt.io/storage.prePopulated";
export const ANNOTATION_CDI_ALLOW_CLAIM_ADOPTION = "cdi.kubevirt.io/allowClaimAdoption";

export interface RecreateOptions {
  source: WorkloadRef;
  target: WorkloadRef;
  /** Captured claim (or DataVolume) name → the target's; names absent stay as they are. */
  claimNames: ReadonlyMap<string, string>;
  /**
   * The copy's files: a captured file (relative to the shared volume root) and where the copy's lies. A hostDisk
   * path (absolute, on the node) that ends in `/<from>` is made to end in `/<to>`.
   */
  renamedFiles: ReadonlyArray<{ from: string; to: string }>;
  /** New MAC addresses, firmware UUID and serial: a copy that does not ask to keep them. */
  newIdentity: boolean;
  /** The run strategy the VirtualMachine is created with (Halted while the restore holds it). */
  runStrategy: string;
  /** Added to the VirtualMachine's annotations (the restore's hold, where it came from). */
  annotations: Readonly<Record<string, string>>;
}

export interface RecreatedObjects {
  virtualMachine: DefinedObject;
  dataVolumes: DefinedObject[];
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const objectAt = (parent: Json, key: string): Json | undefined => (isObject(parent[key]) ? parent[key] : undefined);
const arrayAt = (parent: Json | undefined, key: string): Json[] =>
  parent && Array.isArray(parent[key]) ? (parent[key] as unknown[]).filter(isObject) : [];

/** The run strategy the captured VM had: spec.runStrategy, or Always/Halted from the deprecated spec.running. */
export function capturedRunStrategy(definition: VmDefinition): string {
  const spec = definition.virtualMachine.spec;
  if (typeof spec.runStrategy === "string") return spec.runStrategy;
  return spec.running === true ? "Always" : "Halted";
}

const prePopulated = (annotations: Json | undefined, name: string): Record<string, string> => ({
  ...((annotations ?? {}) as Record<string, string>),
  [ANNOTATION_CDI_PREPOPULATED]: name,
  [ANNOTATION_CDI_ALLOW_CLAIM_ADOPTION]: "true",
});

export function recreatedObjects(definition: VmDefinition, o: RecreateOptions): RecreatedObjects {
  const captured = definition.virtualMachine;
  const spec = structuredClone(captured.spec);
  const renamed = (name: unknown) => (typeof name === "string" ? (o.claimNames.get(name) ?? name) : name);

  delete spec.running; // runStrategy and the deprecated running cannot both be set
  spec.runStrategy = o.runStrategy;
  for (const template of arrayAt(spec, "dataVolumeTemplates")) {
    const metadata = objectAt(template, "metadata") ?? {};
    const name = renamed(metadata.name) as string;
    template.metadata = {
      ...metadata,
      name,
      annotations: prePopulated(objectAt(metadata, "annotations"), name),
    };
  }
  const template = objectAt(spec, "template");
  const podSpec = template ? objectAt(template, "spec") : undefined;
  for (const volume of arrayAt(podSpec, "volumes")) {
    const claim = objectAt(volume, "persistentVolumeClaim");
    if (claim) claim.claimName = renamed(claim.claimName);
    const dataVolume = objectAt(volume, "dataVolume");
    if (dataVolume) dataVolume.name = renamed(dataVolume.name);
    const hostDisk = objectAt(volume, "hostDisk");
    if (hostDisk && typeof hostDisk.path === "string") hostDisk.path = renamedPath(hostDisk.path, o.renamedFiles);
  }
  if (o.newIdentity && isCopy(o.source, o.target) && podSpec) withNewIdentity(podSpec, o.target);

  const metadata = {
    name: o.target.name,
    namespace: o.target.namespace,
    ...(captured.metadata.labels ? { labels: { ...captured.metadata.labels } } : {}),
    annotations: { ...captured.metadata.annotations, ...o.annotations },
  };
  const dataVolumes = definition.dataVolumes.map((dv): DefinedObject => {
    const name = renamed(dv.metadata.name) as string;
    return {
      apiVersion: dv.apiVersion,
      kind: dv.kind,
      metadata: {
        name,
        namespace: o.target.namespace,
        ...(dv.metadata.labels ? { labels: { ...dv.metadata.labels } } : {}),
        annotations: prePopulated(dv.metadata.annotations, name),
      },
      spec: structuredClone(dv.spec),
    };
  });
  return { virtualMachine: { apiVersion: captured.apiVersion, kind: captured.kind, metadata, spec }, dataVolumes };
}

function renamedPath(path: string, renamed: RecreateOptions["renamedFiles"]): string {
  const hit = renamed.find((r) => path.endsWith(`/${r.from}`));
  return hit ? `${path.slice(0, path.length - hit.from.length)}${hit.to}` : path;
}

/**
 * The disks a definition names that its capture did not hold: a claim (or DataVolume) not among `claims`, a
 * hostDisk path that is not exactly `<nodeMountPath>/<file>` for one of `files`. The definition comes from the backup location,
 * which others can write: a VM created from it must get no disk but the ones the restore wrote for it.
 */
export function foreignDisksOf(
  definition: VmDefinition,
  claims: ReadonlySet<string>,
  files: readonly string[],
  nodeMountPath: string,
): string[] {
  const mount = nodeMountPath.replace(/\/+$/, "");
  const paths = new Set(files.map((f) => `${mount}/${f}`));
  const foreign: string[] = [];
  const spec = definition.virtualMachine.spec;
  const template = isObject(spec.template) ? spec.template : undefined;
  const podSpec = template ? objectAt(template, "spec") : undefined;
  for (const volume of arrayAt(podSpec, "volumes")) {
    for (const claim of claimsNamedByVolume(volume)) {
      if (typeof claim !== "string" || !claims.has(claim)) foreign.push(`claim ${JSON.stringify(claim)}`);
    }
    const path = objectAt(volume, "hostDisk")?.path;
    if (path !== undefined && (typeof path !== "string" || !paths.has(path))) {
      foreign.push(`hostDisk ${JSON.stringify(path)}`);
    }
  }
  for (const template of arrayAt(spec, "dataVolumeTemplates")) {
    const name = objectAt(template, "metadata")?.name;
    if (typeof name !== "string" || !claims.has(name)) foreign.push(`dataVolumeTemplate ${JSON.stringify(name)}`);
  }
  // A standalone DataVolume adopts the claim of its name (allowClaimAdoption): it must be one of the capture's.
  for (const dv of definition.dataVolumes) {
    if (!claims.has(dv.metadata.name)) foreign.push(`DataVolume ${JSON.stringify(dv.metadata.name)}`);
  }
  return foreign;
}

/**
 * Every claim a volume names, whatever the field: persistentVolumeClaim, dataVolume, an ephemeral volume's
 * claim (read through an overlay) and a memoryDump's (written). Values that are not strings are returned as
 * they are, for the caller to refuse.
 */
export function claimsNamedByVolume(volume: Readonly<Json>): unknown[] {
  const named = [
    objectAt(volume, "persistentVolumeClaim")?.claimName,
    objectAt(volume, "dataVolume")?.name,
    objectAt(objectAt(volume, "ephemeral") ?? {}, "persistentVolumeClaim")?.claimName,
    objectAt(volume, "memoryDump")?.claimName,
  ];
  return named.filter((n) => n !== undefined);
}

/** MAC addresses (where the captured spec sets one), firmware UUID and serial (where it sets them) made new. */
function withNewIdentity(podSpec: Json, target: WorkloadRef): void {
  const domain = objectAt(podSpec, "domain");
  if (!domain) return;
  for (const iface of arrayAt(objectAt(domain, "devices"), "interfaces")) {
    if (typeof iface.macAddress === "string")
      iface.macAddress = copyMacAddress(target, typeof iface.name === "string" ? iface.name : "");
  }
  const firmware = objectAt(domain, "firmware");
  if (firmware && typeof firmware.uuid === "string") firmware.uuid = copyFirmwareUuid(target);
  if (firmware && typeof firmware.serial === "string") firmware.serial = copySerial(target);
}

/**
 * A VirtualMachine spec as a restore compares it with the captured one: without the run strategy and the node
 * pin, which a restore itself changes while it holds the VM.
 */
export function comparableSpec(spec: Readonly<Json> | undefined): Json {
  const copy = structuredClone(spec ?? {}) as Json;
  delete copy.runStrategy;
  delete copy.running;
  const podSpec = objectAt(objectAt(copy, "template") ?? {}, "spec");
  const selector = podSpec ? objectAt(podSpec, "nodeSelector") : undefined;
  if (podSpec && selector) {
    delete selector["kubernetes.io/hostname"];
    if (Object.keys(selector).length === 0) delete podSpec.nodeSelector;
  }
  return copy;
}
