// Leader election over a coordination.k8s.io/v1 Lease, in the manner of client-go's leaderelection:
// the leader renews the Lease every retry period; a replica that has not renewed for the renew deadline
// gives up at once (before any other replica may take over, since the renew deadline is shorter than
// the lease duration); the others take the Lease when its holder has not renewed it for the lease
// duration, measured on their own clock from when they last saw it change (no clock skew between
// replicas matters), or at once when the holder released it (holderIdentity emptied).
import { randomBytes } from "node:crypto";
import os from "node:os";
import { microTime } from "../api/timestamps.js";
import type { KubeClient } from "./client.js";
import { isNotFound } from "./errors.js";
import { resourcePath, Resources } from "./resources.js";
import type { LeaseObject } from "./volume-lease.js";

export const LEADER_LEASE_NAME = "fedbackup-operator-leader";

export interface LeaderTiming {
  /** How long a Lease not renewed stays the holder's (others wait this long). client-go: 15 s. */
  leaseDurationMs: number;
  /** How long the leader keeps trying to renew before it gives up. client-go: 10 s. */
  renewDeadlineMs: number;
  /** How often every replica reads (and the leader renews) the Lease. client-go: 2 s. */
  retryPeriodMs: number;
}

export const DEFAULT_LEADER_TIMING: LeaderTiming = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

/** Why a timing cannot be sound, or undefined. */
export function invalidTiming(t: LeaderTiming): string | undefined {
  if (t.retryPeriodMs <= 0) return "the retry period must be positive";
  if (t.renewDeadlineMs <= t.retryPeriodMs) return "the renew deadline must be longer than the retry period";
  if (t.leaseDurationMs <= t.renewDeadlineMs) return "the lease duration must be longer than the renew deadline";
  return undefined;
}

/** The Lease as seen by one replica: its holder and renewTime, and when this replica saw them change. */
export interface ObservedLease {
  holder: string;
  renewTime: string;
  /** Local time at which this replica first saw this holder and renewTime. */
  observedAt: number;
}

export type LeaderDecision =
  /** Nobody holds a valid Lease: take it. */
  | { action: "take" }
  /** This replica holds it: renew it. */
  | { action: "renew" }
  /** Another replica holds it and it has not expired: look again after `retryInMs`. */
  | { action: "wait"; holder: string; retryInMs: number }
  /** This replica led but cannot go on: another holds the Lease, or no renewal succeeded within the deadline. */
  | { action: "lost"; reason: string };

/**
 * What a replica does next. `lease` is the Lease it just read (undefined: none exists; null: it could
 * not be read); `lastRenewAt` is when this replica, while leading, last wrote the Lease successfully.
 */
export function decideLeadership(input: {
  identity: string;
  lease: ObservedLease | undefined | null;
  leading: boolean;
  lastRenewAt?: number;
  now: number;
  timing: LeaderTiming;
}): LeaderDecision {
  const { identity, lease, leading, now, timing } = input;
  if (leading) {
    const since = now - (input.lastRenewAt ?? -Infinity);
    if (since >= timing.renewDeadlineMs)
      return {
        action: "lost",
        reason: `no renewal succeeded for ${since} ms (renew deadline ${timing.renewDeadlineMs} ms)`,
      };
    if (lease && lease.holder && lease.holder !== identity)
      return { action: "lost", reason: `the Lease is held by ${lease.holder}` };
    // Gone or unreadable while still within the deadline: write it again (or retry the read).
    return { action: "renew" };
  }
  if (lease === null) return { action: "wait", holder: "", retryInMs: timing.retryPeriodMs };
  if (!lease || !lease.holder || lease.holder === identity) return { action: "take" };
  const expiresAt = lease.observedAt + timing.leaseDurationMs;
  if (now >= expiresAt) return { action: "take" };
  return { action: "wait", holder: lease.holder, retryInMs: Math.min(timing.retryPeriodMs, expiresAt - now) };
}

/** client-go's identity: the pod's name (HOSTNAME) and a random suffix, so a restarted pod is a new candidate. */
export function leaderIdentity(host = process.env.HOSTNAME || os.hostname()): string {
  return `${host}_${randomBytes(4).toString("hex")}`;
}

export interface LeaderElectorLogger {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

export interface LeaderElectorOptions {
  client: KubeClient;
  namespace: string;
  name?: string;
  identity?: string;
  timing?: LeaderTiming;
  log: LeaderElectorLogger;
  clock?: { now(): number };
}

export class LeaderElector {
  readonly identity: string;
  readonly name: string;
  private readonly timing: LeaderTiming;
  private readonly clock: { now(): number };
  private observed?: ObservedLease;
  private current?: LeaseObject;
  private leading = false;
  private lastRenewAt?: number;
  private stopped = false;
  private wake?: () => void;
  private deadlineTimer?: NodeJS.Timeout;
  private loop?: Promise<void>;

