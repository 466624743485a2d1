// `make bench`, section 5: the freeze window of a VM whose disk is a claim cut with CSI (src/agent/csi.ts's
// takeVolumeSnapshot: freeze, one VolumeSnapshot per claim, wait for each cut point, thaw), for a 64 MiB and
// a 2 GiB Filesystem-mode claim of real (incompressible) data. Goal: the window does not grow with the
// claim's size (medians within CSI_SAME_MS).
//
// What is real and what is simulated: a real kube-apiserver (the test control plane), the agent's real code
// path and API calls, and a fake Freezer that answers at once (the guest agent's part is not measured). No
// CSI driver runs here: the test double (test/harness/csi-double.ts) plays the snapshot controller on
// hostPath volumes by copying the volume's directory. Run twice:
//   - "cut first": the double sets the snapshot's creationTime (the cut point) before it copies, as a driver
//     whose snapshot is a copy-on-write cut reports it; this is the window a real CSI driver gives;
//   - "copy is the cut": the double sets creationTime after its copy, as a driver that copies before it
//     reports the cut would; the window then grows with the size (shown for comparison, no goal).
//
//   tsx test/bench/csi-freeze-bench.ts [--runs N (default 3)]
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { takeVolumeSnapshot } from "../../src/agent/csi.js";
import type { Freezer } from "../../src/agent/quiesce.js";
import type { AgentLog, VmRef } from "../../src/agent/types.js";
import { vmKey } from "../../src/agent/types.js";
import type { NodeSnapshot } from "../../src/api/v1alpha1/index.js";
import { KubeClient } from "../../src/k8s/client.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { createPreboundClaim } from "../harness/block-volumes.js";
import { ControlPlane, defaultNodes } from "../harness/control-plane.js";
import { CsiDouble, CSI_DOUBLE_DRIVER } from "../harness/csi-double.js";
import { GiB, MiB, median, run, table, worst, writeIncompressible } from "./common.js";

const CSI_SAME_MS = 100;
const NS = "bench-csi";
const CLASS = "bench-csi";
const { values } = parseArgs({ options: { runs: { type: "string", default: "3" } } });
const RUNS = Math.max(1, Number(values.runs) || 3);

const quiet: AgentLog = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

/** A Freezer that answers at once and records what the guest would feel: freeze returned -> unfreeze called. */
class TimingFreezer implements Freezer {
  readonly felt: number[] = [];
  private readonly at = new Map<string, number>();
  freeze(vm: VmRef): Promise<void> {
    this.at.set(vmKey(vm), performance.now());
    return Promise.resolve();
  }
  unfreeze(vm: VmRef): Promise<void> {
    const from = this.at.get(vmKey(vm));
    if (from !== undefined) this.felt.push(performance.now() - from);
    this.at.delete(vmKey(vm));
    return Promise.resolve();
  }
}

interface Claim {
  label: string;
  name: string;
  bytes: number;
}

interface Row {
  mode: string;
  claim: Claim;
  reported: number[];
  felt: number[];
}

async function stepFor(
  client: KubeClient,
  claim: Claim,
  attempt: number,
  mode: string,
): Promise<NodeSnapshot & KubeObject> {
  const name = `bench-r${attempt}-${mode}-${claim.name}`;
  return client.create<NodeSnapshot & KubeObject>(Resources.NodeSnapshot, {
    apiVersion: "fedbackup.io/v1alpha1",
    kind: "NodeSnapshot",
    metadata: { name, namespace: NS },
    spec: {
      backupName: "bench",
      backupUID: "bench-uid",
      node: "node-a",
      round: attempt,
      order: 1,
      // Not read by takeVolumeSnapshot for a claim; the CRD may require it.
      sharedVolume: { claimName: "unused", nodeMountPath: "/unused" },
      location: { persistentVolumeClaim: { claimName: "unused" }, path: "bench" },
      snapshot: { method: "Auto", quiesce: "GuestAgent", freezeTimeout: "30s", maxFreeze: "2m" },
      extractAt: "Backup",
      workloads: [
        {
          namespace: NS,
          name: `vm-${claim.name}`,
          uid: `uid-${claim.name}`,
          files: [],
          claims: [
            {
              volume: "root",
              claimName: claim.name,
              sourceKind: "PersistentVolumeClaim",
              volumeMode: "Filesystem",
              snapshotMethod: "CSI",
              why: "bench",
              volumeSnapshotClassName: CLASS,
            },
          ],
        },
      ],
    },
  });
}

