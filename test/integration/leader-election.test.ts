// Two operator processes with --leader-elect: only the leader reconciles; SIGKILLed mid-backup, the other
// takes over within the lease duration and the backup ends as if nothing happened; on SIGTERM the leader
// finishes, releases the Lease and exits 0.
import assert from "node:assert/strict";
import net from "node:net";
import { microTime } from "../../src/api/timestamps.js";
import type { FederatedBackup, NodeSnapshot } from "../../src/api/v1alpha1/index.js";
import { LEADER_LEASE_NAME } from "../../src/k8s/leader-election.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import type { LeaseObject } from "../../src/k8s/volume-lease.js";
import { createVm, type VmFixture } from "../harness/workloads.js";
import { BackupObserver } from "./backup-observer.js";
import {
  adminClient,
  backupManifest,
  backupEnv,
  kubevirtDouble,
  OPERATOR_NAMESPACE,
  podRunner,
  startOperatorProcess,
  waitFor,
} from "./operator-env.js";

type Backup = FederatedBackup & KubeObject;

const LEASE_DURATION_MS = 4_000;
const electionArgs = [
  "--leader-elect",
  `--leader-elect-lease-duration=${LEASE_DURATION_MS}ms`,
  "--leader-elect-renew-deadline=3s",
  "--leader-elect-retry-period=500ms",
];

const VMS: VmFixture[] = [
  { name: "a1", node: "node-a" },
  { name: "b1", node: "node-b" },
  { name: "b2", node: "node-b" },
  { name: "b3", node: "node-b" },
  { name: "c1", node: "node-c" },
  { name: "c2", node: "node-c" },
];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** An operator process with leader election, its pod name `host`, its health and metrics endpoints on local ports. */
async function candidate(host: string) {
  const [health, metrics] = [await freePort(), await freePort()];
  const proc = await startOperatorProcess({
    args: [...electionArgs, `--health-bind-address=127.0.0.1:${health}`, `--metrics-bind-address=127.0.0.1:${metrics}`],
    env: { HOSTNAME: host },
  });
  const get = async (port: number, path: string) => {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      return { status: res.status, text: await res.text() };
    } catch {
      return { status: 0, text: "" };
    }
  };
  return {
    ...proc,
    host,
    probe: (path: "/healthz" | "/readyz") => get(health, path),
    metrics: async () => (await get(metrics, "/metrics")).text,
  };
}

async function leaderHolder(): Promise<string> {
  try {
    const lease = await adminClient().get<LeaseObject>(Resources.Lease, OPERATOR_NAMESPACE, LEADER_LEASE_NAME);
    return lease.spec?.holderIdentity ?? "";
  } catch {
    return "";
  }
}

/** API writes (other than to Leases), Lease reads and reconcile passes counted in a /metrics text. */
function writesAndPasses(text: string): { writes: string[]; passes: number; leaseReads: number } {
  const writes: string[] = [];
  let passes = 0;
  let leaseReads = 0;
  for (const line of text.split("\n")) {
    const request = /^fedbackup_api_requests_total\{verb="(\w+)",resource="([^"]+)".*\} (\d+)/.exec(line);
    if (request && ["POST", "PUT", "PATCH", "DELETE"].includes(request[1]!) && request[2] !== "leases")
      writes.push(line);
    if (request && request[1] === "GET" && request[2] === "leases") leaseReads += Number(request[3]);
    const pass = /^fedbackup_reconciles_total\{.*\} (\d+)/.exec(line);
    if (pass) passes += Number(pass[1]);
  }
  return { writes, passes, leaseReads };
}

