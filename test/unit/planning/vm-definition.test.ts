import assert from "node:assert/strict";
import {
  definitionOf,
  parseVmDefinition,
  referencesOf,
  standaloneDataVolumeNames,
  VmDefinitionError,
  type ApiObject,
  type VmDefinition,
} from "../../../src/planning/vm-definition.js";

// A VirtualMachine as the API server returns it: server-set metadata, status, observed-version annotations.
function apiVm(spec: Record<string, unknown>): ApiObject {
  return {
    apiVersion: "kubevirt.io/v1",
    kind: "VirtualMachine",
    metadata: {
      name: "db-0",
      namespace: "tenant-a",
      uid: "0b6b8c1e",
      resourceVersion: "4242",
      generation: 3,
      creationTimestamp: "2026-01-01T00:00:00Z",
      managedFields: [{ manager: "kubectl" }],
      ownerReferences: [{ kind: "Thing", name: "x", uid: "y" }],
      finalizers: ["kubevirt.io/virtualMachineControllerFinalize"],
      deletionTimestamp: "2026-01-02T00:00:00Z",
      selfLink: "/apis/kubevirt.io/v1/namespaces/tenant-a/virtualmachines/db-0",
      labels: { app: "db" },
      annotations: {
        "kubevirt.io/latest-observed-api-version": "v1",
        "kubevirt.io/storage-observed-api-version": "v1",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "team.example.com/owner": "alice",
      },
    },
    spec,
    status: { printableStatus: "Running", ready: true },
  };
}

const specWith = (volumes: unknown[], extra: Record<string, unknown> = {}) => ({
  runStrategy: "Always",
  template: { metadata: { labels: { app: "db" } }, spec: { domain: {}, volumes, ...extra } },
});

