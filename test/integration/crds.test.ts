import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { invalidResources, validResources } from "../fixtures/invalid-resources.js";
import { cluster, freshNamespace } from "./setup.js";

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string };
}

function withNamespace<T extends object>(manifest: T, namespace: string): T & Manifest {
  const m = structuredClone(manifest) as T & Manifest;
  m.metadata.namespace = namespace;
  return m;
}

function apiErrorMessage(err: unknown): string {
  if (!(err instanceof k8s.ApiException)) throw err;
  const body =
    typeof err.body === "string" ? (JSON.parse(err.body) as { message?: string }) : (err.body as { message?: string });
  return body?.message ?? String(err.body);
}

describe("fedbackup CRDs on the API server", () => {
  let namespace: string;
  let objects: k8s.KubernetesObjectApi;
  before(async () => {
    namespace = await freshNamespace("crds");
    objects = cluster().kubeConfig.makeApiClient(k8s.KubernetesObjectApi);
  });

  it("are Established with status subresources, short names and printer columns", async () => {
    const ext = cluster().kubeConfig.makeApiClient(k8s.ApiextensionsV1Api);
    for (const [name, shortName] of [
      ["federatedbackups.fedbackup.io", "fb"],
      ["workloadrestores.fedbackup.io", "wr"],
      ["nodesnapshots.fedbackup.io", "nsnap"],
      ["backuplocations.fedbackup.io", "bl"],
    ] as const) {
      const crd = await ext.readCustomResourceDefinition({ name });
      assert.ok(
        crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True"),
        `${name} Established`,
      );
      assert.ok(
        crd.status?.conditions?.some((c) => c.type === "NamesAccepted" && c.status === "True"),
        `${name} NamesAccepted`,
      );
      assert.ok(crd.spec.names.shortNames?.includes(shortName));
      assert.deepEqual(crd.spec.versions[0]?.subresources?.status, {});
      assert.ok((crd.spec.versions[0]?.additionalPrinterColumns ?? []).some((c) => c.name === "Phase"));
    }
  });

  it("`kubectl explain federatedbackup.spec` shows the field descriptions", () => {
    const out = cluster().kubectl(["explain", "federatedbackup.spec"]);
    assert.match(out, /GROUP:\s+fedbackup\.io/);
    assert.match(out, /location\s+<Object>\n/, "location is optional: spec.locationRef may name a BackupLocation");
    assert.match(out, /locationRef\s+<Object>\n/);
    assert.match(out, /sharedVolume\s+<Object>\n/, "sharedVolume is optional");
    assert.match(out, /storageGroup\s+<string>/);
    assert.match(out, /The shared ReadWriteMany filesystem that holds the VM disk images/);
    const snapshot = cluster().kubectl(["explain", "fb.spec.snapshot.method"]);
    assert.match(snapshot, /ENUM:\s+Auto\s+Reflink\s+CSI\s+Copy/);
    const restore = cluster().kubectl(["explain", "workloadrestore.spec.conflictPolicy"]);
    assert.match(restore, /Migrate/);
  });

  it("accepts valid resources and fills in defaults", async () => {
    for (const { title, manifest } of validResources) {
      const created = (await objects.create(
        withNamespace(manifest, namespace) as unknown as k8s.KubernetesObject,
      )) as unknown as {
        spec: Record<string, unknown>;
      };
      assert.ok(created.spec, title);
    }
    const fb = (await objects.read({
      apiVersion: "fedbackup.io/v1alpha1",
      kind: "FederatedBackup",
      metadata: { name: "nightly", namespace },
    })) as unknown as {
      spec: { snapshot: { method: string; quiesce: string }; extractAt: string; verification: { maxRounds: number } };
    };
    assert.equal(fb.spec.snapshot.method, "Auto");
    assert.equal(fb.spec.snapshot.quiesce, "GuestAgent");
    assert.equal(fb.spec.extractAt, "Backup");
    assert.equal(fb.spec.verification.maxRounds, 3);
    const bl = (await objects.read({
      apiVersion: "fedbackup.io/v1alpha1",
      kind: "BackupLocation",
      metadata: { name: "offsite", namespace },
    })) as unknown as { spec: { validationFrequency: string } };
    assert.equal(bl.spec.validationFrequency, "1m");
  });

  it(`rejects ${invalidResources.length} invalid resources, each with a readable message`, async () => {
    assert.ok(invalidResources.length >= 10);
    const failures: string[] = [];
    for (const { title, manifest, message, existing } of invalidResources) {
      try {
        if (existing) {
          const live = await objects.create(withNamespace(existing, namespace));
          const update = withNamespace(manifest, namespace);
          update.metadata.resourceVersion = live.metadata.resourceVersion;
          await objects.replace(update);
        } else {
          await objects.create(withNamespace(manifest, namespace));
        }
        failures.push(`${title}: accepted`);
      } catch (err) {
        const text = apiErrorMessage(err);
        const ok = typeof message === "string" ? text.includes(message) : message.test(text);
        if (!ok) failures.push(`${title}: got "${text}"`);
      }
    }
    assert.deepEqual(failures, []);
  });
});
