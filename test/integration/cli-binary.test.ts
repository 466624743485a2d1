// The CLI as users get it: the single executable from `make cli` (hack/build-cli.ts), run as a kubectl
// plugin against the real control plane with a PATH that holds only kubectl and the plugin (no node).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { buildCli, CLI_EXECUTABLE } from "../../hack/build-cli.js";
import type { DigestRow } from "../../src/digest/index.js";
import { createVm } from "../harness/workloads.js";
import { adminClient } from "./operator-env.js";
import { cluster, freshNamespace } from "./setup.js";

const execFileP = promisify(execFile);

describe("the fedbackup single executable", function () {
  let binDir: string;
  let home: string;
  let sharedDir: string;
  let ns: string;

  /** Runs `cmd` with only binDir on PATH and the harness admin's kubeconfig; returns stdout. */
  async function runIsolated(cmd: string, args: string[]): Promise<string> {
    const { stdout } = await execFileP(cmd, args, {
      cwd: home,
      env: { PATH: binDir, HOME: home, KUBECONFIG: cluster().kubeconfigPath },
      timeout: 60_000,
      encoding: "utf8",
    });
    return stdout;
  }

  before(async function () {
    // A build takes a few seconds; a fresh one (same inputs hash) is reused.
    this.timeout(180_000);
    await buildCli({ log: () => {} });
    binDir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-cli-bin-"));
    home = mkdtempSync(path.join(os.tmpdir(), "fedbackup-cli-home-"));
    sharedDir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-cli-shared-"));
    symlinkSync(cluster().binaries.kubectl.path, path.join(binDir, "kubectl"));
    symlinkSync(CLI_EXECUTABLE, path.join(binDir, "kubectl-fedbackup"));
    symlinkSync(CLI_EXECUTABLE, path.join(binDir, "fedbackup"));
    ns = await freshNamespace("cli-binary");
    await createVm(adminClient(), ns, sharedDir, { name: "plugin-vm", node: "node-a" });
  });

  after(function () {
    for (const dir of [binDir, home, sharedDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("has no node to fall back on: PATH holds only kubectl and the plugin", async function () {
    assert.equal(existsSync(path.join(binDir, "node")), false);
    await assert.rejects(runIsolated("/bin/sh", ["-c", "command -v node"]));
  });

  it("runs `kubectl fedbackup digest -A` and lists a VMI of this test", async function () {
    this.timeout(60_000);
    const table = await runIsolated(path.join(binDir, "kubectl"), ["fedbackup", "digest", "-A"]);
    const line = table.split("\n").find((l) => l.includes(ns) && l.includes("plugin-vm"));
    assert.ok(line, `the digest does not list ${ns}/plugin-vm:\n${table}`);
    assert.match(line, /\bnode-a\b/);
    assert.match(line, /\bRunning\b/);
    const rows = JSON.parse(
      await runIsolated(path.join(binDir, "kubectl"), ["fedbackup", "digest", "-n", ns, "-o", "json"]),
    ) as DigestRow[];
    assert.deepEqual(
      rows.map((r) => `${r.namespace}/${r.name}`),
      [`${ns}/plugin-vm`],
    );
  });

  it("answers as fedbackup too", async function () {
    const version = await runIsolated("fedbackup", ["version"]);
    assert.match(version, /^\d+\.\d+\.\d+/);
    const help = await runIsolated("kubectl-fedbackup", ["--help"]);
    assert.match(help, /digest/);
  });
});
