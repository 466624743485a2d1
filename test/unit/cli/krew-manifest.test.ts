// deploy/krew/fedbackup.yaml against the rules krew applies to a plugin manifest (its index/validation
// package): the kind and apiVersion, a valid name, a semver version with a leading "v", a short
// description, and for each platform a selector, an archive URI, a 64-hex sha256, a bin and the files.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as yaml from "js-yaml";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

interface Platform {
  selector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
  uri?: string;
  sha256?: string;
  bin?: string;
  files?: Array<{ from?: string; to?: string }>;
}

interface Plugin {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string };
  spec?: { version?: string; shortDescription?: string; homepage?: string; platforms?: Platform[] };
}

describe("krew plugin manifest", function () {
  const plugin = yaml.load(readFileSync(path.join(REPO_ROOT, "deploy/krew/fedbackup.yaml"), "utf8")) as Plugin;
  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { version: string };

  it("is a krew v1alpha2 Plugin named fedbackup, at the package's version", function () {
    assert.equal(plugin.apiVersion, "krew.googlecontainertools.github.com/v1alpha2");
    assert.equal(plugin.kind, "Plugin");
    assert.equal(plugin.metadata?.name, "fedbackup");
    // krew: the name is what follows "kubectl-" in the executable, lower case letters, digits and dashes.
    assert.match(plugin.metadata?.name ?? "", /^[a-z0-9][a-z0-9-]*$/);
    assert.equal(plugin.spec?.version, `v${pkg.version}`);
    assert.ok(plugin.spec?.shortDescription && plugin.spec.shortDescription.length <= 255);
    assert.ok(!plugin.spec?.shortDescription?.includes("\n"));
  });

  it("names for each platform an archive, its sha256 and the single executable", function () {
    const platforms = plugin.spec?.platforms ?? [];
    assert.ok(platforms.length > 0);
    const seen = new Set<string>();
    for (const p of platforms) {
      const labels = p.selector?.matchLabels ?? {};
      assert.ok(labels.os && labels.arch, `a platform without os and arch: ${JSON.stringify(p.selector)}`);
      const key = `${labels.os}/${labels.arch}`;
      assert.ok(!seen.has(key), `${key} twice`);
      seen.add(key);
      assert.match(p.uri ?? "", /^https:\/\/.+\.(tar\.gz|zip)$/, `${key}: uri`);
      assert.match(p.uri ?? "", new RegExp(`v${pkg.version.replaceAll(".", "\\.")}`), `${key}: uri of this version`);
      assert.match(p.sha256 ?? "", /^[0-9a-f]{64}$/, `${key}: sha256`);
      assert.equal(p.bin, "kubectl-fedbackup");
      assert.ok(
        p.files?.some((f) => f.from === "kubectl-fedbackup"),
        `${key}: the archive's files must include the executable`,
      );
    }
  });
});
