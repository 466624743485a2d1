// What a backup's agents are granted, as one for the whole run (runtime/agent-access.ts buildRunAccess):
// the union of what each of its node steps needs (builders.ts stepAccessOf).
import {
  API_VERSION,
  FEDERATED_BACKUP_KIND,
  type FederatedBackup,
  type NodeSnapshot,
} from "../../api/v1alpha1/index.js";
import type { RunAccessRequest } from "../runtime/agent-access.js";
import { stepAccessOf } from "./builders.js";

/**
 * The run's access request over its node steps (every round so far; a step without a node runs no agent).
 * `turnLeases`: the Leases its pipelined agents wait on, when they do.
 */
export function runAccessOf(
  backup: FederatedBackup,
  steps: readonly NodeSnapshot[],
  turnLeases?: RunAccessRequest["turnLeases"],
): RunAccessRequest {
  return {
    run: {
      apiVersion: API_VERSION,
      kind: FEDERATED_BACKUP_KIND,
      namespace: backup.metadata.namespace!,
      name: backup.metadata.name!,
      uid: backup.metadata.uid!,
    },
    steps: steps.filter((s) => !!s.spec.node).map(stepAccessOf),
    ...(turnLeases ? { turnLeases } : {}),
  };
}
