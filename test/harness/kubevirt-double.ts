// A recording test double of KubeVirt's subresource API (virt-api cannot run here), served behind the
// real kube-apiserver's aggregation layer: an APIService v1.subresources.kubevirt.io points at an
// ExternalName Service "localhost", so the operator and the agent call the API server as they would in
// a real cluster and RBAC on virtualmachineinstances/freeze applies for real. It records every call
// (with the VMI's node at that moment and the caller the API server authenticated) for assertions.
import { readFileSync } from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { KubeClient } from "../../src/k8s/client.js";
import { isNotFound } from "../../src/k8s/errors.js";
import { Resources } from "../../src/k8s/resources.js";
import type { VirtualMachineInstance } from "../../src/api/kubevirt.js";
import type { KubeObject } from "../../src/k8s/types.js";
import type { ControlPlane } from "./control-plane.js";
import { issueServingCert } from "./pki.js";

export const GROUP = "subresources.kubevirt.io";
/** On a VMI: "false" makes freeze fail like a VM without a connected QEMU guest agent. */
export const GUEST_AGENT_LABEL = "fedbackup.test/guest-agent";
/** On a VMI: a freeze takes this many milliseconds (to test freeze timeouts). */
export const FREEZE_DELAY_ANNOTATION = "fedbackup.test/freeze-delay-ms";

export interface SubresourceCall {
  op: "freeze" | "unfreeze" | "start" | "stop";
  namespace: string;
  name: string;
  /** The VMI's status.nodeName when the call arrived. */
  node?: string;
  user?: string;
  status: number;
  at: number;
  unfreezeTimeout?: string;
}

const SERVICE_NAMESPACE = "kubevirt";
const SERVICE_NAME = "virt-api";

export class KubeVirtDouble {
  readonly calls: SubresourceCall[] = [];
  private server?: https.Server;
  private readonly client: KubeClient;

  constructor(private readonly cp: ControlPlane) {
    this.client = new KubeClient(cp.kubeConfig);
  }

  /** Serves the API and registers it with the aggregation layer; resolves once it is Available. */
  async start(): Promise<void> {
    const { cert, key } = issueServingCert(this.cp.pki, "virt-api-double", [
      `${SERVICE_NAME}.${SERVICE_NAMESPACE}.svc`,
      "localhost",
    ]);
    this.server = https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
      this.handle(req.method ?? "GET", req.url ?? "/", req.headers["x-remote-user"] as string | undefined, req)
        .then(({ status, body }) =>
          res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(body)),
        )
        .catch((err: unknown) => res.writeHead(500).end(JSON.stringify(statusBody(500, String(err)))));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const port = (this.server.address() as AddressInfo).port;

