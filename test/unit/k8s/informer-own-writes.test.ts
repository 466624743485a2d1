import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeClient } from "../../../src/k8s/client.js";
import { Informer, type InformerEventMeta } from "../../../src/k8s/informer.js";
import { Resources } from "../../../src/k8s/resources.js";
import type { KubeObject, WatchEvent } from "../../../src/k8s/types.js";

const node = (rv: string, note = ""): KubeObject => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: { name: "n1", resourceVersion: rv, annotations: { note } },
});

/** An informer over a watch the test feeds by hand. */
async function fedInformer() {
  let feed: ((e: WatchEvent<KubeObject>) => void) | undefined;
  const client = {
    list: () => Promise.resolve({ items: [node("10")], metadata: { resourceVersion: "10" } }),
    watch: (_t: unknown, opts: { signal?: AbortSignal }, onEvent: (e: WatchEvent<KubeObject>) => void) => {
      feed = onEvent;
      return new Promise<void>((resolve) => opts.signal?.addEventListener("abort", () => resolve()));
    },
  } as unknown as KubeClient;
  const informer = new Informer<KubeObject>(client, Resources.Node, {}, { warn: () => {} });
  const seen: Array<{ rv: string; note: string; ownWrite: boolean }> = [];
  informer.on((_event, obj, _old, meta?: InformerEventMeta) =>
    seen.push({
      rv: obj.metadata.resourceVersion!,
      note: obj.metadata.annotations?.note ?? "",
      ownWrite: meta?.ownWrite ?? false,
    }),
  );
  await informer.start();
  while (!feed) await sleep(1);
  return { informer, seen, feed: (type: "MODIFIED" | "DELETED", obj: KubeObject) => feed!({ type, object: obj }) };
}

describe("Informer: the echo of this process's own writes", () => {
  it("flags the watch event that brings back exactly the version observe() recorded", async () => {
    const { informer, seen, feed } = await fedInformer();
    informer.observe(node("12", "ours"));
    feed("MODIFIED", node("12", "ours"));
    feed("MODIFIED", node("13", "the agent's"));
    assert.deepEqual(seen.slice(1), [
      { rv: "12", note: "ours", ownWrite: true },
      { rv: "13", note: "the agent's", ownWrite: false },
    ]);
    await informer.stop();
  });

  it("does not flag someone else's change that arrives after our newer write was recorded", async () => {
    const { informer, seen, feed } = await fedInformer();
    informer.observe(node("12", "ours, on top of the agent's"));
    // The agent's patch (11) was still on its way when our write (12) came back from the API server.
    feed("MODIFIED", node("11", "the agent's"));
    feed("MODIFIED", node("12", "ours, on top of the agent's"));
    assert.deepEqual(
      seen.slice(1).map((s) => [s.rv, s.ownWrite]),
      [
        ["12", false],
        ["12", true],
      ],
      "the cache keeps our newer copy, and the agent's change still wakes its handlers",
    );
    await informer.stop();
  });

  it("flags nothing once a newer version went past the one recorded", async () => {
    const { informer, seen, feed } = await fedInformer();
    informer.observe(node("12"));
    feed("MODIFIED", node("14", "later"));
    feed("MODIFIED", node("12"));
    assert.deepEqual(
      seen.slice(1).map((s) => s.ownWrite),
      [false, false],
    );
    await informer.stop();
  });
});
