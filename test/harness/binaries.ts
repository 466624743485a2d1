// Finds the control-plane binaries the way envtest users expect: KUBEBUILDER_ASSETS first, then PATH,
// then the per-version cache that hack/controlplane/build.sh fills (building it on first use).
import { execFileSync } from "node:child_process";
import { accessSync, constants, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export const BINARY_NAMES = ["etcd", "kube-apiserver", "kube-controller-manager", "kwok", "kubectl", "helm"] as const;
export type BinaryName = (typeof BINARY_NAMES)[number];

export interface ResolvedBinary {
  path: string;
  source: "KUBEBUILDER_ASSETS" | "PATH" | "cache";
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir && executable(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

export function pinnedVersions(): Record<string, string> {
  const text = readFileSync(path.join(REPO_ROOT, "hack/controlplane/versions.env"), "utf8");
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_]+)=(\S+)/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

function minorOf(version: string): number | undefined {
  const m = /v?1\.(\d+)\./.exec(version);
  return m ? Number(m[1]) : undefined;
}

// A kubectl more than one minor away from the API server is outside the supported skew; another
// kubectl on PATH (a cloud SDK's, say) must not silently change what `kubectl explain` shows.
function kubectlWithinSkew(file: string, serverVersion: string): boolean {
  try {
    const out = execFileSync(file, ["version", "--client", "-o", "json"], { encoding: "utf8", timeout: 10_000 });
    const client = minorOf(
      (JSON.parse(out) as { clientVersion?: { gitVersion?: string } }).clientVersion?.gitVersion ?? "",
    );
    const server = minorOf(serverVersion);
    return client !== undefined && server !== undefined && Math.abs(client - server) <= 1;
  } catch {
    return false;
  }
}

let cacheDir: string | undefined;
function buildCache(): string {
  if (!cacheDir) {
    const started = Date.now();
    // build.sh prints the cache directory; it builds only what is missing and is a no-op when warm.
    cacheDir = execFileSync("bash", [path.join(REPO_ROOT, "hack/controlplane/build.sh")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    }).trim();
    const seconds = (Date.now() - started) / 1000;
    if (seconds > 5) process.stderr.write(`control plane binaries built in ${seconds.toFixed(0)} s into ${cacheDir}\n`);
  }
  return cacheDir;
}

export function resolveBinaries(): Record<BinaryName, ResolvedBinary> {
  const assets = process.env.KUBEBUILDER_ASSETS;
  const pinnedKubernetes = pinnedVersions().KUBERNETES_VERSION ?? "";
  const found: Partial<Record<BinaryName, ResolvedBinary>> = {};
  for (const name of BINARY_NAMES) {
    if (assets && executable(path.join(assets, name))) {
      found[name] = { path: path.join(assets, name), source: "KUBEBUILDER_ASSETS" };
      continue;
    }
    const fromPath = onPath(name);
    if (fromPath && (name !== "kubectl" || kubectlWithinSkew(fromPath, pinnedKubernetes))) {
      found[name] = { path: fromPath, source: "PATH" };
      continue;
    }
    found[name] = { path: path.join(buildCache(), "bin", name), source: "cache" };
  }
  return found as Record<BinaryName, ResolvedBinary>;
}
