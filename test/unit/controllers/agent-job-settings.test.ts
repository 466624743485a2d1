import assert from "node:assert/strict";
import type { FederatedBackup, NodeSnapshot } from "../../../src/api/v1alpha1/index.js";
import { buildAgentJob, buildCleanupJob } from "../../../src/controllers/federatedbackup/builders.js";
import { parseAgentJobSettings, type OperatorSettings } from "../../../src/controllers/runtime/agent-job.js";

const backup = {
  apiVersion: "fedbackup.io/v1alpha1",
  kind: "FederatedBackup",
  metadata: { name: "nightly", namespace: "team-a", uid: "0123456789" },
  spec: {
    sharedVolume: { claimName: "vmdisks", nodeMountPath: "/var/lib/vms" },
    location: { persistentVolumeClaim: { claimName: "backups" } },
    workloads: {},
  },
} as unknown as FederatedBackup;

const step = {
  apiVersion: "fedbackup.io/v1alpha1",
  kind: "NodeSnapshot",
  metadata: { name: "nightly-r1-node-a", namespace: "team-a", uid: "u" },
  spec: {
    backupName: "nightly",
    backupUID: "0123456789",
    node: "node-a",
    round: 1,
    order: 1,
    sharedVolume: { claimName: "vmdisks", nodeMountPath: "/var/lib/vms" },
    location: { persistentVolumeClaim: { claimName: "backups" }, path: "team-a/nightly-01234567" },
    snapshot: { method: "Copy", quiesce: "None", freezeTimeout: "30s", maxFreeze: "2m" },
    extractAt: "Backup",
    workloads: [],
  },
} as unknown as NodeSnapshot;

interface PodSpec {
  nodeName: string;
  imagePullSecrets?: unknown;
  nodeSelector?: unknown;
  tolerations?: unknown;
  priorityClassName?: unknown;
  containers: Array<{ image: string; imagePullPolicy: string; resources: unknown }>;
}
const podOf = (job: { spec: Record<string, unknown> }) => (job.spec.template as { spec: PodSpec }).spec;

describe("agent Job settings (the chart's agent.* values)", () => {
  const json = JSON.stringify({
    imagePullPolicy: "Always",
    imagePullSecrets: [{ name: "registry-creds" }],
    nodeSelector: { "fedbackup.io/agent": "true" },
    tolerations: [{ key: "dedicated", operator: "Equal", value: "vms", effect: "NoSchedule" }],
    resources: { requests: { cpu: "250m", memory: "128Mi" }, limits: { memory: "1Gi" } },
    priorityClassName: "system-node-critical",
  });

  it("a backup step's Job and a cleanup Job carry the pull secrets, node selector, tolerations, resources and priority", () => {
    const settings: OperatorSettings = {
      agentImage: "registry.example/fedbackup:1.2.3",
      ...parseAgentJobSettings(json),
    };
    for (const job of [buildAgentJob(backup, step, settings), buildCleanupJob(backup, "node-b", settings)]) {
      const pod = podOf(job);
      assert.deepEqual(pod.imagePullSecrets, [{ name: "registry-creds" }]);
      assert.deepEqual(pod.nodeSelector, { "fedbackup.io/agent": "true" });
      assert.deepEqual(pod.tolerations, [{ key: "dedicated", operator: "Equal", value: "vms", effect: "NoSchedule" }]);
      assert.equal(pod.priorityClassName, "system-node-critical");
      assert.equal(pod.containers[0]!.image, "registry.example/fedbackup:1.2.3");
      assert.equal(pod.containers[0]!.imagePullPolicy, "Always");
      assert.deepEqual(pod.containers[0]!.resources, {
        requests: { cpu: "250m", memory: "128Mi" },
        limits: { memory: "1Gi" },
      });
    }
    assert.equal(podOf(buildAgentJob(backup, step, settings)).nodeName, "node-a");
  });

  it("without settings the Job keeps its defaults: every taint tolerated, no selector, secrets or priority", () => {
    for (const text of [undefined, "", "{}"]) {
      const pod = podOf(buildAgentJob(backup, step, { agentImage: "img", ...parseAgentJobSettings(text) }));
      assert.deepEqual(pod.tolerations, [{ operator: "Exists" }]);
      assert.equal(pod.nodeSelector, undefined);
      assert.equal(pod.imagePullSecrets, undefined);
      assert.equal(pod.priorityClassName, undefined);
      assert.equal(pod.containers[0]!.imagePullPolicy, "IfNotPresent");
      assert.deepEqual(pod.containers[0]!.resources, {
        requests: { cpu: "100m", memory: "64Mi" },
        limits: { memory: "256Mi" },
      });
    }
  });

  it("refuses FEDBACKUP_AGENT_JOB that is not JSON, has an unknown key or a wrong type, naming it", () => {
    assert.throws(() => parseAgentJobSettings("{"), /FEDBACKUP_AGENT_JOB is not JSON/);
    assert.throws(() => parseAgentJobSettings("[]"), /must be a JSON object/);
    assert.throws(() => parseAgentJobSettings('{"tolerations":{}}'), /FEDBACKUP_AGENT_JOB.tolerations/);
    assert.throws(() => parseAgentJobSettings('{"nodeSelectors":{}}'), /unknown key nodeSelectors/);
    assert.throws(() => parseAgentJobSettings('{"imagePullSecrets":["x"]}'), /imagePullSecrets/);
    assert.throws(() => parseAgentJobSettings('{"imagePullPolicy":"Sometimes"}'), /imagePullPolicy/);
  });
});
