// Reads what a backup left at its location: every VM manifest under the backup's directory, and the hash
// and size of each file a manifest lists, for the checksum invariant.
import { createHash } from "node:crypto";
import { existsSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { backupFilePath, workloadDir } from "../../src/storage/layout.js";
import { parseWorkloadManifest } from "../../src/storage/manifest-schema.js";
import type { CapturedFile, ManifestProblem } from "./invariants/checksums.js";

function hashOf(file: string): { sha256: string; bytes: number } | undefined {
  const stat = lstatSync(file, { throwIfNoEntry: false });
  if (!stat?.isFile()) return undefined;
  const bytes = readFileSync(file);
  return { sha256: createHash("sha256").update(bytes).digest("hex"), bytes: bytes.length };
}

/**
 * The files the manifests of `vms` (`<namespace>/<name>`, the VMs the run's steps say they captured) list,
 * with what is stored for each, and the manifests that are missing or unreadable.
 */
export function readCapturedFiles(
  backupDir: string,
  vms: readonly string[],
  sourceSha256: ReadonlyMap<string, string>,
): { files: CapturedFile[]; problems: ManifestProblem[] } {
  const files: CapturedFile[] = [];
  const problems: ManifestProblem[] = [];
  for (const vm of vms) {
    const [namespace, name] = vm.split("/") as [string, string];
    const manifestFile = path.join(backupDir, workloadDir(namespace, name), "manifest.json");
    if (!existsSync(manifestFile)) {
      problems.push({ vm, problem: `captured, but no ${path.relative(backupDir, manifestFile)} at the location` });
      continue;
    }
    let manifest;
    try {
      manifest = parseWorkloadManifest(JSON.parse(readFileSync(manifestFile, "utf8")));
    } catch (err) {
      problems.push({ vm, problem: `manifest.json unreadable: ${String(err)}` });
      continue;
    }
    if (manifest.extractAt !== "Backup") {
      problems.push({ vm, problem: `extractAt ${manifest.extractAt}: the chaos runs extract at backup` });
      continue;
    }
    for (const f of manifest.files) {
      const stored = hashOf(path.join(backupDir, backupFilePath(namespace, name, f.path)));
      const source = sourceSha256.get(f.path);
      files.push({
        vm,
        path: f.path,
        manifest: { sha256: f.sha256, bytes: f.bytes },
        ...(stored ? { stored } : {}),
        ...(source !== undefined ? { sourceSha256: source } : {}),
      });
    }
    for (const extra of [manifest.definition, manifest.secrets]) {
      if (!extra) continue;
      const stored = hashOf(path.join(backupDir, workloadDir(namespace, name), extra.path));
      files.push({
        vm,
        path: extra.path,
        manifest: { sha256: extra.sha256, bytes: extra.bytes },
        ...(stored ? { stored } : {}),
      });
    }
  }
  return { files, problems };
}

/** The VMs (`<namespace>/<name>`) that have a manifest under a backup's directory. */
export function vmsWithManifests(backupDir: string): string[] {
  const out: string[] = [];
  for (const ns of readdirSync(backupDir, { withFileTypes: true })) {
    if (!ns.isDirectory() || ns.name === "nodes") continue;
    for (const vm of readdirSync(path.join(backupDir, ns.name), { withFileTypes: true }))
      if (vm.isDirectory() && existsSync(path.join(backupDir, ns.name, vm.name, "manifest.json")))
        out.push(`${ns.name}/${vm.name}`);
  }
  return out.sort();
}
