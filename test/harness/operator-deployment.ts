// The operator's Deployment as the chart renders it with its default values (deploy/workload.yaml, written by
// `make manifests`): what tests and benchmarks run the operator with, read from one place.
import { readFileSync } from "node:fs";
import path from "node:path";
import * as yaml from "js-yaml";
import type { KubeObject } from "../../src/k8s/types.js";
import { REPO_ROOT } from "./binaries.js";

export interface OperatorDeployment extends KubeObject {
  spec: {
    template: {
      spec: {
        containers: { name: string; env?: { name: string; value?: string }[] }[];
        securityContext?: Record<string, unknown>;
        [field: string]: unknown;
      };
    };
  };
}

/** The Deployment of a rendered workload.yaml (default: this repository's). */
export function operatorDeployment(file = path.join(REPO_ROOT, "deploy/workload.yaml")): OperatorDeployment {
  const docs = yaml.loadAll(readFileSync(file, "utf8")) as (KubeObject | null)[];
  const deployment = docs.find((d) => d?.kind === "Deployment");
  if (!deployment) throw new Error(`${file}: no Deployment`);
  return deployment as OperatorDeployment;
}

/** The value of an environment variable the Deployment sets on its first container, if it sets one. */
export function operatorEnv(deployment: OperatorDeployment, name: string): string | undefined {
  return deployment.spec.template.spec.containers[0]?.env?.find((e) => e.name === name)?.value;
}
