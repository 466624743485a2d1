// Kubernetes Events for what the operator does, so `kubectl describe` tells the story of a run.
import { microTime } from "../api/timestamps.js";
import { randomBytes } from "node:crypto";
import type { KubeClient } from "./client.js";
import { EventBudget } from "./event-budget.js";
import { Resources } from "./resources.js";
import type { KubeObject } from "./types.js";

export type EventType = "Normal" | "Warning";

export interface EventSink {
  record(regarding: KubeObject, type: EventType, reason: string, note: string, action?: string): void;
}

export class EventRecorder implements EventSink {
  constructor(
    private readonly client: KubeClient,
    private readonly controller: string,
    private readonly instance: string,
    private readonly onError: (err: unknown) => void,
    private readonly budget = new EventBudget(),
  ) {}

  /**
   * Fire and forget: an Event that cannot be written must not fail the reconcile that caused it. Within
   * the object's budget for its reason (event-budget.ts); the first one written after some were left out
   * says how many.
   */
  record(regarding: KubeObject, type: EventType, reason: string, note: string, action = reason): void {
    const m = regarding.metadata;
    const now = new Date();
    const verdict = this.budget.take(
      { object: m.uid ?? `${m.namespace ?? ""}/${m.name ?? ""}`, type, reason },
      now.getTime(),
    );
    if (!verdict.write) return;
    const leftOut = verdict.leftOut
      ? ` (${verdict.leftOut.count} more ${reason} Events left out since ${new Date(verdict.leftOut.since).toISOString()})`
      : "";
    const event = {
      apiVersion: "events.k8s.io/v1",
      kind: "Event",
      metadata: {
        name: `${m.name}.${now.getTime().toString(16)}${randomBytes(2).toString("hex")}`,
        namespace: m.namespace ?? "default",
      },
      eventTime: microTime(now.getTime()),
      reportingController: this.controller,
      reportingInstance: this.instance,
      action,
      reason,
      type,
      note: note.slice(0, 1024 - leftOut.length) + leftOut,
      regarding: {
        apiVersion: regarding.apiVersion,
        kind: regarding.kind,
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resourceVersion: m.resourceVersion,
      },
    };
    this.client.create(Resources.Event, event).catch(this.onError);
  }
}
