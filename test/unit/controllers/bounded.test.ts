import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { mapBounded } from "../../../src/controllers/runtime/bounded.js";

describe("mapBounded", () => {
  it("keeps at most the limit in flight and returns the results in the items' order", async () => {
    let inFlight = 0;
    let most = 0;
    const items = Array.from({ length: 50 }, (_, i) => i);
    const results = await mapBounded(items, 16, async (i) => {
      most = Math.max(most, ++inFlight);
      await sleep((i * 7) % 5);
      inFlight--;
      return i * 2;
    });
    assert.equal(most, 16);
    assert.deepEqual(
      results,
      items.map((i) => i * 2),
    );
  });

  it("rejects with the first failure once the calls started have settled, and starts no new one", async () => {
    const started: number[] = [];
    let settled = 0;
    await assert.rejects(
      mapBounded(
        Array.from({ length: 20 }, (_, i) => i),
        4,
        async (i) => {
          started.push(i);
          await sleep(i === 1 ? 1 : 20);
          settled++;
          if (i === 1) throw new Error("refused");
        },
      ),
      /refused/,
    );
    assert.equal(settled, started.length, "nothing left running");
    assert.ok(started.length < 20, `started ${started.length}`);
  });

  it("does nothing for no items", async () => {
    assert.deepEqual(await mapBounded([], 16, () => Promise.reject(new Error("called"))), []);
  });
});
