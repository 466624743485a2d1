// A VM's definition and Secrets at the backup location: <ns>/<vm>/definition.json and, with the backup's
// includeSecrets, <ns>/<vm>/secrets.json (see manifest.ts for the layout and why no schema version bump).
//
// Both are written like disks, complete or not at all (LocationDir.commit), before the VM's manifest, which lists each with its size and sha256. secrets.json is
// created with mode 0600 and holds the Secrets' data as the API returns it (base64, not encrypted): it is
// protected only by who can read the location's filesystem. Nothing here logs a Secret's data, and errors
// never quote it.
//
// Reading back (for a restore): the file is opened through safe-fs.ts below the backup's directory (a
// symlink, hard link or FIFO is refused), its size and sha256 must be the manifest's, and its content is
// parsed as untrusted (planning/vm-definition.ts, planning/vm-secrets.ts) and must be of the manifest's VM.
import { createHash } from "node:crypto";
import { posix } from "node:path";
import type { LocationDir } from "../storage/location-dir.js";
import { isErrno } from "./atomic-files.js";
import { writeFully } from "./positional-io.js";
import type { BackupDir, ManifestStoredFile, WorkloadManifest } from "./manifest.js";
import {
  DEFINITION_FILE,
  ManifestError,
  SECRETS_FILE,
  inBackupDir,
  readWhole,
  workloadDefinitionPath,
  workloadDir,
  workloadSecretsPath,
} from "./manifest.js";
import type { VmDefinition } from "../planning/vm-definition.js";
import { DEFINITION_LIMITS, parseVmDefinition } from "../planning/vm-definition.js";
import type { SecretsFile } from "../planning/vm-secrets.js";
import { SECRETS_LIMITS, parseSecretsFile } from "../planning/vm-secrets.js";

/** secrets.json's permission bits: readable by its owner only. */
export const SECRETS_FILE_MODE = 0o600;
const DEFINITION_FILE_MODE = 0o644;

