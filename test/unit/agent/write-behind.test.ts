import assert from "node:assert/strict";
import type { PositionalSink } from "../../../src/storage/positional.js";
import { WriteBehind } from "../../../src/agent/write-behind.js";

// A sink whose data syncs are counted and finish only when the test says so.
function syncingSink() {
  const started: { finish: () => void; fail: (err: Error) => void }[] = [];
  const sink: PositionalSink = {
    write: (_buffer, _offset, length) => Promise.resolve({ bytesWritten: length }),
    truncate: () => Promise.resolve(),
    datasync: () =>
      new Promise<void>((resolve, reject) => {
        started.push({ finish: resolve, fail: reject });
      }),
  };
  return { sink, started };
}

// A write the test completes by hand.
function pendingWrite() {
  let complete = () => {};
  const written = new Promise<void>((resolve) => {
    complete = resolve;
  });
  return { written, complete };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("agent/write-behind", () => {
  it("starts a data sync once enough bytes are queued, and only after the write that crossed the mark", async () => {
    const { sink, started } = syncingSink();
    const behind = new WriteBehind(10, () => assert.fail("nothing fails here"));
    behind.wrote(sink, 4, Promise.resolve());
    behind.wrote(sink, 5, Promise.resolve());
    await turn();
    assert.equal(started.length, 0, "9 of 10 bytes: no sync yet");
    const crossing = pendingWrite();
    behind.wrote(sink, 1, crossing.written);
    await turn();
    assert.equal(started.length, 0, "the sync waits for the write it follows");
    crossing.complete();
    await turn();
    assert.equal(started.length, 1);
  });

  it("runs one sync at a time and starts the next one as soon as enough is queued after it", async () => {
    const { sink, started } = syncingSink();
    const behind = new WriteBehind(10, () => assert.fail("nothing fails here"));
    behind.wrote(sink, 10, Promise.resolve());
    await turn();
    behind.wrote(sink, 30, Promise.resolve());
    await turn();
    assert.equal(started.length, 1, "a second sync while the first runs would only queue behind it");
    let idle = false;
    void behind.idle().then(() => (idle = true));
    await turn();
    assert.equal(idle, false);
    started[0]?.finish();
    await turn();
    assert.equal(idle, true);
    behind.wrote(sink, 1, Promise.resolve());
    await turn();
    assert.equal(started.length, 2, "the 31 bytes queued meanwhile are due at the next write");
  });

  it("parks a failed sync's error and is idle after it", async () => {
    const { sink, started } = syncingSink();
    const parked: unknown[] = [];
    const behind = new WriteBehind(1, (err) => parked.push(err));
    behind.wrote(sink, 1, Promise.resolve());
    await turn();
    started[0]?.fail(new Error("EIO: the device went away"));
    await behind.idle();
    assert.deepEqual(
      parked.map((e) => (e as Error).message),
      ["EIO: the device went away"],
    );
  });

  it("leaves a sink that cannot sync alone, and never syncs with 0", async () => {
    const upload: PositionalSink = {
      write: (_b, _o, length) => Promise.resolve({ bytesWritten: length }),
      truncate: () => Promise.resolve(),
    };
    const never = new WriteBehind(1, () => assert.fail("nothing fails here"));
    never.wrote(upload, 100, Promise.resolve());
    await never.idle();
    const { sink, started } = syncingSink();
    const off = new WriteBehind(0, () => assert.fail("nothing fails here"));
    off.wrote(sink, 1 << 30, Promise.resolve());
    await turn();
    assert.equal(started.length, 0);
  });

  it("rejects a negative or fractional interval", () => {
    assert.throws(() => new WriteBehind(-1, () => {}), RangeError);
    assert.throws(() => new WriteBehind(1.5, () => {}), RangeError);
  });
});
