// The freeze window: freeze the guests, run the capture, thaw them, whatever happens.
//
// A frozen guest cannot write to its disks, so every moment it stays frozen stalls the applications in it.
// The invariants here are therefore about thawing: every VM for which a freeze was asked is unfrozen
// before withFrozen returns or throws, when the capture fails, when the freeze timed out (the late freeze
// may still land, so it is unfrozen again once it does), when the capture outlasts maxFreeze (thawed at the
// deadline while the capture goes on), and when SIGTERM/SIGINT arrives (thawed, then the signal re-raised).
// KubeVirt's own unfreezeTimeout is the last resort if this process is SIGKILLed.
//
// A VM that cannot be frozen is still captured, with an indication saying why (never silently), except
// when it is no longer running on this node: then another node's run (or nobody) is responsible for it,
// and it is reported as not captured.
import type { FailedReason, Indication } from "./manifest.js";
import type { AgentLog, Clock, VmRef } from "./types.js";
import { errorMessage, silentLog, vmKey } from "./types.js";

export type FreezeErrorKind = "NoGuestAgent" | "NotRunning" | "Migrating" | "Timeout" | "Other";

/** What a Freezer throws when a freeze fails; any other error counts as kind Other. */
export class FreezeError extends Error {
  override readonly name = "FreezeError";
  constructor(
    readonly kind: FreezeErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Freezes and thaws guest filesystems (KubeVirt's freeze/unfreeze subresources); injected. */
export interface Freezer {
  /**
   * Asks the guest agent to freeze the guest's filesystems. `unfreezeTimeoutSeconds` is passed on to
   * KubeVirt, which thaws the guest by itself after that long: the safety net if this process dies.
   */
  freeze(vm: VmRef, unfreezeTimeoutSeconds: number): Promise<void>;
  /** Thaws the guest; must succeed (as a no-op) when the guest is not frozen. */
  unfreeze(vm: VmRef): Promise<void>;
}

/** Whether a VM runs on this node right now, and if not, why; injected. */
export type NodeActivity = { active: true } | { active: false; reason: "Migrated" | "NotRunning"; message?: string };
export type IsActiveOnNode = (vm: VmRef) => Promise<NodeActivity>;

export interface QuiesceOptions {
  /** GuestAgent: freeze through the guest agent. None: never freeze (indication NotQuiesced). */
  quiesce: "GuestAgent" | "None";
  /** How long one freeze call may take before the VM is captured unfrozen (QuiesceTimeout). */
  freezeTimeoutMs: number;
  /** The longest a guest may stay frozen, counted from the freeze request. */
  maxFreezeMs: number;
  clock: Clock;
  /** Called for every VM right before it would be frozen; VMs not active are not captured. */
  isActiveOnNode?: IsActiveOnNode;
  log?: AgentLog;
  /** Signals that end the window early (thaw, then re-raise). Default SIGTERM and SIGINT; [] for none. */
  signals?: readonly NodeJS.Signals[];
  /**
   * After a signal, how long to wait for a freeze call still in flight before exiting anyway (default 5 s):
   * Kubernetes SIGKILLs the pod after its grace period, and KubeVirt's unfreezeTimeout covers the rest.
   */
  signalGraceMs?: number;
}

/** The freeze window as seen from outside the guest: from the freeze request to the confirmed thaw. */
export interface FreezeWindow {
  /** ms since the epoch; null when no freeze was requested. */
  startedAt: number | null;
  endedAt: number | null;
  windowMs: number;
}

export type VmFreezeReport =
  | {
      vm: VmRef;
      captured: true;
      indication: Indication;
      /** Why the indication is not GuestAgent. */
      message?: string;
      freeze: FreezeWindow;
      /** Set when unfreeze kept failing: KubeVirt's unfreezeTimeout will thaw the guest. */
      thawError?: string;
    }
  | { vm: VmRef; captured: false; reason: FailedReason; message: string };

export interface FreezeSession {
  /** The VMs to capture, in the order given: frozen, or unfrozen with an indication saying why. */
  readonly vms: readonly VmRef[];
  /** Aborted when a termination signal arrives during the window; the capture should stop. */
  readonly signal: AbortSignal;
}

export interface FrozenResult<T> {
  value: T;
  /** One per VM given, in the same order. */
  reports: VmFreezeReport[];
}

/** Thrown by withFrozen when a signal ended the window (the signal itself is re-raised right after). */
export class InterruptedError extends Error {
  override readonly name = "InterruptedError";
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

/**
 * KubeVirt thaws by itself after unfreezeTimeout. It must not fire before we thaw (the capture would
 * silently lose its consistency), so it is maxFreeze plus room for our own unfreeze calls and retries.
 */
export function unfreezeTimeoutSeconds(maxFreezeMs: number): number {
  return Math.ceil(maxFreezeMs / 1000) + 30;
}

// Unfreeze is retried: a guest left frozen is the worst outcome of a backup.
const UNFREEZE_RETRY_DELAYS_MS = [250, 1000, 3000];

interface VmState {
  vm: VmRef;
  report?: VmFreezeReport;
  indication?: Indication;
  message?: string;
  /** A freeze was requested and may have taken effect: the VM must be unfrozen. */
  mustThaw: boolean;
  /** The freeze call; while unsettled (timed out, or interrupted by a signal) it may still freeze the guest. */
  freezeCall?: Promise<unknown>;
  freezeSettled: boolean;
  startedAt: number | null;
  endedAt: number | null;
  budgetTimer?: NodeJS.Timeout;
  budgetExceededAt?: number;
  thawing?: Promise<void>;
  thawError?: string;
}

/**
 * Freezes `vms` (concurrently, each bounded by freezeTimeoutMs), runs `body`, and thaws every VM it
 * asked to freeze, in every outcome. Returns the body's value and a report per VM. If the body throws, the
 * VMs are thawed and the error is rethrown.
 */
export async function withFrozen<T>(
  vms: readonly VmRef[],
  freezer: Freezer,
  opts: QuiesceOptions,
  body: (session: FreezeSession) => Promise<T>,
): Promise<FrozenResult<T>> {
  const log = opts.log ?? silentLog;
  const { clock } = opts;
  const states: VmState[] = vms.map((vm) => ({
    vm,
    mustThaw: false,
    freezeSettled: false,
    startedAt: null,
    endedAt: null,
  }));
  const abort = new AbortController();
  let interrupted: NodeJS.Signals | undefined;
  let bodyDone = false;

  const thaw = (state: VmState): Promise<void> => {
    if (!state.mustThaw) return Promise.resolve();
    state.thawing ??= (async () => {
      clearTimeout(state.budgetTimer);
      state.thawError = await unfreezeWithRetry(freezer, state.vm, log);
      if (state.freezeCall && !state.freezeSettled) {
        // The freeze call is still running (it outlived freezeTimeout, or a signal or the budget cut the
        // window short). If it lands after the unfreeze above, the guest ends up frozen: wait for it (as
        // long again as it was allowed) and unfreeze once more.
        const wait = interrupted ? Math.min(opts.freezeTimeoutMs, opts.signalGraceMs ?? 5000) : opts.freezeTimeoutMs;
        const outcome = await settleWithin(state.freezeCall, wait);
        if (outcome === "fulfilled") state.thawError = await unfreezeWithRetry(freezer, state.vm, log);
        if (outcome === "pending") {
          log.error("freeze call still pending after thaw; KubeVirt's unfreezeTimeout will thaw the guest", {
            vm: vmKey(state.vm),
          });
        }
      }
      state.endedAt = clock.now();
    })();
    return state.thawing;
  };
  const thawAll = () => Promise.all(states.map(thaw));

  // Signal handlers live for the window only. On a signal: stop the capture, thaw, re-raise.
  const signals = opts.quiesce === "GuestAgent" ? (opts.signals ?? ["SIGTERM", "SIGINT"]) : [];
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = signal;
    log.warn("signal during the freeze window: thawing before exiting", { signal });
    abort.abort(new InterruptedError(signal));
    void thawAll().then(() => reraise(signal, onSignal, signals));
  };
  for (const signal of signals) process.on(signal, onSignal);

  try {
    await Promise.all(
      states.map(async (state) => {
        await prepare(state);
      }),
    );

    async function prepare(state: VmState): Promise<void> {
      const { vm } = state;
      if (opts.isActiveOnNode) {
        // Bounded like a freeze: an API call that hangs must not hold the other VMs' window open.
        const check = opts.isActiveOnNode(vm);
        const outcome = await raceTimeout(check, opts.freezeTimeoutMs);
        if (outcome.kind !== "fulfilled") {
          const why =
            outcome.kind === "timeout" ? `no answer within ${opts.freezeTimeoutMs} ms` : errorMessage(outcome.error);
          state.report = notCaptured(vm, "CaptureFailed", `could not check that it runs on this node: ${why}`);
          return;
        }
        const activity = await check;
        if (!activity.active) {
          state.report = notCaptured(vm, activity.reason, activity.message ?? defaultInactiveMessage(activity.reason));
          return;
        }
      }
      if (interrupted) return;
      if (opts.quiesce === "None") {
        state.indication = "NotQuiesced";
        state.message = "quiesce is None: captured without freezing the guest (crash-consistent at best)";
        return;
      }
      state.startedAt = clock.now();
      state.mustThaw = true;
      // maxFreeze counts from the request: a slow freeze uses up part of the budget.
      state.budgetTimer = setTimeout(() => onBudgetExceeded(state), opts.maxFreezeMs);
      const call = freezer.freeze(vm, unfreezeTimeoutSeconds(opts.maxFreezeMs));
      state.freezeCall = call;
      const settled = () => {
        state.freezeSettled = true;
      };
      call.then(settled, settled);
      const outcome = await raceTimeout(call, opts.freezeTimeoutMs);
      if (outcome.kind === "fulfilled") {
        state.indication ??= "GuestAgent";
        return;
      }
      if (outcome.kind === "timeout") {
        state.indication ??= "QuiesceTimeout";
        state.message ??= `the guest did not freeze within ${opts.freezeTimeoutMs} ms; captured without freezing it`;
        return;
      }
      const err = outcome.error;
      const kind = err instanceof FreezeError ? err.kind : "Other";
      const detail = errorMessage(err);
      switch (kind) {
        case "NotRunning":
        case "Migrating":
          // Not running here any more: not ours to capture. Nothing was frozen.
          state.mustThaw = false;
          clearTimeout(state.budgetTimer);
          state.startedAt = null;
          state.report = notCaptured(
            vm,
            kind === "Migrating" ? "Migrated" : "NotRunning",
            `${kind === "Migrating" ? "it is migrating away" : "it is not running"}, so it was not frozen: ${detail}`,
          );
          return;
        case "NoGuestAgent":
          state.mustThaw = false;
          clearTimeout(state.budgetTimer);
          state.startedAt = null;
          state.indication = "NoGuestAgent";
          state.message = `no guest agent to freeze the guest, captured without freezing it: ${detail}`;
          return;
        case "Timeout":
          state.indication = "QuiesceTimeout";
          state.message = `the freeze timed out, captured without freezing the guest: ${detail}`;
          return;
        case "Other":
          // mustThaw stays set: a failed freeze may have frozen some filesystems; unfreeze is harmless.
          state.indication = "FreezeFailed";
          state.message = `the freeze failed, captured without freezing the guest: ${detail}`;
          return;
      }
    }

    function onBudgetExceeded(state: VmState): void {
      if (bodyDone || state.thawing) return;
      state.budgetExceededAt = clock.now();
      if (state.indication === undefined || state.indication === "GuestAgent") {
        state.indication = "FreezeBudgetExceeded";
        state.message = `the capture took longer than maxFreeze (${opts.maxFreezeMs} ms): the guest was thawed and the rest was captured while it ran`;
      }
      log.warn("freeze budget exceeded: thawing while the capture goes on", {
        vm: vmKey(state.vm),
        maxFreezeMs: opts.maxFreezeMs,
      });
      void thaw(state);
    }

    if (interrupted) throw new InterruptedError(interrupted);
    const toCapture = states.filter((s) => s.report === undefined).map((s) => s.vm);
    let value: T;
    try {
      value = await body({ vms: toCapture, signal: abort.signal });
    } finally {
      bodyDone = true;
    }
    if (interrupted) throw new InterruptedError(interrupted);
    await thawAll();
    return { value, reports: states.map(finalReport) };
  } finally {
    for (const state of states) clearTimeout(state.budgetTimer);
    await thawAll();
    if (!interrupted) for (const signal of signals) process.off(signal, onSignal);
  }

  function finalReport(state: VmState): VmFreezeReport {
    if (state.report) return state.report;
    const { startedAt, endedAt } = state;
    const report: VmFreezeReport = {
      vm: state.vm,
      captured: true,
      indication: state.indication ?? "GuestAgent",
      freeze: {
        startedAt,
        endedAt,
        windowMs: startedAt !== null && endedAt !== null ? Math.max(0, endedAt - startedAt) : 0,
      },
    };
    if (state.message !== undefined) report.message = state.message;
    if (state.thawError !== undefined) report.thawError = state.thawError;
    return report;
  }
}

function notCaptured(vm: VmRef, reason: FailedReason, message: string): VmFreezeReport {
  return { vm, captured: false, reason, message };
}

function defaultInactiveMessage(reason: "Migrated" | "NotRunning"): string {
  return reason === "Migrated" ? "it no longer runs on this node" : "it is not running";
}

async function unfreezeWithRetry(freezer: Freezer, vm: VmRef, log: AgentLog): Promise<string | undefined> {
  let lastError: unknown;
  for (let attempt = 0; attempt <= UNFREEZE_RETRY_DELAYS_MS.length; attempt++) {
    try {
      await freezer.unfreeze(vm);
      return undefined;
    } catch (err) {
      lastError = err;
      log.warn("unfreeze failed", { vm: vmKey(vm), attempt: attempt + 1, error: errorMessage(err) });
      const delay = UNFREEZE_RETRY_DELAYS_MS[attempt];
      if (delay !== undefined) await sleep(delay);
    }
  }
  log.error("could not unfreeze; KubeVirt's unfreezeTimeout will thaw the guest", {
    vm: vmKey(vm),
    error: errorMessage(lastError),
  });
  return errorMessage(lastError);
}

type RaceOutcome = { kind: "fulfilled" } | { kind: "rejected"; error: unknown } | { kind: "timeout" };

async function raceTimeout(promise: Promise<unknown>, ms: number): Promise<RaceOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<RaceOutcome>((resolve) => {
    timer = setTimeout(() => resolve({ kind: "timeout" }), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        (): RaceOutcome => ({ kind: "fulfilled" }),
        (error: unknown): RaceOutcome => ({ kind: "rejected", error }),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function settleWithin(promise: Promise<unknown>, ms: number): Promise<"fulfilled" | "rejected" | "pending"> {
  const outcome = await raceTimeout(promise, ms);
  return outcome.kind === "timeout" ? "pending" : outcome.kind;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// After the thaw: die of the same signal, as the default action would have, so the Job sees the usual
// "terminated by signal" status. If someone else also listens for it, Node would not die of a re-raised
// signal, so exit with the conventional 128 + signal number instead.
function reraise(signal: NodeJS.Signals, handler: (s: NodeJS.Signals) => void, signals: readonly NodeJS.Signals[]) {
  for (const s of signals) process.off(s, handler);
  if (process.listenerCount(signal) === 0) {
    process.kill(process.pid, signal);
  } else {
    const number = signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1;
    process.exit(128 + number);
  }
}
