import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runNodeBackup } from "../../../src/agent/backup.js";
import type { VmObjectReader } from "../../../src/agent/definition-capture.js";
import { captureDefinition } from "../../../src/agent/definition-capture.js";
import { readVerifiedDefinition, readVerifiedSecrets } from "../../../src/agent/definition-file.js";
import { readNodeManifest, readWorkloadManifest } from "../../../src/agent/manifest.js";
import type { ApiObject } from "../../../src/planning/vm-definition.js";
import type { SecretObject } from "../../../src/planning/vm-secrets.js";
import { RecordingFreezer, alwaysActive, makeTempDir, memoryLog, nodeBackupPlan, realClock } from "./helpers.js";

const SECRET_DATA = "c3VwZXItc2VjcmV0LXBhc3N3b3Jk";

// An API server double: objects by "<kind>/<ns>/<name>", each read recorded with the freezer's log position.
class FakeObjects implements VmObjectReader {
  readonly reads: string[] = [];
  constructor(
    private readonly objects: Map<string, ApiObject | SecretObject>,
    private readonly freezer?: RecordingFreezer,
    private readonly failOn?: string,
  ) {}
  private read<T>(key: string): Promise<T | undefined> {
    this.reads.push(`${key} after ${this.freezer?.events.length ?? 0} freeze events`);
    if (key === this.failOn) return Promise.reject(new Error(`the API server refused ${key}`));
    return Promise.resolve(this.objects.get(key) as T | undefined);
  }
  virtualMachine(ns: string, name: string) {
    return this.read<ApiObject>(`vm/${ns}/${name}`);
  }
  dataVolume(ns: string, name: string) {
    return this.read<ApiObject>(`dv/${ns}/${name}`);
  }
  secret(ns: string, name: string) {
    return this.read<SecretObject>(`secret/${ns}/${name}`);
  }
}

const vm = (name: string, volumes: unknown[]): ApiObject => ({
  apiVersion: "kubevirt.io/v1",
  kind: "VirtualMachine",
  metadata: { name, namespace: "prod", uid: `vm-uid-${name}`, resourceVersion: "7", labels: { app: name } },
  spec: { runStrategy: "Always", template: { spec: { volumes } } },
  status: { printableStatus: "Running" },
});

const objects = () =>
  new Map<string, ApiObject | SecretObject>([
    [
      "vm/prod/a",
      vm("a", [
        { name: "root", hostDisk: { path: "/vms/a/disk.img" } },
        { name: "data", dataVolume: { name: "a-data" } },
        { name: "ci", cloudInitNoCloud: { secretRef: { name: "a-ci" }, networkDataSecretRef: { name: "a-gone" } } },
      ]),
    ],
    [
      "dv/prod/a-data",
      { metadata: { name: "a-data", namespace: "prod", uid: "dv" }, spec: { source: { blank: {} } }, status: {} },
    ],
    [
      "secret/prod/a-ci",
      { metadata: { name: "a-ci", namespace: "prod", uid: "s" }, type: "Opaque", data: { userdata: SECRET_DATA } },
    ],
  ]);

