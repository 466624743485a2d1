// Backups carry each VM's definition: the agent (with its step's token, RBAC enforced by the real API server)
// reads the VirtualMachine, its standalone DataVolumes and, with includeSecrets, the Secrets it references,
// and writes definition.json (and secrets.json, mode 0600) before the VM's manifest, which lists them with
// their sha256. A VMI without a VirtualMachine is captured without a definition. A backup with
// includeSecrets while the operator may not read Secrets fails at once with SecretsNotPermitted.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { readWorkloadManifest } from "../../src/agent/manifest.js";
import type { VirtualMachine } from "../../src/api/kubevirt.js";
import type { FederatedBackup, NodeSnapshot } from "../../src/api/v1alpha1/index.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { cleanupClaimDisks, createVirtualMachine, createVm } from "../harness/workloads.js";
import {
  adminClient,
  backupEnv,
  backupFinished,
  backupManifest,
  grantOperatorSecretReads,
  kubevirtDouble,
  podRunner,
  startOperator,
} from "./operator-env.js";

const KiB = 1024;
const SECRET_DATA = Buffer.from("#cloud-config\npassword: not-for-logs\n").toString("base64");

describe("FederatedBackup: each VM's definition", function () {
  this.timeout(300_000);

  before(async () => {
    await kubevirtDouble();
    await podRunner();
  });

  it("stores each VM's definition (and its Secrets only with includeSecrets, when the operator may read them)", async () => {
    const env = await backupEnv("definitions");
    const ns = env.namespace;
    const client = adminClient();
    const operator = await startOperator();
    const grantName = `fedbackup-test-secrets-${ns}`;
    let revokeSecretReads: (() => Promise<void>) | undefined;
    try {
      await client.create(Resources.Secret, {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "ci-user", namespace: ns },
        type: "Opaque",
        data: { userdata: SECRET_DATA },
      } as KubeObject);
      await createVirtualMachine(client, ns, env.shared.hostDir, {
        name: "host-vm",
        node: "node-a",
        labels: { tier: "web" },
      });
      await createVirtualMachine(client, ns, env.shared.hostDir, {
        name: "claim-vm",
        node: "node-a",
        claimDisks: [
          { source: "persistentVolumeClaim", volumeMode: "Filesystem", size: 64 * KiB },
          { source: "dataVolume", volumeMode: "Filesystem", size: 32 * KiB },
        ],
      });
      await createVirtualMachine(client, ns, env.shared.hostDir, { name: "ci-vm", node: "node-b" });
      // Its cloud-init user data comes from the Secret (the VMI, made before, need not know).
      const ci = await client.get<VirtualMachine & KubeObject>(Resources.VirtualMachine, ns, "ci-vm");
      await client.patch(Resources.VirtualMachine, ns, "ci-vm", {
        spec: {
          template: {
            spec: {
              volumes: [
                ...(ci.spec?.template?.spec?.volumes ?? []),
                { name: "cloudinit", cloudInitNoCloud: { secretRef: { name: "ci-user" } } },
              ],
            },
          },
        },
      });
      // A VMI without a VirtualMachine.
      await createVm(client, ns, env.shared.hostDir, { name: "bare", node: "node-b" });

      // 1. Without includeSecrets: definitions, no Secrets.
      await client.create(Resources.FederatedBackup, backupManifest(env, "plain", { snapshot: { method: "Copy" } }));
      const plain = await backupFinished(ns, "plain", 240_000);
      assert.equal(plain.status?.phase, "Completed", JSON.stringify(plain.status, null, 1));
      const plainDir = path.join(env.location.hostDir, plain.status.backupPath!);
      const vms = new Map(
        (await client.list<VirtualMachine & KubeObject>(Resources.VirtualMachine, { namespace: ns })).items.map(
          (vm) => [vm.metadata.name!, vm],
        ),
      );
      for (const name of ["host-vm", "claim-vm", "ci-vm"]) {
        const manifest = await readWorkloadManifest(plainDir, ns, name);
        const file = path.join(plainDir, ns, name, "definition.json");
        const bytes = readFileSync(file);
        assert.deepEqual(manifest.definition, {
          path: "definition.json",
          bytes: bytes.length,
          sha256: createHash("sha256").update(bytes).digest("hex"),
        });
        const definition = JSON.parse(bytes.toString()) as {
          virtualMachine: { metadata: Record<string, unknown>; spec: unknown; status?: unknown };
          dataVolumes: Array<{ metadata: { name: string }; status?: unknown }>;
          references: { secrets: Array<{ name: string; usedBy: string }> };
        };
        const vm = vms.get(name)!;
        assert.deepEqual(definition.virtualMachine.spec, vm.spec, `${name}: the VM's spec`);
        assert.deepEqual(definition.virtualMachine.metadata.labels, vm.metadata.labels, `${name}: its labels`);
        assert.equal(definition.virtualMachine.status, undefined);
        for (const key of ["uid", "resourceVersion", "managedFields", "creationTimestamp", "generation"]) {
          assert.equal(definition.virtualMachine.metadata[key], undefined, `${name}: no ${key}`);
        }
        assert.equal(existsSync(path.join(plainDir, ns, name, "secrets.json")), false, `${name}: no secrets.json`);
        if (name === "ci-vm") {
          assert.deepEqual(definition.references.secrets, [
            { name: "ci-user", usedBy: "volume cloudinit (cloudInitNoCloud.secretRef)" },
          ]);
        }
        if (name === "claim-vm") {
          assert.deepEqual(
            definition.dataVolumes.map((d) => [d.metadata.name, d.status]),
            [["claim-vm-disk1", undefined]],
          );
        }
      }
      assert.equal((await readWorkloadManifest(plainDir, ns, "bare")).definition, undefined);
      assert.equal(existsSync(path.join(plainDir, ns, "bare", "definition.json")), false);
      const captured = async (backup: string) =>
        new Map(
          (
            await client.list<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, {
              namespace: ns,
              labelSelector: `fedbackup.io/backup=${backup}`,
            })
          ).items.flatMap((s) => (s.status?.captured ?? []).map((c) => [c.name, c] as const)),
        );
      const plainCaptured = await captured("plain");
      assert.deepEqual(
        ["bare", "ci-vm", "claim-vm", "host-vm"].map((n) => [
          n,
          plainCaptured.get(n)?.definition,
          plainCaptured.get(n)?.secrets,
        ]),
        [
          ["bare", false, undefined],
          ["ci-vm", true, undefined],
          ["claim-vm", true, undefined],
          ["host-vm", true, undefined],
        ],
      );

      // 2. includeSecrets while the operator may not read Secrets (the chart's default): failed, nothing done.
      await client.create(
        Resources.FederatedBackup,
        backupManifest(env, "refused", { snapshot: { method: "Copy" }, includeSecrets: true }),
      );
      const refused = await backupFinished(ns, "refused", 60_000);
      assert.equal(refused.status?.phase, "Failed");
      assert.match(JSON.stringify(refused.status?.conditions), /SecretsNotPermitted/);

      // 3. With get on Secrets (what the chart's backup.includeSecrets adds): the Secret is stored, mode 0600.
      revokeSecretReads = await grantOperatorSecretReads(grantName);
      await client.create(
        Resources.FederatedBackup,
        backupManifest(env, "secrets", { snapshot: { method: "Copy" }, includeSecrets: true }),
      );
      const withSecrets: FederatedBackup = await backupFinished(ns, "secrets", 240_000);
      assert.equal(withSecrets.status?.phase, "Completed", JSON.stringify(withSecrets.status, null, 1));
      const secretsDir = path.join(env.location.hostDir, withSecrets.status.backupPath!, ns, "ci-vm");
      const secretsFile = path.join(secretsDir, "secrets.json");
      assert.equal(statSync(secretsFile).mode & 0o777, 0o600);
      const stored = JSON.parse(readFileSync(secretsFile, "utf8")) as {
        secrets: Array<{ metadata: { name: string }; data: Record<string, string> }>;
      };
      assert.deepEqual(
        stored.secrets.map((s) => [s.metadata.name, s.data.userdata]),
        [["ci-user", SECRET_DATA]],
      );
      const manifest = await readWorkloadManifest(
        path.join(env.location.hostDir, withSecrets.status.backupPath!),
        ns,
        "ci-vm",
      );
      assert.equal(manifest.secrets?.sha256, createHash("sha256").update(readFileSync(secretsFile)).digest("hex"));
      const secretsCaptured = await captured("secrets");
      assert.equal(secretsCaptured.get("ci-vm")?.secrets, 1);
      assert.equal(secretsCaptured.get("host-vm")?.secrets, 0, "includeSecrets: a VM referencing none stores none");
      // The step names the Secret its agent may read; the other VMs' steps name none.
      const steps = (
        await client.list<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, {
          namespace: ns,
          labelSelector: "fedbackup.io/backup=secrets",
        })
      ).items;
      assert.deepEqual(
        steps.flatMap((s) => (s.spec.workloads ?? []).filter((w) => w.secrets).map((w) => [w.name, w.secrets])),
        [["ci-vm", ["ci-user"]]],
      );
    } finally {
      await operator.stop();
      await revokeSecretReads?.();
      await cleanupClaimDisks(ns);
      env.cleanup();
    }
  });
});
