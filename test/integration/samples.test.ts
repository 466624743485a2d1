// Every object of samples/*.yaml is accepted by the API server: the fedbackup ones by the real CRDs (schema
// and validation rules) and admission policies, PersistentVolumes and claims by Kubernetes itself, the
// KubeVirt and CDI ones by the test fixtures' CRDs (which check little: test/unit/samples checks their
// shapes). Server-side dry runs, in a fresh namespace standing in for `default` (as samples/shared-volume.yaml
// says to change every `default` together), so nothing is left behind and no other test's objects collide.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { loadAll } from "js-yaml";
import { resourcePath, Resources, type ResourceType } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { REPO_ROOT } from "../harness/binaries.js";
import { DataVolumeResource } from "../harness/workloads.js";
import { adminClient, kubevirtDouble } from "./operator-env.js";
import { freshNamespace } from "./setup.js";

const TYPES: Record<string, ResourceType> = {
  FederatedBackup: Resources.FederatedBackup,
  WorkloadRestore: Resources.WorkloadRestore,
  BackupLocation: Resources.BackupLocation,
  BackupSchedule: Resources.BackupSchedule,
  PersistentVolume: Resources.PersistentVolume,
  PersistentVolumeClaim: Resources.PersistentVolumeClaim,
  VirtualMachine: Resources.VirtualMachine,
  DataVolume: DataVolumeResource,
};

describe("samples/*.yaml against the API server", function () {
  this.timeout(60_000);
  let ns: string;

  before(async () => {
    // The KubeVirt fixture CRDs (VirtualMachine) come with the KubeVirt double.
    await kubevirtDouble();
    ns = await freshNamespace("samples");
  });

  const files = readdirSync(path.join(REPO_ROOT, "samples")).filter((f) => f.endsWith(".yaml"));
  it("has samples to check", () => assert.ok(files.length >= 5, files.join(", ")));

  for (const file of files) {
    it(`${file}: every object is accepted (dry run)`, async () => {
      const text = readFileSync(path.join(REPO_ROOT, "samples", file), "utf8").replaceAll(
        /\bnamespace: default\b/g,
        `namespace: ${ns}`,
      );
      const docs = (loadAll(text) as Array<KubeObject | null>).filter((d): d is KubeObject => !!d);
      assert.ok(docs.length > 0);
      for (const doc of docs) {
        const type = TYPES[doc.kind ?? ""];
        assert.ok(type, `${file}: no type known for kind ${doc.kind}`);
        // Cluster-scoped names (PersistentVolumes) get the namespace's prefix, so that they collide with nothing.
        const obj = type.namespaced
          ? doc
          : { ...doc, metadata: { ...doc.metadata, name: `${ns}-${doc.metadata.name}` } };
        const created = await adminClient().request<KubeObject>("POST", resourcePath(type, obj.metadata.namespace), {
          body: obj,
          query: { dryRun: "All", fieldValidation: "Strict" },
        });
        assert.equal(created.kind, doc.kind, `${file}: ${doc.kind} ${doc.metadata.name}`);
      }
    });
  }
});