describe("agent/backup: VM definitions", function () {
  this.timeout(30_000);
  let root: string;
  let cleanup: () => Promise<void>;
  beforeEach(() => ({ dir: root, cleanup } = makeTempDir("backup-definitions")));
  afterEach(() => cleanup());

  const setup = async (includeSecrets: boolean) => {
    const shared = join(root, "shared");
    const location = join(root, "location", "backups", "nightly");
    for (const name of ["a", "b"]) {
      await writeFile(join(await mkdirp(join(shared, "vms", name)), "disk.img"), `disk of ${name}`);
    }
    const plan = nodeBackupPlan(shared, location, {
      includeSecrets,
      workloads: [
        {
          namespace: "prod",
          name: "a",
          uid: "uid-a",
          files: ["vms/a/disk.img"],
          dataVolumes: ["a-data"],
          ...(includeSecrets ? { secrets: ["a-ci", "a-gone"] } : {}),
        },
        // A VMI without a VirtualMachine.
        { namespace: "prod", name: "b", uid: "uid-b", files: ["vms/b/disk.img"] },
      ],
    });
    return { location, plan };
  };

  it("reads each VM's objects before any freeze and writes its definition before its manifest", async () => {
    const { location, plan } = await setup(false);
    const freezer = new RecordingFreezer();
    const reader = new FakeObjects(objects(), freezer);
    const log = memoryLog();
    const result = await runNodeBackup(plan, {
      freezer,
      isActiveOnNode: alwaysActive,
      clock: realClock,
      log,
      vmObjects: reader,
      signals: [],
    });

    assert.deepEqual(result.failed, []);
    assert.deepEqual(reader.reads, [
      "vm/prod/a after 0 freeze events",
      "dv/prod/a-data after 0 freeze events",
      "vm/prod/b after 0 freeze events",
    ]);
    assert.deepEqual(
      result.captured.map((c) => [c.name, c.definition, c.secrets]),
      [
        ["a", true, undefined],
        ["b", false, undefined],
      ],
    );
    const manifest = await readWorkloadManifest(location, "prod", "a");
    const definition = await readVerifiedDefinition(location, "prod", "a", manifest);
    assert.equal(definition?.virtualMachine.metadata.labels?.app, "a");
    assert.equal(JSON.stringify(definition).includes("resourceVersion"), false);
    assert.deepEqual(
      definition?.dataVolumes.map((d) => d.metadata.name),
      ["a-data"],
    );
    assert.deepEqual(
      definition?.references.secrets.map((r) => r.name),
      ["a-ci", "a-gone"],
    );
    assert.equal(manifest.secrets, undefined);
    assert.equal(existsSync(join(location, "prod/a/secrets.json")), false, "no secrets.json without includeSecrets");
    // The VMI without a VirtualMachine: captured, without a definition, and the log says why.
    const b = await readWorkloadManifest(location, "prod", "b");
    assert.equal(b.definition, undefined);
    assert.equal(existsSync(join(location, "prod/b/definition.json")), false);
    assert.ok(
      log.lines.some((l) => l.includes("prod/b") && l.includes("no VirtualMachine")),
      log.lines.join("\n"),
    );
    const node = await readNodeManifest(location, "node-1", 1);
    assert.deepEqual(
      node.captured.map((c) => c.definition),
      [true, false],
    );
  });

  it("with includeSecrets stores the existing referenced Secrets (mode 0600) and never logs their data", async () => {
    const { location, plan } = await setup(true);
    const freezer = new RecordingFreezer();
    const log = memoryLog();
    const result = await runNodeBackup(plan, {
      freezer,
      isActiveOnNode: alwaysActive,
      clock: realClock,
      log,
      vmObjects: new FakeObjects(objects(), freezer),
      signals: [],
    });

    assert.equal(result.captured.find((c) => c.name === "a")?.secrets, 1);
    const manifest = await readWorkloadManifest(location, "prod", "a");
    const secrets = await readVerifiedSecrets(location, "prod", "a", manifest);
    assert.deepEqual(
      secrets?.secrets.map((s) => [s.metadata.name, s.data.userdata]),
      [["a-ci", SECRET_DATA]],
    );
    assert.equal((await stat(join(location, "prod/a/secrets.json"))).mode & 0o777, 0o600);
    assert.ok(log.lines.some((l) => l.includes("Secret a-gone does not exist")));
    assert.equal(
      log.lines.some((l) => l.includes(SECRET_DATA)),
      false,
    );
    assert.equal((await readFile(join(location, "nodes/node-1-r1.json"), "utf8")).includes(SECRET_DATA), false);

    // A rerun of the round reuses the capture and still reports the count.
    const again = await runNodeBackup(plan, {
      freezer,
      isActiveOnNode: alwaysActive,
      clock: realClock,
      log,
      vmObjects: new FakeObjects(objects()),
      signals: [],
    });
    assert.deepEqual(
      again.captured.map((c) => [c.name, c.reused, c.definition, c.secrets]),
      [
        ["a", true, true, 1],
        ["b", true, false, undefined],
      ],
    );
  });

  it("fails the run on an API error other than NotFound, before any freeze", async () => {
    const { plan } = await setup(false);
    const freezer = new RecordingFreezer();
    await assert.rejects(
      runNodeBackup(plan, {
        freezer,
        isActiveOnNode: alwaysActive,
        clock: realClock,
        log: memoryLog(),
        vmObjects: new FakeObjects(objects(), freezer, "dv/prod/a-data"),
        signals: [],
      }),
      /refused dv\/prod\/a-data/,
    );
    assert.deepEqual(freezer.events, []);
  });

  it("reads only the DataVolumes and Secrets the step names", async () => {
    const reader = new FakeObjects(objects());
    const captured = await captureDefinition(reader, { namespace: "prod", name: "a", secrets: ["a-ci"] }, true);
    assert.deepEqual(
      reader.reads.map((r) => r.split(" ")[0]),
      ["vm/prod/a", "secret/prod/a-ci"],
    );
    assert.deepEqual(captured.definition?.dataVolumes, []);
    assert.deepEqual(captured.notes, [
      "DataVolume a-data was not named when the step was planned and was not read",
      "Secret a-gone was not named when the step was planned and was not stored",
    ]);
  });
});

async function mkdirp(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return dir;
}
