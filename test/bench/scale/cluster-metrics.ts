// Scrapes of the control plane the scale benchmark reads before and after a backup: the kube-apiserver's
// request counter (apiserver_request_total, by verb and resource) and etcd's bytes written to its WAL. etcd
// serves /metrics on its client URL, which the harness does not expose: it is read from the etcd process's
// command line (the control plane's pids file).
import { readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import type { ControlPlane } from "../../harness/control-plane.js";
import { parsePrometheus, sumBy, valueOf, type Sample } from "./prometheus.js";

/** The client URL etcd listens on, from its command line. */
export function etcdUrl(cp: ControlPlane): string | undefined {
  try {
    for (const line of readFileSync(path.join(cp.dir, "pids"), "utf8").split("\n")) {
      const [pid, name] = line.split(" ");
      if (name !== "etcd") continue;
      const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const flag = args.find((a) => a.startsWith("--listen-client-urls="));
      return flag?.slice("--listen-client-urls=".length).split(",")[0];
    }
  } catch {
    // no etcd figures then
  }
  return undefined;
}

function getText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { timeout: 10_000 }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve(body));
      })
      .on("error", reject);
  });
}

export interface ClusterScrape {
  at: number;
  /** apiserver_request_total summed by "VERB resource[/subresource]". */
  apiserverRequests: Map<string, number>;
  etcdWalBytes?: number;
  etcdDbBytes?: number;
}

/** apiserver_request_total keyed as the operator's and the harness's clients key their counts. */
export function apiserverRequests(samples: readonly Sample[]): Map<string, number> {
  const byLabels = sumBy(samples, "apiserver_request_total", ["verb", "resource", "subresource"]);
  const out = new Map<string, number>();
  for (const [key, value] of byLabels) {
    const [verb, resource, sub] = key.split(" ");
    if (!resource) continue;
    const k = `${verb} ${resource}${sub ? `/${sub}` : ""}`;
    out.set(k, (out.get(k) ?? 0) + value);
  }
  return out;
}

export async function scrapeCluster(cp: ControlPlane, etcd: string | undefined): Promise<ClusterScrape> {
  const at = Date.now();
  const api = await cp.get("/metrics");
  const scrape: ClusterScrape = { at, apiserverRequests: apiserverRequests(parsePrometheus(api.body)) };
  if (etcd) {
    const samples = parsePrometheus(await getText(`${etcd}/metrics`).catch(() => ""));
    scrape.etcdWalBytes = valueOf(samples, "etcd_disk_wal_write_bytes_total");
    scrape.etcdDbBytes = valueOf(samples, "etcd_mvcc_db_total_size_in_bytes");
  }
  return scrape;
}
