// `fedbackup operator`: runs the controllers until SIGTERM, serving /metrics, /healthz and /readyz.
import http from "node:http";
import { parseAgentJobSettings } from "../controllers/federatedbackup/builders.js";
import { Manager } from "../controllers/manager.js";
import { KubeClient } from "../k8s/client.js";
import { createLogger } from "../telemetry/logger.js";
import { OperatorMetrics } from "../telemetry/metrics.js";
import { VERSION } from "../version.js";
import { integerFlag, parseFlags, stdio, UsageError, type Io } from "./flags.js";

export const operatorUsage = `Usage: fedbackup operator [flags]

Flags:
  --kubeconfig PATH          kubeconfig to use (default: $KUBECONFIG, else in-cluster, else ~/.kube/config)
  --namespace NS             namespace of the operator, where shared-volume Leases live
                             (default: $POD_NAMESPACE, else the kubeconfig's namespace, else fedbackup-system)
  --agent-image IMAGE        image of the node agent Jobs (default: $FEDBACKUP_AGENT_IMAGE)
                             ($FEDBACKUP_AGENT_JOB: JSON of the agent Jobs' imagePullPolicy, imagePullSecrets,
                             nodeSelector, tolerations, resources and priorityClassName)
  --metrics-bind-address A   address of /metrics (default :8080; "0" disables)
  --health-bind-address A    address of /healthz and /readyz (default :8081; "0" disables)
  --lease-duration SECONDS   duration of the shared-volume Lease (default 60)
  --concurrency N            backups reconciled at once (default 2)
  -h, --help                 print this help

Bad flags exit with code 2, a failure to start or run with code 1.
`;

/** An HTTP listen address: "PORT", ":PORT" or "HOST:PORT", or "0" for none. */
export function bindAddress(flag: string, address: string): { host?: string; port: number } | undefined {
  if (address === "0") return undefined;
  const colon = address.lastIndexOf(":");
  const host = colon >= 0 ? address.slice(0, colon).replace(/^\[(.*)\]$/, "$1") : "";
  const portText = address.slice(colon + 1);
  if (!/^\d+$/.test(portText) || Number(portText) > 65535)
    throw new UsageError(`--${flag}: "${address}" is not an address such as :8080 or 127.0.0.1:8080 ("0" disables)`);
  return { ...(host ? { host } : {}), port: Number(portText) };
}

/** Starts an HTTP server; rejects when it cannot listen (the port is taken, the host is not local, ...). */
function listen(
  address: { host?: string; port: number } | undefined,
  handler: http.RequestListener,
): Promise<http.Server | undefined> {
  if (!address) return Promise.resolve(undefined);
  const server = http.createServer(handler);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}

/** Runs the operator until SIGTERM or SIGINT. Bad flags throw a UsageError before anything starts. */
export async function runOperator(argv: string[], io: Io = stdio): Promise<number> {
  const { values } = parseFlags({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      kubeconfig: { type: "string" },
      namespace: { type: "string" },
      "agent-image": { type: "string" },
      "metrics-bind-address": { type: "string", default: ":8080" },
      "health-bind-address": { type: "string", default: ":8081" },
      "lease-duration": { type: "string", default: "60" },
      concurrency: { type: "string", default: "2" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    io.out(operatorUsage);
    return 0;
  }
  const leaseDurationSeconds = integerFlag("lease-duration", values["lease-duration"], { min: 1 });
  const concurrency = integerFlag("concurrency", values.concurrency, { min: 1 });
  const metricsAddress = bindAddress("metrics-bind-address", values["metrics-bind-address"]);
  const healthAddress = bindAddress("health-bind-address", values["health-bind-address"]);

  const log = createLogger("operator");
  const metrics = new OperatorMetrics();
  const client = KubeClient.load(values.kubeconfig, metrics.observeRequest);
  const servers: http.Server[] = [];
  try {
    const namespace = values.namespace ?? process.env.POD_NAMESPACE ?? client.namespaceFromConfig ?? "fedbackup-system";
    const agentImage =
      values["agent-image"] ?? process.env.FEDBACKUP_AGENT_IMAGE ?? `ghcr.io/fedbackup/fedbackup:${VERSION}`;
    // The agent Jobs' pull secrets, node selector, tolerations, resources and priority class (the chart's agent.*).
    const agentJob = parseAgentJobSettings(process.env.FEDBACKUP_AGENT_JOB);
    const manager = new Manager({
      client,
      log,
      metrics,
      namespace,
      settings: { agentImage, ...agentJob },
      leaseDurationSeconds,
      concurrency,
    });

    let ready = false;
    const metricsServer = await listen(metricsAddress, (req, res) => {
      if (req.url !== "/metrics") return void res.writeHead(404).end();
      void metrics.registry
        .metrics()
        .then((text) => res.writeHead(200, { "Content-Type": metrics.registry.contentType }).end(text));
    });
    if (metricsServer) servers.push(metricsServer);
    const healthServer = await listen(healthAddress, (req, res) => {
      if (req.url === "/healthz") return void res.writeHead(200).end("ok");
      if (req.url === "/readyz") return void res.writeHead(ready ? 200 : 503).end(ready ? "ok" : "starting");
      res.writeHead(404).end();
    });
    if (healthServer) servers.push(healthServer);

    log.info("starting", { version: VERSION, namespace, agentImage });
    try {
      await manager.start();
    } catch (err) {
      await manager.stop().catch(() => undefined);
      throw err;
    }
    ready = true;
    log.info("caches synced; reconciling");

    await new Promise<void>((resolve) => {
      process.once("SIGTERM", resolve);
      process.once("SIGINT", resolve);
    });
    log.info("stopping");
    ready = false;
    await manager.stop();
    return 0;
  } finally {
    for (const server of servers) server.close();
    client.close();
  }
}
