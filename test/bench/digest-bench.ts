// Times `fedbackup digest -A -o json` end to end (LISTs + build + render) against a real local control plane
// holding 10,000 VMIs and 10 FederatedBackups of 3 node steps each (30 NodeSnapshots, ~100,000 captured
// entries), a WorkloadRestore, and 50 captured VMs that no longer exist (listed with --deleted, and timed
// once that way).
//
//   tsx test/bench/digest-bench.ts [vmis=10000] [runs=5]
//
// The control plane runs on this machine, so the API server's and etcd's CPU is part of the figures. Goal:
// median under 2 s.
import { ControlPlane, defaultNodes } from "../harness/control-plane.js";
import { readDigestInput, renderDigest, runDigest } from "../../src/cli/digest.js";
import { buildDigest } from "../../src/digest/index.js";
import { KubeClient } from "../../src/k8s/client.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";

const VMIS = Number(process.argv[2] ?? "10000");
const RUNS = Number(process.argv[3] ?? "5");
const NAMESPACES = 20;
const BACKUPS = 10;
const GONE = 50;
const CONCURRENCY = 50;
const BACKUP_NS = "bench-backups";
const MOUNT = "/var/lib/vmdisks";
const DAY = 86_400_000;

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
const nsOf = (i: number) => `bench-${String(i % NAMESPACES).padStart(2, "0")}`;
const vmName = (i: number) => `vm-${String(i).padStart(5, "0")}`;