describe("VM definition", () => {
  describe("definitionOf", () => {
    it("keeps spec, labels and user annotations, and drops status and every server-set field", () => {
      const spec = specWith([{ name: "root", hostDisk: { path: "/vms/db-0.img" } }]);
      const def = definitionOf(apiVm(spec), []);
      assert.deepEqual(def.virtualMachine, {
        apiVersion: "kubevirt.io/v1",
        kind: "VirtualMachine",
        metadata: {
          name: "db-0",
          namespace: "tenant-a",
          labels: { app: "db" },
          annotations: { "team.example.com/owner": "alice" },
        },
        spec,
      });
      assert.equal(def.schemaVersion, 1);
      assert.deepEqual(def.dataVolumes, []);
    });

    it("copies the spec, so that changing the source does not change the definition", () => {
      const vm = apiVm(specWith([]));
      const def = definitionOf(vm, []);
      (vm.spec as { runStrategy: string }).runStrategy = "Halted";
      assert.equal(def.virtualMachine.spec.runStrategy, "Always");
    });

    it("leaves out annotations when only server-set ones were there", () => {
      const vm = apiVm(specWith([]));
      vm.metadata!.annotations = { "kubevirt.io/latest-observed-api-version": "v1" };
      assert.equal(definitionOf(vm, []).virtualMachine.metadata.annotations, undefined);
    });

    it("keeps only the standalone DataVolumes the VM names, stripped, in its namespace, sorted", () => {
      const spec = {
        ...specWith([
          { name: "data", dataVolume: { name: "dv-data" } },
          { name: "boot", dataVolume: { name: "dv-boot" } },
          { name: "tmpl", dataVolume: { name: "dv-template" } },
        ]),
        dataVolumeTemplates: [{ metadata: { name: "dv-template" }, spec: {} }],
      };
      const dv = (name: string, namespace = "tenant-a"): ApiObject => ({
        apiVersion: "cdi.kubevirt.io/v1beta1",
        kind: "DataVolume",
        metadata: { name, namespace, uid: "u", resourceVersion: "1", annotations: { "cdi.kubevirt.io/x": "y" } },
        spec: { storage: { resources: { requests: { storage: "1Gi" } } } },
        status: { phase: "Succeeded" },
      });
      const def = definitionOf(apiVm(spec), [
        dv("dv-data"),
        dv("dv-template"),
        dv("dv-boot"),
        dv("dv-other"),
        dv("dv-data", "tenant-b"),
      ]);
      assert.deepEqual(
        def.dataVolumes.map((d) => d.metadata.name),
        ["dv-boot", "dv-data"],
      );
      assert.deepEqual(def.dataVolumes[0], {
        apiVersion: "cdi.kubevirt.io/v1beta1",
        kind: "DataVolume",
        metadata: { name: "dv-boot", namespace: "tenant-a", annotations: { "cdi.kubevirt.io/x": "y" } },
        spec: { storage: { resources: { requests: { storage: "1Gi" } } } },
      });
    });

    it("refuses a VM without a valid name or namespace", () => {
      const vm = apiVm(specWith([]));
      vm.metadata!.name = "Not_Valid";
      assert.throws(() => definitionOf(vm, []), /no valid name/);
    });

    it("produces what parseVmDefinition accepts", () => {
      const def = definitionOf(
        apiVm(specWith([{ name: "ci", cloudInitNoCloud: { secretRef: { name: "ci-user" } } }])),
        [],
      );
      assert.deepEqual(parseVmDefinition(JSON.parse(JSON.stringify(def))), def);
    });
  });

  describe("standaloneDataVolumeNames", () => {
    it("lists dataVolume volumes not among the templates, once each, sorted", () => {
      const spec = {
        ...specWith([
          { name: "a", dataVolume: { name: "z" } },
          { name: "b", dataVolume: { name: "y" } },
          { name: "c", dataVolume: { name: "z" } },
          { name: "d", dataVolume: { name: "t" } },
          { name: "e", dataVolume: { name: "Bad_Name" } },
          { name: "f", persistentVolumeClaim: { claimName: "pvc" } },
        ]),
        dataVolumeTemplates: [{ metadata: { name: "t" } }],
      };
      assert.deepEqual(standaloneDataVolumeNames(spec), ["y", "z"]);
    });

    it("reads a malformed spec without throwing", () => {
      assert.deepEqual(standaloneDataVolumeNames(undefined), []);
      assert.deepEqual(standaloneDataVolumeNames({ template: { spec: { volumes: "x" } } }), []);
      assert.deepEqual(standaloneDataVolumeNames({ template: { spec: { volumes: [null, 3] } } }), []);
    });
  });

  describe("referencesOf", () => {
    it("finds every Secret and ConfigMap of volumes and access credentials, with where each is used", () => {
      const spec = specWith(
        [
          {
            name: "ci",
            cloudInitNoCloud: { secretRef: { name: "ci-user" }, networkDataSecretRef: { name: "ci-net" } },
          },
          {
            name: "cd",
            cloudInitConfigDrive: { secretRef: { name: "cd-user" }, networkDataSecretRef: { name: "ci-net" } },
          },
          { name: "sec", secret: { secretName: "app-secret" } },
          { name: "cfg", configMap: { name: "app-config" } },
          { name: "sp", sysprep: { secret: { name: "unattend" } } },
          { name: "sp2", sysprep: { configMap: { name: "unattend-cm" } } },
          { name: "cont", containerDisk: { image: "x", imagePullSecret: "registry" } },
          { name: "root", hostDisk: { path: "/a" } },
        ],
        {
          accessCredentials: [
            { sshPublicKey: { source: { secret: { secretName: "keys" } }, propagationMethod: { noCloud: {} } } },
            { userPassword: { source: { secret: { secretName: "app-secret" } } } },
          ],
        },
      );
      assert.deepEqual(referencesOf(spec), {
        secrets: [
          { name: "app-secret", usedBy: "volume sec (secret.secretName); accessCredentials[1].userPassword" },
          { name: "cd-user", usedBy: "volume cd (cloudInitConfigDrive.secretRef)" },
          {
            name: "ci-net",
            usedBy:
              "volume ci (cloudInitNoCloud.networkDataSecretRef); volume cd (cloudInitConfigDrive.networkDataSecretRef)",
          },
          { name: "ci-user", usedBy: "volume ci (cloudInitNoCloud.secretRef)" },
          { name: "keys", usedBy: "accessCredentials[0].sshPublicKey" },
          { name: "registry", usedBy: "volume cont (containerDisk.imagePullSecret)" },
          { name: "unattend", usedBy: "volume sp (sysprep.secret)" },
        ],
        configMaps: [
          { name: "app-config", usedBy: "volume cfg (configMap.name)" },
          { name: "unattend-cm", usedBy: "volume sp2 (sysprep.configMap)" },
        ],
      });
    });

    it("leaves out names that cannot name an object, and reads a malformed spec", () => {
      const spec = specWith([
        { name: "a", secret: { secretName: "../etc" } },
        { name: "b", secret: { secretName: 7 } },
        { name: "c", configMap: {} },
      ]);
      assert.deepEqual(referencesOf(spec), { secrets: [], configMaps: [] });
      assert.deepEqual(referencesOf({ template: { spec: { accessCredentials: [null, "x"] } } }), {
        secrets: [],
        configMaps: [],
      });
    });
  });

  describe("parseVmDefinition", () => {
    const good = () =>
      JSON.parse(
        JSON.stringify(
          definitionOf(
            apiVm({
              ...specWith([
                { name: "d", dataVolume: { name: "dv" } },
                { name: "s", secret: { secretName: "s1" } },
              ]),
            }),
            [{ metadata: { name: "dv", namespace: "tenant-a" }, spec: { source: { blank: {} } } }],
          ),
        ),
      ) as VmDefinition;

    it("accepts a definition as definitionOf makes it", () => {
      const value = good();
      assert.equal(parseVmDefinition(value), value);
    });

    // Sets a field whatever the type says: the file may hold anything.
    const set = (object: object, key: string, value: unknown) => {
      (object as Record<string, unknown>)[key] = value;
    };
    const bad: Array<[string, (d: VmDefinition) => void, RegExp]> = [
      ["another schema version", (d) => set(d, "schemaVersion", 2), /schemaVersion must be 1/],
      ["another kind", (d) => set(d.virtualMachine, "kind", "Pod"), /virtualMachine.kind must be VirtualMachine/],
      ["another API version", (d) => set(d.virtualMachine, "apiVersion", "v1"), /apiVersion must be kubevirt.io\/v1/],
      ["a name that is not DNS-1123", (d) => set(d.virtualMachine.metadata, "name", "../x"), /name is not a DNS-1123/],
      ["a namespace that is not DNS-1123", (d) => set(d.virtualMachine.metadata, "namespace", "A"), /namespace is not/],
      [
        "a DataVolume of another namespace",
        (d) => set(d.dataVolumes[0]!.metadata, "namespace", "other"),
        /dataVolumes\[0\].metadata.namespace is other, not the VM's tenant-a/,
      ],
      [
        "a DataVolume of another kind",
        (d) => set(d.dataVolumes[0]!, "kind", "PersistentVolumeClaim"),
        /must be DataVolume/,
      ],
      ["a DataVolume twice", (d) => void d.dataVolumes.push(d.dataVolumes[0]!), /names dv twice/],
      ["a status", (d) => set(d.virtualMachine, "status", {}), /fields a definition never holds: status/],
      ["a uid", (d) => set(d.virtualMachine.metadata, "uid", "u"), /never holds: uid/],
      [
        "a server-set annotation",
        (d) => set(d.virtualMachine.metadata, "annotations", { "kubevirt.io/latest-observed-api-version": "v1" }),
        /which the server sets/,
      ],
      [
        "a label that is not a string",
        (d) => set(d.virtualMachine.metadata, "labels", { a: 1 }),
        /labels.a is not a string/,
      ],
      ["a spec that is not an object", (d) => set(d.virtualMachine, "spec", []), /spec is not an object/],
      ["references missing", (d) => set(d, "references", undefined), /references is not an object/],
      ["a reference twice", (d) => void d.references.secrets.push(d.references.secrets[0]!), /names s1 twice/],
      [
        "a reference name with a slash",
        (d) => set(d.references, "configMaps", [{ name: "a/b", usedBy: "" }]),
        /not a DNS/,
      ],
      [
        "too many references",
        (d) =>
          set(
            d.references,
            "configMaps",
            [...Array(300).keys()].map((i) => ({ name: `c${i}`, usedBy: "" })),
          ),
        /more than 256/,
      ],
      [
        "a definition of more than 4 MiB",
        (d) => set(d.virtualMachine.spec, "blob", "x".repeat(5 * 1024 * 1024)),
        /bytes, more than/,
      ],
    ];
    for (const [what, change, message] of bad) {
      it(`refuses ${what}`, () => {
        const value = good();
        change(value);
        assert.throws(
          () => parseVmDefinition(value),
          (err: Error) => err instanceof VmDefinitionError && message.test(err.message),
        );
      });
    }

    it("refuses what is not an object", () => {
      for (const value of [null, [], "x", 3]) assert.throws(() => parseVmDefinition(value), VmDefinitionError);
    });
  });
});

describe("VM definition bounds", () => {
  it("keeps at most 256 references of a kind and 64 DataVolumes, so that what it makes always parses", () => {
    const volumes = [
      ...[...Array(300).keys()].map((i) => ({
        name: `s${i}`,
        secret: { secretName: `secret-${String(i).padStart(3, "0")}` },
      })),
      ...[...Array(70).keys()].map((i) => ({
        name: `d${i}`,
        dataVolume: { name: `dv-${String(i).padStart(2, "0")}` },
      })),
    ];
    const vm: ApiObject = {
      metadata: { name: "big", namespace: "ns" },
      spec: { template: { spec: { volumes } } },
    };
    const dvs = [...Array(70).keys()].map((i) => ({
      metadata: { name: `dv-${String(i).padStart(2, "0")}`, namespace: "ns" },
      spec: {},
    }));
    const def = definitionOf(vm, dvs);
    assert.equal(def.references.secrets.length, 256);
    assert.equal(def.references.secrets[255]!.name, "secret-255");
    assert.equal(def.dataVolumes.length, 64);
    assert.equal(def.dataVolumes[63]!.metadata.name, "dv-63");
    assert.doesNotThrow(() => parseVmDefinition(JSON.parse(JSON.stringify(def))));
  });
});
