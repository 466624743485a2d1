// Kubernetes Events for what the operator does, so `kubectl describe` tells the story of a run.
import { microTime } from "../api/timestamps.js";
import { randomBytes } from "node:crypto";
import type { KubeClient } from "./client.js";
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
  ) {}

  /** Fire and forget: an Event that cannot be written must not fail the reconcile that caused it. */
  record(regarding: KubeObject, type: EventType, reason: string, note: string, action = reason): void {
    const m = regarding.metadata;
    const now = new Date();
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
      note: note.slice(0, 1024),
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