/** Runs `task` for every item, `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function populate(client: KubeClient, nodes: string[]): Promise<void> {
  const now = Date.now();
  for (const name of [BACKUP_NS, ...Array.from({ length: NAMESPACES }, (_, i) => nsOf(i))]) {
    await client.create(Resources.Namespace, { apiVersion: "v1", kind: "Namespace", metadata: { name } });
  }

  let started = performance.now();
  const indices = Array.from({ length: VMIS }, (_, i) => i);
  await pool(indices, CONCURRENCY, (i) =>
    client.create(Resources.VirtualMachineInstance, {
      apiVersion: "kubevirt.io/v1",
      kind: "VirtualMachineInstance",
      metadata: {
        namespace: nsOf(i),
        name: vmName(i),
        labels: { app: `app-${i % 13}`, tier: i % 3 ? "web" : "db", "kubevirt.io/nodeName": nodes[i % nodes.length]! },
      },
      spec: {
        domain: { devices: { disks: [{ name: "disk0", disk: { bus: "virtio" } }] } },
        volumes: [
          {
            name: "disk0",
            hostDisk: { path: `${MOUNT}/${nsOf(i)}/${vmName(i)}/disk0.img`, type: "Disk", shared: true },
          },
        ],
      },
      status: { phase: "Running", nodeName: nodes[i % nodes.length]! },
    } as KubeObject),
  );
  console.log(`created ${VMIS} VMIs in ${seconds(performance.now() - started)}`);

  started = performance.now();
  let captured = 0;
  for (let b = 0; b < BACKUPS; b++) {
    const backup = `nightly-${b}`;
    const completion = now - (BACKUPS - b) * DAY;
    const fb = await client.create<KubeObject>(Resources.FederatedBackup, {
      apiVersion: "fedbackup.io/v1alpha1",
      kind: "FederatedBackup",
      metadata: { namespace: BACKUP_NS, name: backup },
      spec: {
        workloads: { namespaces: Array.from({ length: NAMESPACES }, (_, i) => nsOf(i)) },
        sharedVolume: { claimName: "vmdisks", nodeMountPath: MOUNT },
        location: { persistentVolumeClaim: { claimName: "backups" } },
      },
    } as KubeObject);
    await client.patch(
      Resources.FederatedBackup,
      BACKUP_NS,
      backup,
      {
        status: { phase: "PartiallyFailed", startTime: iso(completion - 3_600_000), completionTime: iso(completion) },
      },
      { subresource: "status" },
    );
    for (const [j, node] of nodes.entries()) {
      // Every 100th VM is never captured; backup 3 fails on the last node; the first backup also captured
      // VMs that are gone since.
      const failed = b === 3 && j === nodes.length - 1;
      const vms = failed ? [] : indices.filter((i) => i % nodes.length === j && i % 100 !== 99);
      const gone = b === 0 && j === 0 ? Array.from({ length: GONE }, (_, k) => VMIS + k) : [];
      const refs = [...vms, ...gone].map((i) => ({ namespace: nsOf(i), name: vmName(i) }));
      const step = `${backup}-r1-${node}`;
      await client.create(Resources.NodeSnapshot, {
        apiVersion: "fedbackup.io/v1alpha1",
        kind: "NodeSnapshot",
        metadata: {
          namespace: BACKUP_NS,
          name: step,
          labels: {
            "app.kubernetes.io/managed-by": "fedbackup",
            "fedbackup.io/backup": backup,
            "fedbackup.io/node": node,
            "fedbackup.io/round": "1",
          },
        },
        spec: {
          backupName: backup,
          backupUID: fb.metadata.uid!,
          node,
          round: 1,
          order: j + 1,
          sharedVolume: { claimName: "vmdisks", nodeMountPath: MOUNT },
          location: { persistentVolumeClaim: { claimName: "backups" }, path: backup },
          snapshot: { method: "Reflink", quiesce: "GuestAgent", freezeTimeout: "30s", maxFreeze: "2m" },
          extractAt: "Backup",
          workloads: refs.map((r) => ({ ...r, files: [`${r.namespace}/${r.name}/disk0.img`] })),
        },
      } as KubeObject);
      const stepDone = completion - (nodes.length - j) * 600_000;
      await client.patch(
        Resources.NodeSnapshot,
        BACKUP_NS,
        step,
        {
          status: failed
            ? {
                phase: "Failed",
                startTime: iso(stepDone - 60_000),
                completionTime: iso(stepDone),
                message: "node failed",
              }
            : {
                phase: "Succeeded",
                startTime: iso(stepDone - 600_000),
                completionTime: iso(stepDone),
                capturedCount: refs.length,
                captured: refs.map((r) => ({
                  ...r,
                  bytes: 10 * 1024 ** 3,
                  files: 1,
                  indication: "GuestAgent",
                  freezeWindowMs: 850,
                  manifest: `${backup}/${r.namespace}/${r.name}/manifest.json`,
                })),
              },
        },
        { subresource: "status" },
      );
      captured += failed ? 0 : refs.length;
    }
  }
  await client.create(Resources.WorkloadRestore, {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "WorkloadRestore",
    metadata: { namespace: BACKUP_NS, name: "restore-1" },
    spec: { backupRef: { name: `nightly-${BACKUPS - 1}` } },
  } as KubeObject);
  await client.patch(
    Resources.WorkloadRestore,
    BACKUP_NS,
    "restore-1",
    {
      status: {
        phase: "Completed",
        completionTime: iso(now - 3_600_000),
        results: indices
          .slice(0, 500)
          .map((i) => ({ namespace: nsOf(i), name: vmName(i), phase: "Restored", node: nodes[i % nodes.length] })),
      },
    },
    { subresource: "status" },
  );
  console.log(
    `created ${BACKUPS} FederatedBackups, ${BACKUPS * nodes.length} NodeSnapshots (${captured} captured entries) ` +
      `and 1 WorkloadRestore in ${seconds(performance.now() - started)}`,
  );
}

const cp = await ControlPlane.start({ nodes: defaultNodes(3) });
try {
  const client = new KubeClient(cp.kubeConfig);
  await populate(
    client,
    defaultNodes(3).map((n) => n.name),
  );

  const argv = ["--kubeconfig", cp.kubeconfigPath, "-A", "-o", "json"];
  const wall: number[] = [];
  const cpu: number[] = [];
  let bytes = 0;
  for (let run = 0; run < RUNS; run++) {
    let out = "";
    const cpuStart = process.cpuUsage();
    const started = performance.now();
    const code = await runDigest(
      argv,
      (s) => (out += s),
      (s) => process.stderr.write(s),
    );
    wall.push(performance.now() - started);
    const used = process.cpuUsage(cpuStart);
    cpu.push((used.user + used.system) / 1000);
    if (code !== 0) throw new Error(`fedbackup digest exited ${code}`);
    bytes = out.length;
    const rows = JSON.parse(out) as unknown[];
    if (rows.length !== VMIS) throw new Error(`expected ${VMIS} rows, got ${rows.length}`);
  }
  // The VMs that exist only in backups are listed with --deleted, and only then.
  let deletedOut = "";
  const deletedStarted = performance.now();
  const deletedCode = await runDigest(
    [...argv, "--deleted"],
    (s) => (deletedOut += s),
    (s) => process.stderr.write(s),
  );
  const deletedWall = performance.now() - deletedStarted;
  if (deletedCode !== 0) throw new Error(`fedbackup digest --deleted exited ${deletedCode}`);
  const deletedRows = (JSON.parse(deletedOut) as unknown[]).length;
  if (deletedRows !== GONE) throw new Error(`expected ${GONE} deleted rows, got ${deletedRows}`);

  // Where the time goes, in one more run split into its parts.
  let t = performance.now();
  const input = await readDigestInput(client, undefined);
  const list = performance.now() - t;
  t = performance.now();
  const rows = buildDigest(input, Date.now());
  const build = performance.now() - t;
  t = performance.now();
  renderDigest(rows, "json", Date.now());
  const render = performance.now() - t;

  // And each LIST alone (sequentially), with the size of what it returns.
  const each: string[] = [];
  for (const [label, type, labelSelector] of [
    ["VMIs", Resources.VirtualMachineInstance, undefined],
    ["NodeSnapshots", Resources.NodeSnapshot, "app.kubernetes.io/managed-by=fedbackup"],
    ["FederatedBackups", Resources.FederatedBackup, undefined],
    ["WorkloadRestores", Resources.WorkloadRestore, undefined],
    ["Nodes", Resources.Node, undefined],
  ] as const) {
    t = performance.now();
    const items = (await client.list(type, { ...(labelSelector ? { labelSelector } : {}), limit: 5000 })).items;
    const mib = JSON.stringify(items).length / 1024 ** 2;
    each.push(`${label} ${seconds(performance.now() - t)} (${mib.toFixed(1)} MiB)`);
  }

  const med = median(wall);
  console.log(
    `fedbackup digest -A -o json: ${VMIS} rows (of ${rows.length} built), ${(bytes / 1024 ** 2).toFixed(1)} MiB of JSON, ${RUNS} runs`,
  );
  console.log(
    `  wall: min ${seconds(Math.min(...wall))}, median ${seconds(med)}, max ${seconds(Math.max(...wall))}` +
      ` (${wall.map((w) => (w / 1000).toFixed(2)).join(" ")})`,
  );
  console.log(
    `  CPU of this process: median ${seconds(median(cpu))} (${cpu.map((c) => (c / 1000).toFixed(2)).join(" ")})`,
  );
  console.log(`  --deleted: ${deletedRows} rows in ${seconds(deletedWall)}`);
  console.log(`  one run split: LISTs ${seconds(list)}, build ${seconds(build)}, render ${seconds(render)}`);
  console.log(`  each LIST alone: ${each.join(", ")}`);
  console.log(`  median under 2 s: ${med < 2000 ? "yes" : "NO"}`);
  client.close();
} finally {
  await cp.stop();
}
