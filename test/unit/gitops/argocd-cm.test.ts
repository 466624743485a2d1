// deploy/gitops/argocd-cm.yaml carries exactly the health checks in deploy/gitops/fedbackup.io/, under the
// keys Argo CD reads (resource.customizations.health.<group>_<kind>).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as yaml from "js-yaml";
import { ARGOCD_CM_FILE, HEALTH_KINDS, healthScriptPath, renderArgocdCm } from "../../../hack/gen-argocd-cm.js";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

describe("Argo CD argocd-cm snippet", function () {
  const text = readFileSync(path.join(REPO_ROOT, ARGOCD_CM_FILE), "utf8");

  it("is up to date with the health scripts (npx tsx hack/gen-argocd-cm.ts)", function () {
    assert.equal(text, renderArgocdCm());
  });

  it("holds each script verbatim under its argocd-cm key", function () {
    const cm = yaml.load(text) as { kind: string; metadata: { name: string }; data: Record<string, string> };
    assert.equal(cm.kind, "ConfigMap");
    assert.equal(cm.metadata.name, "argocd-cm");
    assert.deepEqual(
      Object.keys(cm.data).sort(),
      HEALTH_KINDS.map((k) => `resource.customizations.health.fedbackup.io_${k}`).sort(),
    );
    for (const kind of HEALTH_KINDS) {
      assert.equal(
        cm.data[`resource.customizations.health.fedbackup.io_${kind}`],
        readFileSync(healthScriptPath(kind), "utf8").trimEnd() + "\n",
      );
    }
  });
});
