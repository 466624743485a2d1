// The world the chaos runs share: one real control plane with 5 kwok nodes, the KubeVirt subresource
// double (its freeze record), the simulated VM controller (its live migrations), the pod runner executing
// agent pods for real on real files, and the operator as its own process. Each run gets a namespace of its
// own with a shared volume and a backup location (real directories) and 30 VMs with hostDisk files. As root
// with mkfs.xfs, all of it is on one loop-mounted XFS with reflink, so that backups can cut with Reflink.
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { VirtualMachineInstance } from "../../src/api/kubevirt.js";
import { KubeClient } from "../../src/k8s/client.js";
import { isNotFound } from "../../src/k8s/errors.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import { ControlPlane, defaultNodes } from "../harness/control-plane.js";
import { KubeVirtDouble } from "../harness/kubevirt-double.js";
import { SimulatedVmController } from "../harness/kubevirt-vms.js";
import { applyOperatorRbac } from "../harness/operator-rbac.js";
import { xfsImage, type XfsImage } from "../harness/xfs.js";
import { PodRunner } from "../harness/pod-runner.js";
import {
  createVirtualMachine,
  createVolume,
  diskPaths,
  type VmFixture,
  type VolumeFixture,
} from "../harness/workloads.js";
import { OperatorProcess } from "./operator-process.js";

export const NODE_COUNT = 5;
export const VM_COUNT = 30;
const SMALL_DISK = 256 * 1024;
/** Disks of the VMs on a node whose agent is killed mid-copy: big enough for the copy to take a while. */
const BIG_DISK = 24 * 1024 * 1024;
/** The XFS image under the world's directory: sparse, so only what the runs write takes space. */
const XFS_MIB = 8192;

interface MountedXfs {
  image: XfsImage;
  unmount: () => void;
}

/** The world's directory on a fresh XFS, or undefined (and why, logged) where there cannot be one. */
function mountXfs(dir: string, log: (m: string) => void): MountedXfs | undefined {
  const image = xfsImage(XFS_MIB);
  const without = (why: string): undefined => {
    log(`no XFS (${why}): volumes on ${os.tmpdir()}, backups with the default snapshot method, not pipelined`);
    return undefined;
  };
  if (typeof image === "string") return without(image);
  let unmount: () => void;
  try {
    unmount = image.mount(dir);
  } catch (err) {
    image.cleanup();
    return without(`mount failed: ${String(err)}`);
  }
  log(`volumes on a loop-mounted XFS with reflink at ${dir}: backups pipelined, cut with Reflink`);
  return { image, unmount };
}

export interface RunEnv {
  namespace: string;
  root: string;
  shared: VolumeFixture;
  location: VolumeFixture;
  vms: Array<VmFixture & { node: string }>;
  /** sha256 of each disk file as written, by its path relative to the shared volume. */
  sourceSha256: Map<string, string>;
}

export class ChaosWorld {
  readonly nodes: string[];
  private runCounter = 0;

  private constructor(
    readonly cp: ControlPlane,
    readonly admin: KubeClient,
    readonly double: KubeVirtDouble,
    readonly runner: PodRunner,
    readonly sim: SimulatedVmController,
    readonly operator: OperatorProcess,
    readonly dir: string,
    private readonly xfs: MountedXfs | undefined,
    private readonly log: (m: string) => void,
  ) {
    this.nodes = defaultNodes(NODE_COUNT).map((n) => n.name);
  }

  /** True when the runs' volumes are on XFS with reflink. */
  get onXfs(): boolean {
    return this.xfs !== undefined;
  }

  static async start(log: (m: string) => void): Promise<ChaosWorld> {
    const dir = mkdtempSync(path.join(os.tmpdir(), "fedbackup-chaos-"));
    const xfs = mountXfs(dir, log);
    try {
      return await ChaosWorld.startOn(dir, xfs, log);
    } catch (err) {
      xfs?.unmount();
      xfs?.image.cleanup();
      throw err;
    }
  }

  private static async startOn(dir: string, xfs: MountedXfs | undefined, log: (m: string) => void) {
    const keep = !!process.env.CHAOS_KEEP;
    const cp = await ControlPlane.start({ nodes: defaultNodes(NODE_COUNT), log, keep });
    const admin = new KubeClient(cp.kubeConfig);
    await applyOperatorRbac(admin);
    const double = new KubeVirtDouble(cp);
    await double.start();
    const runner = new PodRunner(cp);
    await runner.start();
    const sim = new SimulatedVmController(admin);
    await sim.start();
    const operator = new OperatorProcess(cp, dir);
    await operator.start();
    log(`control plane ${cp.serverVersion} at ${cp.server}; logs in ${cp.dir}/logs and ${dir}`);
    return new ChaosWorld(cp, admin, double, runner, sim, operator, dir, xfs, log);
  }

