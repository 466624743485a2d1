// The samples hold together as a user applies them: every VirtualMachine's disks and volumes match, its claims
// and DataVolumes are where it names them, fedbackup sees the disks the comments promise, and each
// FederatedBackup selects its VMs in its own namespace, on claims that samples/shared-volume.yaml creates.
// (test/integration/samples.test.ts has the API server accept every object.)
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { loadAll } from "js-yaml";
import { matchesLabelSelector } from "../../../src/controllers/federatedbackup/label-selector.js";
import { buildDigest, tableCells, TABLE_COLUMNS, type DigestVmi } from "../../../src/digest/index.js";
import { classifyVmDisks, type ObservedClaim } from "../../../src/planning/vm-disks.js";
import { REPO_ROOT } from "../../harness/binaries.js";

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec: Record<string, unknown>;
}

interface VmSpec {
  runStrategy?: string;
  dataVolumeTemplates?: Array<{
    metadata: { name: string };
    spec: { source?: Record<string, unknown>; storage?: { volumeMode?: string; accessModes?: string[] } };
  }>;
  template: {
    metadata: { labels?: Record<string, string> };
    spec: {
      domain: { devices: { disks: Array<{ name: string; disk?: { bus?: string } }> } };
      volumes: Array<{ name: string; [source: string]: unknown }>;
    };
  };
}

const SAMPLES = path.join(REPO_ROOT, "samples");
const files = readdirSync(SAMPLES).filter((f) => f.endsWith(".yaml"));
const docsOf = (file: string): Doc[] =>
  (loadAll(readFileSync(path.join(SAMPLES, file), "utf8")) as Array<Doc | null>).filter((d): d is Doc => !!d);
const all = files.flatMap((f) => docsOf(f).map((doc) => ({ file: f, doc })));
const ofKind = (kind: string) => all.filter(({ doc }) => doc.kind === kind);

/** The claims the samples create (PersistentVolumeClaims and DataVolume templates' claims), Bound as once applied. */
function sampleClaims(): ObservedClaim[] {
  const claims: ObservedClaim[] = ofKind("PersistentVolumeClaim").map(({ doc }) => {
    const spec = doc.spec as { volumeMode?: string; accessModes?: string[] };
    return {
      name: doc.metadata.name,
      phase: "Bound",
      volumeMode: spec.volumeMode === "Block" ? "Block" : "Filesystem",
      accessModes: spec.accessModes ?? [],
    };
  });
  for (const { doc } of ofKind("VirtualMachine")) {
    for (const t of (doc.spec as unknown as VmSpec).dataVolumeTemplates ?? []) {
      claims.push({
        name: t.metadata.name,
        phase: "Bound",
        volumeMode: t.spec.storage?.volumeMode === "Block" ? "Block" : "Filesystem",
        accessModes: t.spec.storage?.accessModes ?? [],
      });
    }
  }
  return claims;
}

