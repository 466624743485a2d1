import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, readFile, stat, symlink, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  SECRETS_FILE_MODE,
  readVerifiedDefinition,
  readVerifiedSecrets,
  removeDefinitionFiles,
  writeDefinition,
  writeSecrets,
} from "../../../src/agent/definition-file.js";
import type { WorkloadManifest } from "../../../src/agent/manifest.js";
import {
  ManifestError,
  checkManifestComplete,
  parseWorkloadManifest,
  writeWorkloadManifest,
} from "../../../src/agent/manifest.js";
import { inBackupDir } from "../../../src/agent/manifest.js";
import { definitionOf } from "../../../src/planning/vm-definition.js";
import { secretsFileOf } from "../../../src/planning/vm-secrets.js";
import { makeTempDir } from "./helpers.js";

const definition = definitionOf(
  {
    metadata: { name: "db-0", namespace: "prod", uid: "u", labels: { app: "db" } },
    spec: {
      runStrategy: "Always",
      template: { spec: { volumes: [{ name: "ci", cloudInitNoCloud: { secretRef: { name: "ci-user" } } }] } },
    },
    status: { ready: true },
  },
  [],
);
const secrets = secretsFileOf([
  { metadata: { name: "ci-user", namespace: "prod" }, type: "Opaque", data: { userdata: "c2VjcmV0LXZhbHVl" } },
]);

function manifest(overrides: Partial<WorkloadManifest> = {}): WorkloadManifest {
  return {
    schemaVersion: 1,
    backup: { name: "nightly", uid: "uid-1" },
    workload: { namespace: "prod", name: "db-0", uid: "uid-a" },
    node: "node-1",
    round: 1,
    method: "Copy",
    indication: "GuestAgent",
    consistency: "ApplicationConsistent",
    freeze: { startedAt: null, endedAt: null, windowMs: 0 },
    extractAt: "Backup",
    files: [],
    totalBytes: 0,
    startedAt: "2025-01-01T00:00:00.000Z",
    completedAt: "2025-01-01T00:00:01.000Z",
    ...overrides,
  };
}

