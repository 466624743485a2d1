// The record of NotReady transitions (src/k8s/node-health.ts) against the real API server: what one
// recorder writes, a recorder started later (an operator restart) reads back, for every node.
import assert from "node:assert/strict";
import { KubeClient } from "../../src/k8s/client.js";
import { NODE_HEALTH_CONFIGMAP, NodeHealthLog } from "../../src/k8s/node-health.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { cluster, freshNamespace } from "./setup.js";

type ConfigMap = KubeObject & { data?: Record<string, string> };

const at = (iso: string): number => Date.parse(iso);

describe("node health record", function () {
  let ns: string;
  let client: KubeClient;

  before(() => {
    client = new KubeClient(cluster().kubeConfig);
  });
  after(() => client.close());
  beforeEach(async () => {
    ns = await freshNamespace("node-health");
  });

  /** What a recorder started now (an operator restarted) knows, by node and time. */
  async function restarted(): Promise<Array<{ node: string; at: number }>> {
    const fresh = new KubeClient(cluster().kubeConfig);
    try {
      const log = new NodeHealthLog(fresh, ns);
      await log.load();
      return log.events().sort((a, b) => a.node.localeCompare(b.node) || a.at - b.at);
    } finally {
      fresh.close();
    }
  }

  it("keeps the transitions of every node across a restart", async () => {
    const first = new NodeHealthLog(client, ns);
    await first.load();
    await first.recordNotReady("node-b", at("2025-06-01T10:00:00Z"));
    await first.recordNotReady("node-c", at("2025-06-01T11:00:00Z"));
    await first.recordNotReady("node-b", at("2025-06-02T09:00:00Z"));
    // Seen again with the same lastTransitionTime: nothing new.
    await first.recordNotReady("node-c", at("2025-06-01T11:00:00Z"));

    assert.deepEqual(await restarted(), [
      { node: "node-b", at: at("2025-06-01T10:00:00Z") },
      { node: "node-b", at: at("2025-06-02T09:00:00Z") },
      { node: "node-c", at: at("2025-06-01T11:00:00Z") },
    ]);

    // The restarted recorder adds to what it read and removes nothing.
    const second = new NodeHealthLog(client, ns);
    await second.load();
    await second.recordNotReady("node-a", at("2025-06-03T08:00:00Z"));
    const cm = await client.get<ConfigMap>(Resources.ConfigMap, ns, NODE_HEALTH_CONFIGMAP);
    assert.deepEqual(cm.data, {
      "node-a": "2025-06-03T08:00:00.000Z",
      "node-b": "2025-06-01T10:00:00.000Z,2025-06-02T09:00:00.000Z",
      "node-c": "2025-06-01T11:00:00.000Z",
    });
    assert.equal(cm.metadata.labels?.["app.kubernetes.io/managed-by"], "fedbackup");
  });

  it("keeps the keys a server-side apply of an earlier version wrote", async () => {
    // What earlier operators left: one node's key applied under fedbackup's field manager.
    const earlier: ConfigMap = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: NODE_HEALTH_CONFIGMAP, namespace: ns },
      data: { "node-b": "2025-06-01T10:00:00.000Z" },
    };
    await client.apply(Resources.ConfigMap, earlier);
    const log = new NodeHealthLog(client, ns);
    await log.load();
    await log.recordNotReady("node-c", at("2025-06-01T11:00:00Z"));
    assert.deepEqual(await restarted(), [
      { node: "node-b", at: at("2025-06-01T10:00:00Z") },
      { node: "node-c", at: at("2025-06-01T11:00:00Z") },
    ]);
  });

  it("creates the record once when two recorders start on an empty namespace", async () => {
    const a = new NodeHealthLog(client, ns);
    const b = new NodeHealthLog(client, ns);
    await Promise.all([a.load(), b.load()]);
    await Promise.all([
      a.recordNotReady("node-b", at("2025-06-01T10:00:00Z")),
      b.recordNotReady("node-c", at("2025-06-01T11:00:00Z")),
    ]);
    assert.deepEqual(await restarted(), [
      { node: "node-b", at: at("2025-06-01T10:00:00Z") },
      { node: "node-c", at: at("2025-06-01T11:00:00Z") },
    ]);
  });
});
