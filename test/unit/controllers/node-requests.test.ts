import assert from "node:assert/strict";
import {
  podRequests,
  requestsByNode,
  slimPod,
  type PodObject,
} from "../../../src/controllers/runtime/node-requests.js";

const pod = (name: string, spec: PodObject["spec"], phase = "Running"): PodObject => ({
  metadata: { name, namespace: "ns", resourceVersion: "1" },
  spec,
  status: { phase },
});
const c = (cpu?: string, memory?: string) => ({
  resources: { requests: { ...(cpu ? { cpu } : {}), ...(memory ? { memory } : {}) } },
});

describe("node requests", () => {
  it("counts a pod as the scheduler does: containers summed, init containers at their peak, sidecars, overhead", () => {
    assert.deepEqual(podRequests(pod("p", { containers: [c("250m", "64Mi"), c("1", "1Gi")] })), {
      cpuMilli: 1250,
      memoryBytes: 64 * 2 ** 20 + 2 ** 30,
    });
    // An init container larger than the containers sets the pod's request.
    assert.deepEqual(podRequests(pod("p", { containers: [c("100m")], initContainers: [c("2")] })), {
      cpuMilli: 2000,
      memoryBytes: 0,
    });
    // A sidecar (restartPolicy Always) runs beside the containers; overhead is added on top.
    assert.deepEqual(
      podRequests(
        pod("p", {
          containers: [c("100m")],
          initContainers: [{ ...c("200m"), restartPolicy: "Always" }],
          overhead: { cpu: "50m" },
        }),
      ),
      { cpuMilli: 350, memoryBytes: 0 },
    );
  });

  it("sums by node the pods that hold resources, and slimming keeps the same totals", () => {
    const pods = [
      pod("a", { nodeName: "n1", containers: [c("1", "1Gi")] }),
      pod("b", { nodeName: "n1", containers: [c("500m")] }),
      pod("done", { nodeName: "n1", containers: [c("8")] }, "Succeeded"),
      pod("unbound", { containers: [c("8")] }, "Pending"),
      pod("c", { nodeName: "n2", containers: [c(undefined, "512Mi")] }),
    ];
    const expected = new Map([
      ["n1", { cpuMilli: 1500, memoryBytes: 2 ** 30 }],
      ["n2", { cpuMilli: 0, memoryBytes: 512 * 2 ** 20 }],
    ]);
    assert.deepEqual(requestsByNode(pods), expected);
    assert.deepEqual(requestsByNode(pods.map(slimPod)), expected);
    assert.deepEqual(Object.keys(slimPod(pods[0]!).metadata).sort(), ["name", "namespace", "resourceVersion"]);
  });
});