describe("agent/definition-file", function () {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(() => ({ dir, cleanup } = makeTempDir("definition")));
  afterEach(() => cleanup());

  const written = () =>
    inBackupDir(dir, async (root) => ({
      definition: await writeDefinition(root, definition),
      secrets: await writeSecrets(root, "prod", "db-0", secrets),
    }));

  it("writes definition.json and secrets.json (mode 0600) with the size and sha256 the manifest lists", async () => {
    const files = await written();
    const defBytes = await readFile(join(dir, "prod/db-0/definition.json"));
    assert.deepEqual(files.definition, {
      path: "definition.json",
      bytes: defBytes.length,
      sha256: createHash("sha256").update(defBytes).digest("hex"),
    });
    assert.deepEqual(JSON.parse(defBytes.toString()), definition);
    const secretsStat = await stat(join(dir, "prod/db-0/secrets.json"));
    assert.equal(secretsStat.mode & 0o777, SECRETS_FILE_MODE);
    assert.equal(files.secrets.path, "secrets.json");
    assert.equal(files.secrets.bytes, secretsStat.size);
  });

  it("reads back what it wrote, as the manifest lists it; a manifest without them reads nothing", async () => {
    const files = await written();
    const m = manifest(files);
    parseWorkloadManifest(JSON.parse(JSON.stringify(m)));
    assert.deepEqual(await readVerifiedDefinition(dir, "prod", "db-0", m), definition);
    assert.deepEqual(await readVerifiedSecrets(dir, "prod", "db-0", m), secrets);
    assert.equal(await readVerifiedDefinition(dir, "prod", "db-0", manifest()), undefined);
    assert.equal(await readVerifiedSecrets(dir, "prod", "db-0", manifest()), undefined);
  });

  it("refuses a file whose sha256 or size differs from the manifest's", async () => {
    const files = await written();
    const sameSize = files.definition.sha256.replace(/^./, (c) => (c === "0" ? "1" : "0"));
    await assert.rejects(
      readVerifiedDefinition(dir, "prod", "db-0", manifest({ definition: { ...files.definition, sha256: sameSize } })),
      /does not have the manifest's sha256/,
    );
    await assert.rejects(
      readVerifiedSecrets(
        dir,
        "prod",
        "db-0",
        manifest({ secrets: { ...files.secrets, bytes: files.secrets.bytes + 1 } }),
      ),
      /bytes, the manifest lists/,
    );
  });

  it("refuses a file that matches its checksum but is not a definition of this VM, without quoting Secret data", async () => {
    const other = Buffer.from(JSON.stringify({ ...definition, schemaVersion: 9 }));
    await mkdir(join(dir, "prod/db-0"), { recursive: true });
    await writeFile(join(dir, "prod/db-0/definition.json"), other);
    const listed = {
      path: "definition.json" as const,
      bytes: other.length,
      sha256: createHash("sha256").update(other).digest("hex"),
    };
    await assert.rejects(
      readVerifiedDefinition(dir, "prod", "db-0", manifest({ definition: listed })),
      /schemaVersion/,
    );
    await assert.rejects(
      readVerifiedDefinition(dir, "prod", "db-1", manifest({ definition: listed })),
      /not prod\/db-1/,
    );
    const broken = Buffer.from('{"schemaVersion":1,"secrets":[{"data":{"k":"c2VjcmV0LXZhbHVl"}');
    await writeFile(join(dir, "prod/db-0/secrets.json"), broken);
    const brokenListed = {
      path: "secrets.json" as const,
      bytes: broken.length,
      sha256: createHash("sha256").update(broken).digest("hex"),
    };
    await assert.rejects(
      readVerifiedSecrets(dir, "prod", "db-0", manifest({ secrets: brokenListed })),
      (err: Error) =>
        err instanceof ManifestError && /not valid JSON/.test(err.message) && !err.message.includes("c2Vj"),
    );
  });

  it("refuses a definition.json that is a symlink, even to a file with the listed bytes", async () => {
    const files = await written();
    await writeFile(join(dir, "elsewhere.json"), await readFile(join(dir, "prod/db-0/definition.json")));
    await unlink(join(dir, "prod/db-0/definition.json"));
    await symlink(join(dir, "elsewhere.json"), join(dir, "prod/db-0/definition.json"));
    await assert.rejects(readVerifiedDefinition(dir, "prod", "db-0", manifest(files)), (err: Error) =>
      /symlink|symbolic/i.test(err.message),
    );
  });

  it("makes a manifest incomplete when a listed definition is missing, and removes both files", async () => {
    const files = await written();
    await inBackupDir(dir, (root) => writeWorkloadManifest(root, manifest(files)));
    const expect = { backupUid: "uid-1", round: 1 };
    assert.equal((await checkManifestComplete(dir, "prod", "db-0", expect)).complete, true);
    await inBackupDir(dir, (root) => removeDefinitionFiles(root, "prod", "db-0"));
    const after = await checkManifestComplete(dir, "prod", "db-0", expect);
    assert.deepEqual(after, { complete: false, reason: "the definition is missing" });
    await assert.rejects(stat(join(dir, "prod/db-0/secrets.json")), { code: "ENOENT" });
  });

  it("refuses to write a definition that could not be read back", async () => {
    const bad = { ...definition, virtualMachine: { ...definition.virtualMachine, kind: "Pod" } };
    await inBackupDir(dir, (root) => assert.rejects(writeDefinition(root, bad), /must be VirtualMachine/));
  });

  it("refuses a manifest whose definition path is another file", () => {
    const m = JSON.parse(
      JSON.stringify(manifest({ definition: { path: "definition.json", bytes: 1, sha256: "a".repeat(64) } })),
    );
    m.definition.path = "../../x.json";
    assert.throws(() => parseWorkloadManifest(m), /definition.path must be definition.json/);
  });
});
