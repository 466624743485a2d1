// What the operator hands every controller it registers: the clients and sinks they share, and the
// shared volumes' Leases that runs of every kind take in turn.
import type { EventSink } from "../../k8s/events.js";
import type { KubeClient } from "../../k8s/client.js";
import type { VolumeLeases } from "../../k8s/volume-lease.js";
import type { Logger } from "../../telemetry/logger.js";
import type { OperatorMetrics } from "../../telemetry/metrics.js";
import type { ControllerManager } from "./controller-manager.js";
import type { LeaseOwners } from "./lease-owners.js";

export interface ControllerContext {
  manager: ControllerManager;
  client: KubeClient;
  log: Logger;
  metrics: OperatorMetrics;
  events: EventSink;
  clock: { now(): number };
  /** The operator's namespace: the shared volumes' Leases live here. */
  namespace: string;
  leases: VolumeLeases;
  /** How often a run renews the Lease it holds (a third of its duration). */
  leaseRenewMs: number;
  /** Which runs may hold a Lease: each controller registers its kind. */
  leaseOwners: LeaseOwners;
  /** Recent failures per node, for the FailureRate ordering policy. */
  nodeFailures: () => Map<string, number>;
}
