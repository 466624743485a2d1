// Every VMI's life during a test, watched from the API server: which node it was on and when it existed, so
// that a test can say no VM ever had two instances and none ran while a restore Job wrote its disks.
import assert from "node:assert/strict";
import type { VirtualMachineInstance } from "../../src/api/kubevirt.js";
import { Informer } from "../../src/k8s/informer.js";
import { Resources } from "../../src/k8s/resources.js";
import type { KubeObject } from "../../src/k8s/types.js";
import type { JobRecord } from "./backup-observer.js";
import { adminClient } from "./operator-env.js";

type Vmi = VirtualMachineInstance & KubeObject;

/** Every VMI's lifetime, per VM: when it existed, on which node, under which uid. */
export class InstanceLog {
  readonly lives = new Map<string, Array<{ uid: string; from: number; to?: number; nodes: string[] }>>();
  private readonly informer: Informer<Vmi>;

  constructor(namespace: string) {
    this.informer = new Informer<Vmi>(
      adminClient(),
      Resources.VirtualMachineInstance,
      { namespace },
      { warn: () => {} },
    );
    this.informer.on((event, vmi) => {
      const name = vmi.metadata.name!;
      const lives = this.lives.get(name) ?? [];
      this.lives.set(name, lives);
      const node = vmi.status?.nodeName ?? "";
      let life = lives.find((l) => l.uid === vmi.metadata.uid);
      if (!life) {
        life = { uid: vmi.metadata.uid!, from: Date.now(), nodes: [] };
        lives.push(life);
      }
      if (node && life.nodes.at(-1) !== node) life.nodes.push(node);
      if (event === "delete") life.to = Date.now();
    });
  }

  start = () => this.informer.start();
  stop = () => this.informer.stop();

  /** At no moment two instances of one VM. */
  assertNeverTwo(): void {
    for (const [name, lives] of this.lives) {
      const sorted = [...lives].sort((a, b) => a.from - b.from);
      for (let i = 1; i < sorted.length; i++) {
        const before = sorted[i - 1]!;
        assert.ok(before.to !== undefined && before.to <= sorted[i]!.from, `${name}: two instances at once`);
      }
    }
  }

  /** No instance of the VM existed while the Job ran (its disks were written then). */
  assertStoppedDuring(name: string, job: JobRecord): void {
    for (const life of this.lives.get(name) ?? []) {
      const overlaps = life.from < (job.finishedAt ?? Infinity) && (life.to ?? Infinity) > job.createdAt;
      assert.ok(!overlaps, `${name} had an instance on ${life.nodes.join(" -> ")} while Job ${job.name} ran`);
    }
  }
}