    await this.ensure(Resources.Namespace, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: SERVICE_NAMESPACE },
    });
    await this.client.apply(Resources.Service, {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: SERVICE_NAME, namespace: SERVICE_NAMESPACE },
      spec: { type: "ExternalName", externalName: "localhost", ports: [{ name: "https", port, protocol: "TCP" }] },
    } as KubeObject);
    await this.client.apply(Resources.APIService, {
      apiVersion: "apiregistration.k8s.io/v1",
      kind: "APIService",
      metadata: { name: `v1.${GROUP}` },
      spec: {
        group: GROUP,
        version: "v1",
        service: { namespace: SERVICE_NAMESPACE, name: SERVICE_NAME, port },
        caBundle: readFileSync(this.cp.pki.caCert).toString("base64"),
        groupPriorityMinimum: 1000,
        versionPriority: 15,
      },
    } as KubeObject);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const svc = await this.client.get<
        KubeObject & { status?: { conditions?: Array<{ type: string; status: string; message?: string }> } }
      >(Resources.APIService, undefined, `v1.${GROUP}`);
      const available = svc.status?.conditions?.find((c) => c.type === "Available");
      if (available?.status === "True") return;
      if (Date.now() > deadline)
        throw new Error(`APIService v1.${GROUP} not Available: ${available?.message ?? "no condition"}`);
      await sleep(100);
    }
  }

  async stop(): Promise<void> {
    try {
      await this.client.delete(Resources.APIService, undefined, `v1.${GROUP}`);
    } catch {
      // the control plane may already be gone
    }
    // The API server keeps connections to us alive: close them, or close() waits for them to idle out.
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    this.client.close();
  }

  reset(): void {
    this.calls.length = 0;
  }

  callsFor(namespace: string, name?: string): SubresourceCall[] {
    return this.calls.filter((c) => c.namespace === namespace && (name === undefined || c.name === name));
  }

  private async ensure(type: (typeof Resources)[keyof typeof Resources], obj: KubeObject): Promise<void> {
    try {
      await this.client.get(type, obj.metadata.namespace, obj.metadata.name!);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.client.create(type, obj);
    }
  }

  private async handle(
    method: string,
    url: string,
    user: string | undefined,
    req: NodeJS.ReadableStream,
  ): Promise<{ status: number; body: unknown }> {
    const path = url.split("?")[0]!;
    if (method === "GET" && (path === `/apis/${GROUP}/v1` || path === `/apis/${GROUP}/v1/`)) {
      return {
        status: 200,
        body: {
          kind: "APIResourceList",
          apiVersion: "v1",
          groupVersion: `${GROUP}/v1`,
          resources: [
            {
              name: "virtualmachineinstances/freeze",
              singularName: "",
              namespaced: true,
              kind: "VirtualMachineInstance",
              verbs: ["update"],
            },
            {
              name: "virtualmachineinstances/unfreeze",
              singularName: "",
              namespaced: true,
              kind: "VirtualMachineInstance",
              verbs: ["update"],
            },
            {
              name: "virtualmachines/start",
              singularName: "",
              namespaced: true,
              kind: "VirtualMachine",
              verbs: ["update"],
            },
            {
              name: "virtualmachines/stop",
              singularName: "",
              namespaced: true,
              kind: "VirtualMachine",
              verbs: ["update"],
            },
          ],
        },
      };
    }
    if (method === "GET" && path === `/apis/${GROUP}`) {
      const gv = { groupVersion: `${GROUP}/v1`, version: "v1" };
      return {
        status: 200,
        body: { kind: "APIGroup", apiVersion: "v1", name: GROUP, versions: [gv], preferredVersion: gv },
      };
    }
    const m = new RegExp(
      `^/apis/${GROUP}/v1/namespaces/([^/]+)/(virtualmachineinstances|virtualmachines)/([^/]+)/(freeze|unfreeze|start|stop)$`,
    ).exec(path);
    if (!m || method !== "PUT")
      return { status: 404, body: statusBody(404, `the test double does not serve ${method} ${path}`) };
    const [, namespace, , name, op] = m as unknown as [string, string, string, string, SubresourceCall["op"]];
    const body = await readJson(req);
    const record = (status: number, node?: string): void => {
      this.calls.push({
        op,
        namespace,
        name,
        status,
        at: Date.now(),
        ...(node ? { node } : {}),
        ...(user ? { user } : {}),
        ...(typeof body?.unfreezeTimeout === "string" ? { unfreezeTimeout: body.unfreezeTimeout } : {}),
      });
    };
    if (op === "start" || op === "stop") {
      record(202);
      return { status: 202, body: {} };
    }
    let vmi: VirtualMachineInstance & KubeObject;
    try {
      vmi = await this.client.get<VirtualMachineInstance & KubeObject>(
        Resources.VirtualMachineInstance,
        namespace,
        name,
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
      record(404);
      return { status: 404, body: statusBody(404, `virtualmachineinstance.kubevirt.io "${name}" not found`) };
    }
    const node = vmi.status?.nodeName;
    if (op === "freeze") {
      if (vmi.status?.phase !== "Running") {
        record(409, node);
        return { status: 409, body: statusBody(409, "VM is not running") };
      }
      if (vmi.metadata.labels?.[GUEST_AGENT_LABEL] === "false") {
        record(500, node);
        return {
          status: 500,
          body: statusBody(500, "server error. command Freeze failed: QEMU guest agent is not connected"),
        };
      }
      const delay = Number(vmi.metadata.annotations?.[FREEZE_DELAY_ANNOTATION] ?? 0);
      if (delay > 0) await sleep(delay);
    }
    await this.client.patch(Resources.VirtualMachineInstance, namespace, name, {
      status: { fsFreezeStatus: op === "freeze" ? "frozen" : null },
    });
    record(200, node);
    return { status: 200, body: {} };
  }
}

function statusBody(code: number, message: string) {
  return { kind: "Status", apiVersion: "v1", status: "Failure", message, code };
}

async function readJson(req: NodeJS.ReadableStream): Promise<Record<string, unknown> | undefined> {
  let text = "";
  for await (const chunk of req) text += String(chunk);
  try {
    return text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