// Writes `text` as `file` in the VM's directory, atomically and durably; returns what the manifest lists.
async function writeStored<P extends string>(
  backup: LocationDir,
  namespace: string,
  name: string,
  file: P,
  text: string,
  mode: number,
): Promise<ManifestStoredFile<P>> {
  const bytes = Buffer.from(text, "utf8");
  await backup.commit(posix.join(workloadDir(namespace, name), file), (sink) => writeFully(sink, bytes, 0), mode);
  return { path: file, bytes: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") };
}

const asJson = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

/** Writes the VM's definition.json (checked as a reader would check it first); returns the manifest's entry. */
export async function writeDefinition(
  backup: LocationDir,
  definition: VmDefinition,
): Promise<ManifestStoredFile<typeof DEFINITION_FILE>> {
  // What cannot be read back must never be written.
  parseVmDefinition(JSON.parse(JSON.stringify(definition)));
  const { namespace, name } = definition.virtualMachine.metadata;
  return writeStored(backup, namespace, name, DEFINITION_FILE, asJson(definition), DEFINITION_FILE_MODE);
}

/** Writes the VM's secrets.json, mode 0600 (checked first); returns the manifest's entry. */
export async function writeSecrets(
  backup: LocationDir,
  namespace: string,
  name: string,
  secrets: SecretsFile,
): Promise<ManifestStoredFile<typeof SECRETS_FILE>> {
  parseSecretsFile(JSON.parse(JSON.stringify(secrets)), namespace);
  return writeStored(backup, namespace, name, SECRETS_FILE, asJson(secrets), SECRETS_FILE_MODE);
}

/** Removes the VM's definition.json and secrets.json (durably), so that none outlives the capture it was of. */
export async function removeDefinitionFiles(backup: LocationDir, namespace: string, name: string): Promise<void> {
  await backup.remove(workloadDefinitionPath(namespace, name));
  await backup.remove(workloadSecretsPath(namespace, name));
}

// Reads a stored file of the VM's directory as the manifest lists it: at most maxBytes, exactly the listed
// size and sha256, valid JSON. Throws ManifestError("Invalid") (or "NotFound" when it is missing).
async function readStored(
  backupDir: BackupDir,
  path: string,
  listed: ManifestStoredFile,
  maxBytes: number,
): Promise<unknown> {
  let bytes: Buffer;
  try {
    bytes = await inBackupDir(backupDir, async (dir) => {
      const file = await dir.openFile(path);
      try {
        const { size } = await file.stat();
        if (size !== listed.bytes || size > maxBytes) {
          throw new ManifestError("Invalid", `${path} has ${size} bytes, the manifest lists ${listed.bytes}`);
        }
        return await readWhole(file, size);
      } finally {
        await file.close();
      }
    });
  } catch (err) {
    if (isErrno(err, "ENOENT")) throw new ManifestError("NotFound", `${path} is missing`, { cause: err });
    throw err;
  }
  if (bytes.length !== listed.bytes) {
    throw new ManifestError("Invalid", `${path} has ${bytes.length} bytes, the manifest lists ${listed.bytes}`);
  }
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  if (sha256 !== listed.sha256) throw new ManifestError("Invalid", `${path} does not have the manifest's sha256`);
  try {
    return JSON.parse(bytes.toString("utf8")) as unknown;
  } catch {
    // The parser's message may quote the content (a Secret's data): it is left out.
    throw new ManifestError("Invalid", `${path} is not valid JSON`);
  }
}

// The manifest's VM, which every stored file must be of.
const vmOf = (manifest: WorkloadManifest, namespace: string, name: string) => {
  if (manifest.workload.namespace !== namespace || manifest.workload.name !== name) {
    throw new ManifestError(
      "Invalid",
      `the manifest is for ${manifest.workload.namespace}/${manifest.workload.name}, not ${namespace}/${name}`,
    );
  }
};

/**
 * The VM's definition as its manifest lists it: undefined when the manifest lists none; throws a
 * ManifestError when the file is missing, unsafe (symlink, ...), of another size or sha256, does not parse
 * as a definition, or is of another VM.
 */
export async function readVerifiedDefinition(
  backupDir: BackupDir,
  namespace: string,
  name: string,
  manifest: WorkloadManifest,
): Promise<VmDefinition | undefined> {
  if (!manifest.definition) return undefined;
  vmOf(manifest, namespace, name);
  const path = workloadDefinitionPath(namespace, name);
  const value = await readStored(backupDir, path, manifest.definition, DEFINITION_LIMITS.maxBytes);
  let definition: VmDefinition;
  try {
    definition = parseVmDefinition(value);
  } catch (err) {
    throw new ManifestError("Invalid", `${path}: ${(err as Error).message}`, { cause: err });
  }
  const { metadata } = definition.virtualMachine;
  if (metadata.namespace !== namespace || metadata.name !== name) {
    throw new ManifestError("Invalid", `${path} is the definition of ${metadata.namespace}/${metadata.name}`);
  }
  return definition;
}

/**
 * The Secrets stored with the VM as its manifest lists them: undefined when the manifest lists none; throws
 * like readVerifiedDefinition (never quoting the data).
 */
export async function readVerifiedSecrets(
  backupDir: BackupDir,
  namespace: string,
  name: string,
  manifest: WorkloadManifest,
): Promise<SecretsFile | undefined> {
  if (!manifest.secrets) return undefined;
  vmOf(manifest, namespace, name);
  const path = workloadSecretsPath(namespace, name);
  const value = await readStored(backupDir, path, manifest.secrets, SECRETS_LIMITS.maxBytes);
  try {
    return parseSecretsFile(value, namespace);
  } catch (err) {
    throw new ManifestError("Invalid", `${path}: ${(err as Error).message}`, { cause: err });
  }
}