describe("samples", () => {
  it("are each named in the README, the hostDisk and the claim layout alike", () => {
    for (const f of ["federatedbackup.yaml", "shared-volume.yaml", "vms-on-claims.yaml", "federatedbackup-claims.yaml"])
      assert.ok(files.includes(f), `samples/${f} is missing`);
    const readme = readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
    for (const f of files) assert.ok(readme.includes(`samples/${f}`), `README.md does not mention samples/${f}`);
  });

  it("put every namespaced object in default, as samples/shared-volume.yaml says", () => {
    for (const { file, doc } of all) {
      assert.ok(
        doc.apiVersion && doc.kind && doc.metadata?.name,
        `${file}: an object without apiVersion, kind or name`,
      );
      if (doc.kind !== "PersistentVolume") assert.equal(doc.metadata.namespace, "default", `${file}: ${doc.kind}`);
    }
  });

  for (const { file, doc } of ofKind("VirtualMachine")) {
    it(`${file}: VirtualMachine ${doc.metadata.name} has a disk per volume and finds its claims`, () => {
      const vm = doc.spec as unknown as VmSpec;
      assert.ok(["Always", "RerunOnFailure", "Manual", "Halted", "Once"].includes(vm.runStrategy ?? ""));
      const spec = vm.template.spec;
      assert.deepEqual(
        spec.domain.devices.disks.map((d) => d.name).sort(),
        spec.volumes.map((v) => v.name).sort(),
        "KubeVirt needs each disk to name a volume",
      );
      for (const v of spec.volumes) {
        const sources = Object.keys(v).filter((k) => k !== "name");
        assert.equal(sources.length, 1, `volume ${v.name} has exactly one source`);
      }
      // Each DataVolume volume names one of the VM's templates; no template is left unused.
      const templates = (vm.dataVolumeTemplates ?? []).map((t) => t.metadata.name).sort();
      const named = spec.volumes
        .map((v) => (v.dataVolume as { name?: string } | undefined)?.name)
        .filter((n): n is string => n !== undefined)
        .sort();
      assert.deepEqual(named, templates);
      for (const t of vm.dataVolumeTemplates ?? []) assert.ok(t.spec.source && t.spec.storage, t.metadata.name);

      const disks = classifyVmDisks({
        workload: { namespace: doc.metadata.namespace!, name: doc.metadata.name },
        volumes: spec.volumes,
        claims: sampleClaims(),
      });
      assert.deepEqual(disks.problems, [], "a backup of its namespace captures it");
      assert.ok(disks.disks.length > 0 && disks.disks.every((d) => d.kind === "claim"), "its disks are claims");
    });
  }

  it("vms-on-claims.yaml: one VM on a Filesystem DataVolume, one on a Block claim, as the digest shows them", () => {
    const vms = docsOf("vms-on-claims.yaml").filter((d) => d.kind === "VirtualMachine");
    // Their VMIs, as KubeVirt makes them from the templates, running.
    const vmis: DigestVmi[] = vms.map((d) => {
      const t = (d.spec as unknown as VmSpec).template;
      return {
        metadata: { namespace: d.metadata.namespace!, name: d.metadata.name, labels: t.metadata.labels ?? {} },
        spec: { volumes: t.spec.volumes },
        status: { phase: "Running", nodeName: "node-a" },
      };
    });
    const claims = sampleClaims().map((c) => ({
      metadata: { namespace: "default", name: c.name },
      spec: { volumeMode: c.volumeMode },
    }));
    const rows = buildDigest({ vmis, claims, backups: [], steps: [], restores: [] }, 0);
    const disks = TABLE_COLUMNS.indexOf("DISKS");
    assert.deepEqual(
      rows.map((r) => [r.name, tableCells(r, 0)[disks]]),
      [
        ["cache-0", "claim (Block)"],
        ["orders-db", "dataVolume (Filesystem)"],
      ],
    );
  });

  for (const { file, doc } of ofKind("FederatedBackup")) {
    it(`${file}: its claims are in samples/shared-volume.yaml and it selects VMs of its namespace`, () => {
      const spec = doc.spec as {
        sharedVolume?: { claimName: string };
        location: { persistentVolumeClaim: { claimName: string } };
        workloads?: { selector?: Parameters<typeof matchesLabelSelector>[0]; namespaces?: string[] };
      };
      const shared = docsOf("shared-volume.yaml")
        .filter((d) => d.kind === "PersistentVolumeClaim")
        .map((d) => `${d.metadata.namespace}/${d.metadata.name}`);
      const ns = doc.metadata.namespace!;
      for (const claim of [spec.sharedVolume?.claimName, spec.location.persistentVolumeClaim.claimName]) {
        if (claim) assert.ok(shared.includes(`${ns}/${claim}`), `${ns}/${claim} is not in shared-volume.yaml`);
      }
      assert.equal(spec.workloads?.namespaces, undefined, "its own namespace: where claims can be captured");
      if (file !== "federatedbackup-claims.yaml") return;
      const selected = ofKind("VirtualMachine")
        .filter(({ file: f }) => f === "vms-on-claims.yaml")
        .filter(({ doc: vm }) =>
          matchesLabelSelector(spec.workloads?.selector, (vm.spec as unknown as VmSpec).template.metadata.labels ?? {}),
        )
        .map(({ doc: vm }) => `${vm.metadata.namespace}/${vm.metadata.name}`);
      assert.deepEqual(selected.sort(), [`${ns}/cache-0`, `${ns}/orders-db`]);
    });
  }
});
