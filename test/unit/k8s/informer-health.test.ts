import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeClient } from "../../../src/k8s/client.js";
import { ApiError } from "../../../src/k8s/errors.js";
import { Informer } from "../../../src/k8s/informer.js";
import { Resources } from "../../../src/k8s/resources.js";

async function until(done: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("condition not reached");
    await sleep(5);
  }
}

describe("Informer health", () => {
  it("tells since when its watch has been broken, and forgets it once a watch is accepted again", async () => {
    let serverUp = true;
    const client = {
      list: () => Promise.resolve({ items: [], metadata: { resourceVersion: "1" } }),
      watch: (_t: unknown, opts: { signal?: AbortSignal; onOpen?: () => void }) => {
        if (!serverUp) return Promise.reject(new ApiError(0, "TransportError", "connection refused"));
        opts.onOpen?.();
        // Open until the informer stops, or until the server goes away.
        return new Promise<void>((resolve, reject) => {
          const check = setInterval(() => {
            if (serverUp) return;
            clearInterval(check);
            reject(new ApiError(0, "WatchBroken", "connection reset"));
          }, 5);
          opts.signal?.addEventListener("abort", () => {
            clearInterval(check);
            resolve();
          });
        });
      },
    } as unknown as KubeClient;
    const informer = new Informer(client, Resources.Node, {}, { warn: () => {} });
    await informer.start();
    await until(() => informer.health().lastSuccessAt !== undefined);
    assert.equal(informer.health().brokenSince, undefined);
    assert.equal(informer.health().synced, true);

    const cut = Date.now();
    serverUp = false;
    await until(() => informer.health().brokenSince !== undefined);
    const since = informer.health().brokenSince!;
    assert.ok(since >= cut);
    await sleep(300); // retries keep failing: still broken since the first failure
    assert.equal(informer.health().brokenSince, since);

    serverUp = true;
    await until(() => informer.health().brokenSince === undefined);
    await informer.stop();
  });
});
