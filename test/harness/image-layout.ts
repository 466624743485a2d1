// The image's /app without a container engine: the build output of tsconfig.build.json under dist/, the
// package.json and node_modules side by side, as the Dockerfile's final stage lays them out. The Dockerfile
// test runs its entrypoint from here, and the end-to-end test runs the operator's and agents' pods from it.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { REPO_ROOT } from "./binaries.js";

/** Builds the layout in a new temporary directory and returns it; throws with tsc's output if it fails. */
export function buildImageLayout(): string {
  const app = mkdtempSync(path.join(os.tmpdir(), "fedbackup-image-"));
  const tsc = spawnSync(
    process.execPath,
    [
      path.join(REPO_ROOT, "node_modules/typescript/bin/tsc"),
      "-p",
      "tsconfig.build.json",
      "--outDir",
      path.join(app, "dist"),
    ],
    { cwd: REPO_ROOT, encoding: "utf8" },
  );
  if (tsc.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed:\n${tsc.stdout}${tsc.stderr}`);
  copyFileSync(path.join(REPO_ROOT, "package.json"), path.join(app, "package.json"));
  symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(app, "node_modules"));
  return app;
}
