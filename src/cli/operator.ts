// `fedbackup operator`: runs the controllers until SIGTERM, serving /metrics, /healthz and /readyz.
import http from "node:http";
import { parseArgs } from "node:util";
import { Manager } from "../controllers/manager.js";
import { KubeClient } from "../k8s/client.js";
import { createLogger } from "../telemetry/logger.js";
import { OperatorMetrics } from "../telemetry/metrics.js";
import { VERSION } from "../version.js";

export const operatorUsage = `Usage: fedbackup operator [flags]

Flags:
  --kubeconfig PATH          kubeconfig to use (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)
  --namespace NS             namespace of the operator, where shared-volume Leases live
                             (default: $POD_NAMESPACE, else the kubeconfig's namespace, else fedbackup-system)
  --agent-image IMAGE        image of the node agent Jobs (default: $FEDBACKUP_AGENT_IMAGE)
  --metrics-bind-address A   address of /metrics (default :8080; "0" disables)
  --health-bind-address A    address of /healthz and /readyz (default :8081; "0" disables)
  --lease-duration SECONDS   duration of the shared-volume Lease (default 60)
  --concurrency N            backups reconciled at once (default 2)
`;

function listen(address: string, handler: http.RequestListener): http.Server | undefined {
  if (address === "0") return undefined;
  const [host, port] = address.includes(":")
    ? [address.slice(0, address.lastIndexOf(":")) || undefined, address.slice(address.lastIndexOf(":") + 1)]
    : [undefined, address];
  const server = http.createServer(handler);
  server.listen(Number(port), host);
  return server;
}

export async function runOperator(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
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
    process.stdout.write(operatorUsage);
    return 0;
  }
  const log = createLogger("operator");
  const metrics = new OperatorMetrics();
  const client = KubeClient.load(values.kubeconfig, metrics.observeRequest);
  const namespace = values.namespace ?? process.env.POD_NAMESPACE ?? client.namespaceFromConfig ?? "fedbackup-system";
  const agentImage =
    values["agent-image"] ?? process.env.FEDBACKUP_AGENT_IMAGE ?? `ghcr.io/fedbackup/fedbackup:${VERSION}`;
  const manager = new Manager({
    client,
    log,
    metrics,
    namespace,
    settings: { agentImage },
    leaseDurationSeconds: Number(values["lease-duration"]),
    concurrency: Number(values.concurrency),
  });

  let ready = false;
  const metricsServer = listen(values["metrics-bind-address"], (req, res) => {
    if (req.url !== "/metrics") return void res.writeHead(404).end();
    void metrics.registry
      .metrics()
      .then((text) => res.writeHead(200, { "Content-Type": metrics.registry.contentType }).end(text));
  });
  const healthServer = listen(values["health-bind-address"], (req, res) => {
    if (req.url === "/healthz") return void res.writeHead(200).end("ok");
    if (req.url === "/readyz") return void res.writeHead(ready ? 200 : 503).end(ready ? "ok" : "starting");
    res.writeHead(404).end();
  });

  log.info("starting", { version: VERSION, namespace, agentImage });
  await manager.start();
  ready = true;
  log.info("caches synced; reconciling");

  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  log.info("stopping");
  ready = false;
  await manager.stop();
  metricsServer?.close();
  healthServer?.close();
  client.close();
  return 0;
}