  async stop(): Promise<void> {
    await this.operator.kill();
    await this.sim.stop();
    await this.runner.stop();
    await this.double.stop();
    this.admin.close();
    await this.cp.stop();
    if (process.env.CHAOS_KEEP) {
      if (this.xfs) this.log(`${this.dir} is still mounted (umount it, then remove it, when done)`);
      return;
    }
    this.xfs?.unmount();
    this.xfs?.image.cleanup();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * A namespace with its volumes and 30 VMs spread unevenly over the nodes by `random` (every node gets at
   * least one), running; the VMs of `bigDisksOn` get big disks.
   */
  async newRun(label: string, random: () => number, bigDisksOn?: string): Promise<RunEnv> {
    const namespace = `chaos-${label}-${++this.runCounter}`;
    await this.admin.create(Resources.Namespace, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: namespace, labels: { "pod-security.kubernetes.io/enforce": "baseline" } },
    });
    await this.waitFor(`the default ServiceAccount of ${namespace}`, 30_000, async () =>
      (await this.admin.get(Resources.ServiceAccount, namespace, "default").catch(() => undefined)) ? true : undefined,
    );
    const root = mkdtempSync(path.join(this.dir, `${namespace}-`));
    const shared = await createVolume(this.admin, namespace, "vmdisks", path.join(root, "shared"));
    const location = await createVolume(this.admin, namespace, "backups", path.join(root, "location"));
    const vms = Array.from({ length: VM_COUNT }, (_, i) => {
      const node = i < this.nodes.length ? this.nodes[i]! : this.nodes[Math.floor(random() * this.nodes.length)]!;
      return { name: `vm-${String(i).padStart(2, "0")}`, node, disks: [node === bigDisksOn ? BIG_DISK : SMALL_DISK] };
    });
    const sourceSha256 = new Map<string, string>();
    for (const vm of vms) {
      await createVirtualMachine(this.admin, namespace, shared.hostDir, vm);
      for (const rel of diskPaths(namespace, vm))
        sourceSha256.set(
          rel,
          createHash("sha256")
            .update(readFileSync(path.join(shared.hostDir, rel)))
            .digest("hex"),
        );
    }
    await this.waitFor(`${VM_COUNT} VMIs Running in ${namespace}`, 60_000, async () => {
      const list = await this.admin.list<VirtualMachineInstance & KubeObject>(Resources.VirtualMachineInstance, {
        namespace,
      });
      return list.items.filter((v) => v.status?.phase === "Running").length === VM_COUNT ? true : undefined;
    });
    return { namespace, root, shared, location, vms, sourceSha256 };
  }

  /** Deletes a run's namespace and volumes (its backups retain their files: nothing runs a cleanup). */
  async disposeRun(env: RunEnv): Promise<void> {
    const ignoreGone = (err: unknown) => {
      if (!isNotFound(err)) throw err;
    };
    await this.admin.delete(Resources.Namespace, undefined, env.namespace).catch(ignoreGone);
    for (const v of [env.shared, env.location])
      await this.admin.delete(Resources.PersistentVolume, undefined, v.pvName).catch(ignoreGone);
    rmSync(env.root, { recursive: true, force: true });
  }

  /** kwok's Ready condition of a node: False (as a node that stopped reporting), or back to True. */
  async setNodeReady(node: string, ready: boolean): Promise<void> {
    await this.admin.patch(Resources.Node, undefined, node, {
      metadata: { labels: { "fedbackup.test/condition": ready ? null : "down" } },
    });
    if (ready) return this.cp.waitForNodeReady(node);
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    await this.admin.patch(
      Resources.Node,
      undefined,
      node,
      {
        status: {
          conditions: [
            {
              type: "Ready",
              status: "False",
              reason: "NodeStatusUnknown",
              message: "chaos: node went away",
              lastHeartbeatTime: now,
              lastTransitionTime: now,
            },
          ],
        },
      },
      { subresource: "status" },
    );
  }

  async waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe().catch(() => undefined);
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(100);
    }
  }
}
