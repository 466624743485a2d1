// Builds the fedbackup CLI as one executable that needs no Node installation: dist/cli/kubectl-fedbackup
// (a kubectl plugin; the symlink dist/cli/fedbackup answers under the other name).
//
//   tsx hack/build-cli.ts            build, unless dist/cli/ already holds a build of the same inputs
//   tsx hack/build-cli.ts --force    build anyway
//
// How: esbuild bundles src/cli/ and its dependencies (@kubernetes/client-node is ESM; the bundle is
// CommonJS, which is what Node 24's single executable applications load) into dist/cli/fedbackup.cjs;
// `node --experimental-sea-config` turns it into a blob with a V8 code cache; postject injects the blob
// into a copy of the Node binary that runs this script (Node 24, see hack/ensure-node.sh), stripped of its
// debug symbols first. The inputs (sources, lockfile, this script, the Node version) are hashed into
// dist/cli/inputs.sha256 so that a second run with nothing changed returns at once.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const CLI_DIR = path.join(REPO_ROOT, "dist/cli");
export const CLI_EXECUTABLE = path.join(CLI_DIR, "kubectl-fedbackup");
const HASH_FILE = path.join(CLI_DIR, "inputs.sha256");
/** The sentinel Node's SEA support looks for (fixed by Node; see its single-executable-applications docs). */
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

function listFiles(dir: string): string[] {
  return readdirSync(path.join(REPO_ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(REPO_ROOT, path.join(e.parentPath, e.name)))
    .sort();
}

/** A hash of everything the executable is built from. */
export function inputsHash(): string {
  const h = createHash("sha256");
  h.update(`node ${process.version} ${process.platform} ${process.arch}\n`);
  const files = [...listFiles("src"), "package.json", "package-lock.json", "hack/build-cli.ts"];
  for (const file of files) {
    h.update(`${file}\n`);
    h.update(readFileSync(path.join(REPO_ROOT, file)));
  }
  return h.digest("hex");
}

/** True when dist/cli/ holds an executable built from the current inputs. */
export function isFresh(hash = inputsHash()): boolean {
  return existsSync(CLI_EXECUTABLE) && existsSync(HASH_FILE) && readFileSync(HASH_FILE, "utf8").trim() === hash;
}

/** Runs a tool quietly (strip warns about the notes of Node's binary); its output is shown if it fails. */
function run(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`build-cli: ${path.basename(cmd)} ${args.join(" ")} failed\n${e.stdout ?? ""}${e.stderr ?? ""}`, {
      cause: err,
    });
  }
}

export async function buildCli(opts: { force?: boolean; log?: (s: string) => void } = {}): Promise<void> {
  const log = opts.log ?? ((s) => process.stderr.write(s));
  const hash = inputsHash();
  if (!opts.force && isFresh(hash)) {
    log(`build-cli: ${path.relative(REPO_ROOT, CLI_EXECUTABLE)} is up to date\n`);
    return;
  }
  const started = Date.now();
  rmSync(CLI_DIR, { recursive: true, force: true });
  mkdirSync(CLI_DIR, { recursive: true });
  const version = (JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { version: string })
    .version;

  // 1. The bundle. src/version.ts finds package.json from import.meta.url, which a bundle has not: the
  // version is compiled in instead.
  const bundle = path.join(CLI_DIR, "fedbackup.cjs");
  const result = await esbuild.build({
    stdin: {
      contents: `import { run } from "./src/cli/commands.ts";\nrun(process.argv.slice(2)).then((code) => { process.exitCode = code; });\n`,
      resolveDir: REPO_ROOT,
      sourcefile: "fedbackup-cli-entry.ts",
      loader: "ts",
    },
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node24",
    outfile: bundle,
    minifySyntax: true,
    legalComments: "none",
    logLevel: "warning",
    plugins: [
      {
        name: "version",
        setup(build) {
          build.onLoad({ filter: /[/\\]src[/\\]version\.ts$/ }, () => ({
            contents: `export const VERSION = ${JSON.stringify(version)};\n`,
            loader: "ts",
          }));
        },
      },
    ],
  });
  if (result.errors.length > 0 || result.warnings.length > 0) throw new Error("build-cli: the bundle has problems");

  // 2. The SEA blob, with a code cache (faster start; tied to this exact Node binary, which is the one
  // the executable is made of).
  const blob = path.join(CLI_DIR, "sea-prep.blob");
  const config = path.join(CLI_DIR, "sea-config.json");
  writeFileSync(
    config,
    JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }),
  );
  run(process.execPath, ["--experimental-sea-config", config]);

  // 3. A copy of this Node binary, without debug symbols, with the blob injected.
  const tmp = path.join(CLI_DIR, ".kubectl-fedbackup.tmp");
  copyFileSync(process.execPath, tmp);
  chmodSync(tmp, 0o755);
  try {
    run("strip", ["--strip-all", tmp]);
  } catch {
    log("build-cli: strip failed or is missing; the executable keeps its symbols\n");
  }
  const postject = path.join(REPO_ROOT, "node_modules/postject/dist/cli.js");
  run(process.execPath, [postject, tmp, "NODE_SEA_BLOB", blob, "--sentinel-fuse", SEA_FUSE]);
  renameSync(tmp, CLI_EXECUTABLE);
  symlinkSync("kubectl-fedbackup", path.join(CLI_DIR, "fedbackup"));
  rmSync(blob);
  rmSync(config);
  writeFileSync(HASH_FILE, `${hash}\n`);
  log(
    `build-cli: ${path.relative(REPO_ROOT, CLI_EXECUTABLE)} (${(readFileSync(CLI_EXECUTABLE).length / 2 ** 20).toFixed(0)} MiB, Node ${process.version}) built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // No top-level await: the integration test imports this module (mocha loads it with require()).
  buildCli({ force: process.argv.includes("--force") }).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
