// Every captured file matches its checksum: the manifest's sha256 and size equal the bytes at the location,
// and both equal the source file as it was written (the chaos runs never change a disk's content).
import { violation, type Violation } from "./violation.js";

export interface CapturedFile {
  /** The VM, `<namespace>/<name>`. */
  vm: string;
  path: string;
  manifest: { sha256: string; bytes: number };
  /** What the file at the location hashes to; undefined when it is not there. */
  stored?: { sha256: string; bytes: number };
  /** The source file's sha256 when it was made, if known. */
  sourceSha256?: string;
}

export interface ManifestProblem {
  vm: string;
  problem: string;
}

export function checkCapturedFiles(
  files: readonly CapturedFile[],
  problems: readonly ManifestProblem[] = [],
): Violation[] {
  const out = problems.map((p) => violation("checksums", `${p.vm}: ${p.problem}`));
  for (const f of files) {
    const where = `${f.vm} ${f.path}`;
    if (!f.stored) out.push(violation("checksums", `${where}: listed in the manifest, not at the location`));
    else if (f.stored.sha256 !== f.manifest.sha256 || f.stored.bytes !== f.manifest.bytes)
      out.push(
        violation(
          "checksums",
          `${where}: the location holds ${f.stored.bytes} bytes sha256 ${f.stored.sha256}, the manifest says ${f.manifest.bytes} bytes ${f.manifest.sha256}`,
        ),
      );
    if (f.sourceSha256 !== undefined && f.sourceSha256 !== f.manifest.sha256)
      out.push(
        violation(
          "checksums",
          `${where}: the manifest's sha256 ${f.manifest.sha256} is not the source's ${f.sourceSha256}`,
        ),
      );
  }
  return out;
}
