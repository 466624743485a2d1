// `fedbackup operator`: runs the controllers until SIGTERM, serving /metrics, /healthz and /readyz.
import http from "node:http";
import { parseAgentJobSettings } from "../controllers/runtime/agent-job.js";
import { Manager } from "../controllers/manager.js";
import { API_USAGE_MESSAGE } from "../k8s/api-usage.js";
import { KubeClient } from "../k8s/client.js";
import { parseDuration } from "../api/duration.js";
import { invalidTiming, LEADER_LEASE_NAME, type LeaderTiming } from "../k8s/leader-election.js";
import { createLogger, LOG_FORMATS, LOG_LEVELS, type LogFormat } from "../telemetry/logger.js";
import { OperatorMetrics } from "../telemetry/metrics.js";
import { VERSION } from "../version.js";
import { integerFlag, parseFlags, stdio, UsageError, type Io } from "./flags.js";

export const operatorUsage = `Usage: fedbackup operator [flags]

Flags:
  --kubeconfig PATH          kubeconfig to use (default: $KUBECONFIG, else in-cluster, else ~/.kube/config)
  --namespace NS             namespace of the operator, where the storage Leases live
                             (default: $POD_NAMESPACE, else the kubeconfig's namespace, else fedbackup-system)
  --agent-image IMAGE        image of the node agent Jobs (default: $FEDBACKUP_AGENT_IMAGE)
                             ($FEDBACKUP_AGENT_JOB: JSON of the agent Jobs' imagePullPolicy, imagePullSecrets,
                             nodeSelector, tolerations, resources and priorityClassName)
  --metrics-bind-address A   address of /metrics (default :8080; "0" disables)
  --health-bind-address A    address of /healthz and /readyz (default :8081; "0" disables)
  --lease-duration SECONDS   duration of the storage back ends' Leases (default 60)
  --concurrency N            backups reconciled at once (default 2)
  --leader-elect             reconcile only while holding the Lease ${LEADER_LEASE_NAME} in NS, so that
                             several replicas can run (default off)
  --leader-elect-lease-duration D  how long others wait for a leader that stopped renewing (default 15s)
  --leader-elect-renew-deadline D  how long the leader tries to renew before it gives up and exits (default 10s)
  --leader-elect-retry-period D    how often the Lease is read and renewed (default 2s)
  --log-level LEVEL          error, warn, info or debug (default: $FEDBACKUP_LOG_LEVEL, else info)
  --log-format FORMAT        json (one object per line) or text (default: $FEDBACKUP_LOG_FORMAT, else json)
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

/** A Go duration ("15s", "1m30s", "500ms"); anything else is a UsageError naming the flag. */
function durationFlag(flag: string, text: string): number {
  try {
    const ms = parseDuration(text);
    if (ms > 0) return ms;
  } catch {
    // reported below
  }
  throw new UsageError(`--${flag}: "${text}" is not a positive duration such as 15s or 1m`);
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
      "leader-elect": { type: "boolean", default: false },
      "leader-elect-lease-duration": { type: "string", default: "15s" },
      "leader-elect-renew-deadline": { type: "string", default: "10s" },
      "leader-elect-retry-period": { type: "string", default: "2s" },
      "log-level": { type: "string", default: process.env.FEDBACKUP_LOG_LEVEL ?? "info" },
      "log-format": { type: "string", default: process.env.FEDBACKUP_LOG_FORMAT ?? "json" },
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

  const timing: LeaderTiming = {
    leaseDurationMs: durationFlag("leader-elect-lease-duration", values["leader-elect-lease-duration"]),
    renewDeadlineMs: durationFlag("leader-elect-renew-deadline", values["leader-elect-renew-deadline"]),
    retryPeriodMs: durationFlag("leader-elect-retry-period", values["leader-elect-retry-period"]),
  };
  const badTiming = invalidTiming(timing);
  if (badTiming) throw new UsageError(`--leader-elect-*: ${badTiming}`);
  const logLevel = values["log-level"];
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel))
    throw new UsageError(`--log-level: "${logLevel}" is not one of ${LOG_LEVELS.join(", ")}`);
  const logFormat = values["log-format"] as LogFormat;
  if (!LOG_FORMATS.includes(logFormat))
    throw new UsageError(`--log-format: "${logFormat}" is not one of ${LOG_FORMATS.join(", ")}`);

  const log = createLogger("operator", logLevel, logFormat);
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
      ...(values["leader-elect"]
        ? {
            leaderElection: {
              timing,
              // Stop at once and let the Deployment restart this replica as a candidate (as controller-runtime does).
              onLost: (reason: string) => {
                log.error("lost the leader Lease; exiting", { reason });
                process.exit(1);
              },
            },
          }
        : {}),
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
      if (req.url === "/healthz") {
        const health = manager.health();
        if (health.ok) return void res.writeHead(200).end("ok");
        const since = (at?: number) => Math.round((Date.now() - (at ?? 0)) / 1000);
        const broken = health.broken.map((h) => `${h.resource} (broken for ${since(h.brokenSince)}s)`);
        return void res.writeHead(500).end(`watches broken: ${broken.join(", ")}`);
      }
      // Ready once the caches have their first lists (a replica waiting for leadership is ready too).
      if (req.url === "/readyz") return void res.writeHead(ready ? 200 : 503).end(ready ? "ok" : "starting");
      res.writeHead(404).end();
    });
    if (healthServer) servers.push(healthServer);

    log.info("starting", {
      version: VERSION,
      namespace,
      agentImage,
      leaderElection: values["leader-elect"] ? manager.elector?.identity : false,
    });
    try {
      await manager.start();
    } catch (err) {
      await manager.stop().catch(() => undefined);
      throw err;
    }
    ready = true;
    log.info(manager.elector ? "caches synced; reconciling once leader" : "caches synced; reconciling");

    await new Promise<void>((resolve) => {
      process.once("SIGTERM", resolve);
      process.once("SIGINT", resolve);
    });
    log.info("stopping: taking no more work, finishing the passes under way");
    ready = false;
    await manager.stop();
    log.info(API_USAGE_MESSAGE, { requests: client.usage.summary() });
    log.info("stopped");
    return 0;
  } finally {
    for (const server of servers) server.close();
    client.close();
  }
}
