import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeClient } from "../../../src/k8s/client.js";
import { ApiError } from "../../../src/k8s/errors.js";
import {
  decideLeadership,
  invalidTiming,
  LeaderElector,
  type LeaderTiming,
  type ObservedLease,
} from "../../../src/k8s/leader-election.js";
import type { LeaseObject } from "../../../src/k8s/volume-lease.js";

const timing: LeaderTiming = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };
const held = (holder: string, observedAt: number): ObservedLease => ({ holder, renewTime: "t", observedAt });
const decide = (input: Partial<Parameters<typeof decideLeadership>[0]>) =>
  decideLeadership({ identity: "me", lease: undefined, leading: false, now: 100_000, timing, ...input });

describe("decideLeadership", () => {
  it("takes a Lease that does not exist, was released, or is its own", () => {
    assert.deepEqual(decide({ lease: undefined }), { action: "take" });
    assert.deepEqual(decide({ lease: held("", 99_000) }), { action: "take" });
    assert.deepEqual(decide({ lease: held("me", 99_000) }), { action: "take" });
  });

  it("waits for another holder until the lease duration has passed since it last saw a renewal", () => {
    assert.deepEqual(decide({ lease: held("other", 90_000) }), { action: "wait", holder: "other", retryInMs: 2_000 });
    assert.deepEqual(decide({ lease: held("other", 86_000) }), { action: "wait", holder: "other", retryInMs: 1_000 });
    assert.deepEqual(decide({ lease: held("other", 85_000) }), { action: "take" });
  });

  it("waits when the Lease cannot be read", () => {
    assert.equal(decide({ lease: null }).action, "wait");
  });

  it("renews while leading, even when a read failed, until the renew deadline", () => {
    assert.deepEqual(decide({ leading: true, lastRenewAt: 98_000, lease: held("me", 98_000) }), { action: "renew" });
    assert.deepEqual(decide({ leading: true, lastRenewAt: 91_000, lease: null }), { action: "renew" });
    assert.deepEqual(decide({ leading: true, lastRenewAt: 91_000, lease: undefined }), { action: "renew" });
  });

  it("is lost past the renew deadline or when another replica holds the Lease", () => {
    assert.equal(decide({ leading: true, lastRenewAt: 90_000, lease: held("me", 90_000) }).action, "lost");
    assert.equal(decide({ leading: true, lastRenewAt: 99_000, lease: held("other", 99_500) }).action, "lost");
  });

  it("rejects timings where a leader could still work after another took over", () => {
    assert.equal(invalidTiming(timing), undefined);
    assert.match(invalidTiming({ ...timing, renewDeadlineMs: 15_000 })!, /lease duration/);
    assert.match(invalidTiming({ ...timing, retryPeriodMs: 10_000 })!, /renew deadline/);
  });
});

/** One Lease in memory with resourceVersion checks, behind the KubeClient.request the elector uses. */
class FakeLeases {
  lease?: LeaseObject;
  failWritesFrom = new Set<string>();
  private rv = 0;
  client(identity: () => string): KubeClient {
    return {
      request: (method: string, _path: string, opts: { body?: LeaseObject } = {}): Promise<unknown> => {
        if (method === "GET") {
          if (!this.lease) return Promise.reject(new ApiError(404, "NotFound", "not found"));
          return Promise.resolve(structuredClone(this.lease));
        }
        if (this.failWritesFrom.has(identity())) return Promise.reject(new ApiError(0, "TransportError", "down"));
        const body = structuredClone(opts.body!);
        if (method === "POST" && this.lease) return Promise.reject(new ApiError(409, "AlreadyExists", "exists"));
        if (method === "PUT" && body.metadata.resourceVersion !== this.lease?.metadata.resourceVersion)
          return Promise.reject(new ApiError(409, "Conflict", "conflict"));
        body.metadata.resourceVersion = String(++this.rv);
        this.lease = body;
        return Promise.resolve(structuredClone(body));
      },
    } as unknown as KubeClient;
  }
}

const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const fast: LeaderTiming = { leaseDurationMs: 600, renewDeadlineMs: 400, retryPeriodMs: 50 };

async function until(done: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("condition not reached");
    await sleep(5);
  }
}

describe("LeaderElector", () => {
  function elector(leases: FakeLeases, identity: string) {
    const events: string[] = [];
    const e = new LeaderElector({
      client: leases.client(() => identity),
      namespace: "ns",
      identity,
      timing: fast,
      log: quiet,
    });
    e.start({ onStartedLeading: () => events.push("started"), onStoppedLeading: () => events.push("stopped") });
    return { e, events };
  }

  it("elects one replica; the other takes over at once when the leader releases the Lease", async () => {
    const leases = new FakeLeases();
    const a = elector(leases, "a");
    await until(() => a.e.isLeader);
    const b = elector(leases, "b");
    await sleep(200);
    assert.equal(b.e.isLeader, false);
    assert.equal(leases.lease?.spec?.holderIdentity, "a");
    const released = Date.now();
    await a.e.stop();
    assert.equal(leases.lease?.spec?.holderIdentity, "");
    await until(() => b.e.isLeader);
    assert.ok(Date.now() - released < fast.leaseDurationMs, "faster than the lease duration");
    assert.deepEqual(a.events, ["started"]);
    assert.equal(leases.lease?.spec?.leaseTransitions, 1);
    await b.e.stop();
  });

  it("a leader that cannot renew stops before the lease duration, and the other takes over after it", async () => {
    const leases = new FakeLeases();
    const a = elector(leases, "a");
    await until(() => a.e.isLeader);
    const b = elector(leases, "b");
    await sleep(100);
    const cut = Date.now();
    leases.failWritesFrom.add("a");
    await until(() => a.events.includes("stopped"));
    const lostAfter = Date.now() - cut;
    assert.ok(lostAfter <= fast.renewDeadlineMs + 50, `lost after ${lostAfter} ms`);
    assert.equal(b.e.isLeader, false, "nobody takes over before the lease duration");
    await until(() => b.e.isLeader);
    assert.ok(Date.now() - cut >= fast.leaseDurationMs - fast.retryPeriodMs);
    await a.e.stop();
    await b.e.stop();
  });
});