  constructor(private readonly options: LeaderElectorOptions) {
    this.identity = options.identity ?? leaderIdentity();
    this.name = options.name ?? LEADER_LEASE_NAME;
    this.timing = options.timing ?? DEFAULT_LEADER_TIMING;
    this.clock = options.clock ?? { now: () => Date.now() };
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns in the background: `onStartedLeading` once this replica holds the Lease, `onStoppedLeading`
   * (at most once, and never after stop()) when it lost it; a replica that lost it does not run again.
   */
  start(callbacks: { onStartedLeading: () => void; onStoppedLeading: (reason: string) => void }): void {
    const log = this.options.log;
    const lose = (reason: string) => {
      if (!this.leading || this.stopped) return;
      this.leading = false;
      this.stopped = true;
      clearTimeout(this.deadlineTimer);
      this.wake?.();
      log.error("leader election lost", { lease: this.leaseRef, identity: this.identity, reason });
      callbacks.onStoppedLeading(reason);
    };
    log.info("waiting to become the leader", { lease: this.leaseRef, identity: this.identity });
    this.loop = (async () => {
      while (!this.stopped) {
        const now = this.clock.now();
        const lease = await this.read();
        if (this.stopped) return;
        const decision = decideLeadership({
          identity: this.identity,
          lease,
          leading: this.leading,
          lastRenewAt: this.lastRenewAt,
          now: this.clock.now(),
          timing: this.timing,
        });
        let delay = this.timing.retryPeriodMs;
        if (decision.action === "lost") return lose(decision.reason);
        if (decision.action === "wait") delay = decision.retryInMs;
        else if (await this.write(now)) {
          this.lastRenewAt = now;
          // The renew deadline, enforced even when a request hangs: the leader stops before others may take over.
          clearTimeout(this.deadlineTimer);
          this.deadlineTimer = setTimeout(
            () => lose(`no renewal succeeded within the renew deadline (${this.timing.renewDeadlineMs} ms)`),
            now + this.timing.renewDeadlineMs - this.clock.now(),
          );
          this.deadlineTimer.unref();
          if (!this.leading && !this.stopped) {
            this.leading = true;
            log.info("became the leader", { lease: this.leaseRef, identity: this.identity });
            callbacks.onStartedLeading();
          }
        }
        // Candidates spread their attempts (client-go's jitter), the leader renews on time.
        if (!this.leading) delay += Math.random() * 0.2 * this.timing.retryPeriodMs;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(0, delay));
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    })();
  }

  /**
   * Stops campaigning and renewing, and if this replica leads, releases the Lease (holder emptied) so
   * another replica takes over at once instead of after the lease duration. Call it once the work has stopped.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.deadlineTimer);
    this.wake?.();
    await this.loop;
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.request<LeaseObject>("GET");
      if (lease.spec?.holderIdentity !== this.identity) return;
      const now = this.clock.now();
      await this.request("PUT", {
        ...lease,
        spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: microTime(now) },
      });
      this.options.log.info("released the leader Lease", { lease: this.leaseRef, identity: this.identity });
    } catch (err) {
      this.options.log.warn("could not release the leader Lease; it expires by itself", {
        lease: this.leaseRef,
        error: String(err),
      });
    }
  }

  private get leaseRef(): string {
    return `${this.options.namespace}/${this.name}`;
  }

  /** Bounded requests: a hung request must not outlive a retry period (the deadline timer covers the leader). */
  private request<T>(method: "GET" | "PUT" | "POST", body?: LeaseObject): Promise<T> {
    const path = resourcePath(Resources.Lease, this.options.namespace, method === "POST" ? undefined : this.name);
    return this.options.client.request<T>(method, path, {
      body,
      timeoutMs: Math.max(1_000, this.timing.retryPeriodMs),
    });
  }

  /** The Lease now (undefined: there is none; null: it could not be read), updating when it was last seen to change. */
  private async read(): Promise<ObservedLease | undefined | null> {
    try {
      const lease = await this.request<LeaseObject>("GET");
      this.current = lease;
      const holder = lease.spec?.holderIdentity ?? "";
      const renewTime = lease.spec?.renewTime ?? lease.spec?.acquireTime ?? "";
      if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime)
        this.observed = { holder, renewTime, observedAt: this.clock.now() };
      return this.observed;
    } catch (err) {
      if (isNotFound(err)) {
        this.current = undefined;
        this.observed = undefined;
        return undefined;
      }
      this.options.log.warn("could not read the leader Lease", { lease: this.leaseRef, error: String(err) });
      return null;
    }
  }

  /** Takes or renews the Lease; the resourceVersion of the copy read makes a concurrent change fail. */
  private async write(now: number): Promise<boolean> {
    const current = this.current;
    const held = current?.spec?.holderIdentity === this.identity;
    const body: LeaseObject = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name: this.name,
        namespace: this.options.namespace,
        ...(current ? { resourceVersion: current.metadata.resourceVersion } : {}),
      },
      spec: {
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.ceil(this.timing.leaseDurationMs / 1000),
        acquireTime: held && current?.spec?.acquireTime ? current.spec.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (current?.spec?.leaseTransitions ?? 0) + (current && !held ? 1 : 0),
      },
    };
    try {
      this.current = await this.request<LeaseObject>(current ? "PUT" : "POST", body);
      this.observed = { holder: this.identity, renewTime: body.spec!.renewTime!, observedAt: this.clock.now() };
      return true;
    } catch (err) {
      // A conflict means another replica wrote first: the next read tells who holds it.
      this.options.log.warn(held ? "could not renew the leader Lease" : "could not take the leader Lease", {
        lease: this.leaseRef,
        error: String(err),
      });
      return false;
    }
  }
}