describe("Leader election", function () {
  this.timeout(120_000);

  before(async () => {
    await kubevirtDouble();
    await podRunner();
  });

  it("runs only the leader; after a SIGKILL mid-backup the other takes over within the lease duration", async () => {
    const env = await backupEnv("fb-leader");
    const a = await candidate("op-a");
    let b: Awaited<ReturnType<typeof candidate>> | undefined;
    let killedAt = 0;
    let standbyBeforeKill: ReturnType<typeof writesAndPasses> | undefined;
    const observer = new BackupObserver([env.namespace], async (_job, event) => {
      if (event !== "created" || killedAt) return;
      // Mid-backup: the first node Job exists. The standby has reconciled nothing and written nothing.
      standbyBeforeKill = writesAndPasses(await b!.metrics());
      killedAt = Date.now();
      await a.kill();
    });
    await observer.start();
    try {
      await waitFor("op-a to lead", 30_000, async () =>
        (await leaderHolder()).startsWith("op-a_") ? true : undefined,
      );
      b = await candidate("op-b");
      await waitFor("op-b to be ready (caches synced)", 30_000, async () =>
        (await b!.probe("/readyz")).status === 200 ? true : undefined,
      );
      assert.equal((await b.probe("/healthz")).status, 200);
      assert.ok((await leaderHolder()).startsWith("op-a_"), "op-a still leads");

      for (const vm of VMS) await createVm(adminClient(), env.namespace, env.shared.hostDir, vm);
      await adminClient().create(Resources.FederatedBackup, backupManifest(env, "nightly"));

      await waitFor("op-a to be killed", 60_000, () => (killedAt ? true : undefined));
      await waitFor("op-b to lead", 30_000, async () =>
        (await leaderHolder()).startsWith("op-b_") ? true : undefined,
      );
      const failoverMs = Date.now() - killedAt;
      process.stderr.write(`      leader failover after SIGKILL: ${failoverMs} ms\n`);
      // The lease duration after the last renewal the standby saw, plus at most its next retry (500 ms and jitter).
      assert.ok(failoverMs <= LEASE_DURATION_MS + 1_500, `failover took ${failoverMs} ms`);
      assert.ok(standbyBeforeKill && standbyBeforeKill.leaseReads > 0, "the standby was campaigning");
      assert.deepEqual(standbyBeforeKill.writes, [], "the standby wrote nothing before it led");
      assert.equal(standbyBeforeKill.passes, 0, "the standby ran no pass before it led");

      const fb = await waitFor("the backup to finish", 90_000, async () => {
        const o = await adminClient().get<Backup>(Resources.FederatedBackup, env.namespace, "nightly");
        return ["Completed", "PartiallyFailed", "Failed"].includes(o.status?.phase ?? "") ? o : undefined;
      });
      assert.equal(fb.status?.phase, "Completed", JSON.stringify(fb.status, null, 1));
      assert.equal(fb.status?.progress?.workloadsCaptured, VMS.length);
      assert.deepEqual(
        observer.jobs.map((j) => j.node),
        ["node-b", "node-c", "node-a"],
        "one Job per node step, none repeated",
      );
      assert.deepEqual(observer.overlaps, []);
      const steps = await adminClient().list<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, {
        namespace: env.namespace,
        labelSelector: "fedbackup.io/backup=nightly",
      });
      const captured = steps.items.flatMap((s) => (s.status?.captured ?? []).map((c) => c.name)).sort();
      assert.deepEqual(captured, VMS.map((vm) => vm.name).sort(), "every VM captured once");
      const double = await kubevirtDouble();
      for (const vm of VMS)
        assert.deepEqual(
          double.callsFor(env.namespace, vm.name).map((c) => c.op),
          ["freeze", "unfreeze"],
          `${vm.name} frozen and thawed exactly once`,
        );

      // SIGTERM: the leader finishes, releases the Lease (holder emptied) and exits 0.
      const exit = new Promise<number | null>((resolve) => b!.child.once("exit", (code) => resolve(code)));
      b.child.kill("SIGTERM");
      assert.equal(await exit, 0);
      assert.equal(await leaderHolder(), "");
    } finally {
      await a.kill();
      await b?.kill();
      await observer.stop();
      env.cleanup();
    }
  });

  it("a leader that finds the Lease held by another stops at once and exits 1", async () => {
    const a = await candidate("op-lost");
    try {
      await waitFor("op-lost to lead", 30_000, async () =>
        (await leaderHolder()).startsWith("op-lost_") ? true : undefined,
      );
      const exit = new Promise<number | null>((resolve) => a.child.once("exit", (code) => resolve(code)));
      const lease = await adminClient().get<LeaseObject>(Resources.Lease, OPERATOR_NAMESPACE, LEADER_LEASE_NAME);
      await adminClient().replace(Resources.Lease, {
        ...lease,
        spec: { ...lease.spec, holderIdentity: "someone-else", renewTime: microTime(Date.now()) },
      });
      const stolenAt = Date.now();
      assert.equal(await exit, 1);
      assert.ok(Date.now() - stolenAt < 3_000, `exited ${Date.now() - stolenAt} ms after the Lease changed hands`);
    } finally {
      await a.kill();
      // Give the Lease back for the tests after this one.
      const lease = await adminClient().get<LeaseObject>(Resources.Lease, OPERATOR_NAMESPACE, LEADER_LEASE_NAME);
      await adminClient().replace(Resources.Lease, { ...lease, spec: { ...lease.spec, holderIdentity: "" } });
    }
  });
});