async function measure(cp: ControlPlane, client: KubeClient, claims: Claim[], cutFirst: boolean): Promise<Row[]> {
  const mode = cutFirst ? "cut-first" : "copy-is-cut";
  const csi = new CsiDouble(cp, { cutFirst });
  await csi.start();
  const rows: Row[] = [];
  try {
    await csi.ensureClass(CLASS);
    for (const claim of claims) {
      const row: Row = { mode, claim, reported: [], felt: [] };
      for (let attempt = 1; attempt <= RUNS; attempt++) {
        await run("sync");
        const step = await stepFor(client, claim, attempt, mode);
        const freezer = new TimingFreezer();
        const taken = await takeVolumeSnapshot(
          step,
          { freezeTimeoutMs: 30_000, maxFreezeMs: 120_000 },
          {
            client,
            freezer,
            isActiveOnNode: () => Promise.resolve({ active: true }),
            clock: Date,
            log: quiet,
            pollMs: 20,
          },
        );
        const window = taken.volumeSnapshot?.workloads?.[0]?.freezeWindowMs;
        if (window === undefined || taken.claimSnapshots.length !== 1 || taken.failed.length > 0)
          throw new Error(`${mode} ${claim.label}: no snapshot taken: ${JSON.stringify(taken)}`);
        row.reported.push(window);
        row.felt.push(...freezer.felt);
        // Wait for the double's copy (readyToUse) before the next run, then drop the snapshot and the step.
        const vsName = taken.claimSnapshots[0]!.volumeSnapshot;
        for (let i = 0; i < 6000; i++) {
          const vs = await client.get<KubeObject & { status?: { readyToUse?: boolean } }>(
            Resources.VolumeSnapshot,
            NS,
            vsName,
          );
          if (vs.status?.readyToUse) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        await client.delete(Resources.VolumeSnapshot, NS, vsName);
        await client.delete(Resources.NodeSnapshot, NS, step.metadata.name!);
        console.log(`  ${mode} ${claim.label} run ${attempt}/${RUNS}: freezeWindowMs ${window}`);
      }
      rows.push(row);
    }
  } finally {
    await csi.stop();
  }
  return rows;
}

async function main(): Promise<void> {
  console.log("");
  console.log(`== 5. Freeze window with CSI per claim: takeVolumeSnapshot, one VM on one claim, ${RUNS} runs each ==`);
  console.log(
    "(real kube-apiserver and agent code, fake Freezer answering at once; the CSI driver is the test double,\n" +
      ' copying a hostPath volume: "cut-first" reports the cut before its copy, as a copy-on-write CSI snapshot\n' +
      ' does; "copy-is-cut" reports it after, as a driver copying before the cut would)',
  );
  const dir = mkdtempSync(join(tmpdir(), "fedbackup-csi-bench-"));
  const cp = await ControlPlane.start({ nodes: defaultNodes(1) });
  const client = new KubeClient(cp.kubeConfig);
  try {
    await client.create(Resources.Namespace, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: NS },
    });
    const claims: Claim[] = [
      { label: "64 MiB", name: "claim-64mib", bytes: 64 * MiB },
      { label: "2 GiB", name: "claim-2gib", bytes: 2 * GiB },
    ];
    for (const claim of claims) {
      const volume = join(dir, claim.name);
      mkdirSync(volume);
      await writeIncompressible(join(volume, "disk.img"), claim.bytes, `bench-${claim.name}`);
      await createPreboundClaim(client, {
        namespace: NS,
        claimName: claim.name,
        pvName: `${NS}-${claim.name}`,
        capacity: String(claim.bytes + MiB),
        volumeMode: "Filesystem",
        source: { hostPath: { path: volume, type: "Directory" } },
        defaultAccessModes: ["ReadWriteOnce"],
        provisionedBy: CSI_DOUBLE_DRIVER,
      });
    }
    const rows = [...(await measure(cp, client, claims, true)), ...(await measure(cp, client, claims, false))];
    console.log(
      table([
        ["double", "claim", "freezeWindowMs median", "max", "all runs", "felt by the guest, median"],
        ...rows.map((r) => [
          r.mode,
          r.claim.label,
          `${median(r.reported).toFixed(0)} ms`,
          `${worst(r.reported).toFixed(0)} ms`,
          r.reported.map((v) => v.toFixed(0)).join(" "),
          `${median(r.felt).toFixed(1)} ms`,
        ]),
      ]),
    );
    const cut = rows.filter((r) => r.mode === "cut-first").map((r) => median(r.reported));
    const spread = Math.max(...cut) - Math.min(...cut);
    console.log("");
    console.log("== Summary (5) ==");
    console.log(
      table([
        ["goal", "measured", "result"],
        [
          `CSI freeze window about the same for 64 MiB and 2 GiB claims (cut-first; medians within ${CSI_SAME_MS} ms)`,
          `medians ${cut.map((m) => `${m.toFixed(0)} ms`).join(" and ")}, differ by ${spread.toFixed(0)} ms`,
          spread <= CSI_SAME_MS ? "PASS" : "MISS",
        ],
        ...rows
          .filter((r) => r.mode === "copy-is-cut")
          .map((r) => [
            `CSI freeze window when the double's copy is the cut, ${r.claim.label} (no goal; grows with the data)`,
            `median ${median(r.reported).toFixed(0)} ms`,
            "-",
          ]),
      ]),
    );
  } finally {
    client.close();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
