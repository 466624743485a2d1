// A second, empty cluster beside the shared one, for disaster recovery: its own control plane (3 simulated
// nodes, fedbackup's CRDs and admission policies), the operator's RBAC as the chart renders it with get on
// Secrets (backupLocations.s3), a pod runner, the KubeVirt doubles and the operator itself. It shares
// nothing with the first cluster but what a test gives both (an object store).
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { KubeClient } from "../../src/k8s/client.js";
import { ControlPlane, defaultNodes } from "../harness/control-plane.js";
import { KubeVirtDouble } from "../harness/kubevirt-double.js";
import { SimulatedVmController } from "../harness/kubevirt-vms.js";
import { applyOperatorRbac } from "../harness/operator-rbac.js";
import { PodRunner } from "../harness/pod-runner.js";
import { createVolume, type VolumeFixture } from "../harness/workloads.js";
import {
  creatorPoliciesSettled,
  grantOperatorSecretReads,
  startOperator,
  type RunningOperator,
} from "./operator-env.js";
import { AGENT_POD_SECURITY } from "./setup.js";
import { Resources } from "../../src/k8s/resources.js";

export interface SecondCluster {
  controlPlane: ControlPlane;
  /** Its administrator. */
  client: KubeClient;
  operator: RunningOperator;
  /** A namespace of that name, with a shared volume claim `vmdisks` on a fresh, empty directory. */
  namespace(name: string): Promise<VolumeFixture>;
  stop(): Promise<void>;
}

export async function startSecondCluster(): Promise<SecondCluster> {
  const controlPlane = await ControlPlane.start({ nodes: defaultNodes(3) });
  const client = new KubeClient(controlPlane.kubeConfig);
  const root = mkdtempSync(path.join(os.tmpdir(), "fedbackup-second-"));
  const stops: Array<() => Promise<void>> = [];
  try {
    await applyOperatorRbac(client);
    stops.push(await grantOperatorSecretReads("fedbackup-test-second-cluster", client));
    const runner = new PodRunner(controlPlane);
    await runner.start();
    stops.push(() => runner.stop());
    const double = new KubeVirtDouble(controlPlane);
    await double.start();
    stops.push(() => double.stop());
    const vms = new SimulatedVmController(client);
    await vms.start();
    stops.push(() => vms.stop());
    // BackupLocations record their creator; the operator trusts the record once the policies have settled.
    await creatorPoliciesSettled(client);
    const operator = await startOperator({ controlPlane });
    stops.push(() => operator.stop());
    return {
      controlPlane,
      client,
      operator,
      async namespace(name) {
        await client.create(Resources.Namespace, {
          apiVersion: "v1",
          kind: "Namespace",
          metadata: { name, labels: AGENT_POD_SECURITY },
        });
        return createVolume(client, name, "vmdisks", path.join(root, name, "shared"));
      },
      async stop() {
        for (const stop of stops.reverse()) await stop().catch(() => {});
        client.close();
        await controlPlane.stop();
        rmSync(root, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    client.close();
    await controlPlane.stop();
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
}
