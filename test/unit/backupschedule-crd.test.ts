import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { load } from "js-yaml";
import {
  defaultRepoRoot,
  generateApiTypes,
  parseCrds,
  readCrdTexts,
  storageVersion,
  type CustomResourceDefinition,
  type JSONSchemaProps,
} from "../../hack/gen-api-types.js";
import {
  BACKUP_CRD_FILE,
  CHART_COPY,
  IMMUTABLE_RULE,
  OUTPUT_FILE,
  renderScheduleCrd,
  templateSchema,
} from "../../hack/gen-schedule-crd.js";

const root = defaultRepoRoot();
const crds = parseCrds(readCrdTexts(root));
const kind = (name: string) => crds.find((c) => c.spec.names.kind === name)!;
const schemaOf = (c: CustomResourceDefinition) => storageVersion(c).schema!.openAPIV3Schema!;
const rules = (s: JSONSchemaProps) =>
  (s["x-kubernetes-validations"] as Array<{ rule: string; message?: string }>) ?? [];

function* walk(schema: JSONSchemaProps, path = ""): Generator<[string, JSONSchemaProps]> {
  yield [path === "" ? "<root>" : path, schema];
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    if (path === "" && name === "metadata") continue;
    yield* walk(child, path === "" ? name : `${path}.${name}`);
  }
  if (schema.items) yield* walk(schema.items, `${path}[]`);
  if (typeof schema.additionalProperties === "object") yield* walk(schema.additionalProperties, `${path}{}`);
}

describe("BackupSchedule CRD", () => {
  const schedule = kind("BackupSchedule");
  const schema = schemaOf(schedule);

  it("is what hack/gen-schedule-crd.ts makes of its frame and the FederatedBackup CRD, in crds/ and the chart", async () => {
    const wanted = await renderScheduleCrd(root);
    assert.ok(
      readFileSync(join(root, OUTPUT_FILE), "utf8") === wanted,
      `${OUTPUT_FILE} is stale: run tsx hack/gen-schedule-crd.ts`,
    );
    assert.ok(readFileSync(join(root, CHART_COPY), "utf8") === wanted, `${CHART_COPY} is stale`);
  });

  it("has the FederatedBackup spec as its template, without the rule that makes a backup immutable", () => {
    const template = schema.properties!.spec!.properties!.template!;
    const backupSpec = (load(readFileSync(join(root, BACKUP_CRD_FILE), "utf8")) as CustomResourceDefinition).spec
      .versions[0]!.schema!.openAPIV3Schema!.properties!.spec!;
    assert.deepEqual(Object.keys(template.properties ?? {}), Object.keys(backupSpec.properties ?? {}));
    assert.deepEqual(template.required, backupSpec.required);
    assert.ok(rules(backupSpec).some((r) => r.rule === IMMUTABLE_RULE));
    assert.ok(!rules(template).some((r) => r.rule === IMMUTABLE_RULE));
    assert.equal(
      rules(template).length,
      rules(backupSpec).length - 1,
      "every other rule of the backup spec applies to the template",
    );
  });

  it("templateSchema keeps the schema it is given unchanged", () => {
    const spec: JSONSchemaProps = {
      type: "object",
      description: "d",
      "x-kubernetes-validations": [{ rule: IMMUTABLE_RULE, message: "m" }],
    };
    const copy = templateSchema(spec, "the template");
    assert.equal(copy.description, "the template");
    assert.equal(copy["x-kubernetes-validations"], undefined);
    assert.equal(rules(spec).length, 1);
  });

  it("gives every property a description and a type", () => {
    const missing = [...walk(schema)].filter(([, s]) => !s.description?.trim()).map(([p]) => p);
    assert.deepEqual(missing, []);
    assert.deepEqual(
      [...walk(schema)].filter(([, s]) => s.type === undefined).map(([p]) => p),
      [],
    );
  });

  it("bounds every list and free-form string, and has a message on every CEL rule", () => {
    const unbounded = [...walk(schema.properties!.spec!, "spec")]
      .filter(
        ([, s]) =>
          (s.type === "array" && s.maxItems === undefined) ||
          (s.type === "string" && s.enum === undefined && s.maxLength === undefined),
      )
      .map(([p]) => p);
    assert.deepEqual(unbounded, []);
    for (const [path, s] of walk(schema)) {
      for (const r of rules(s)) assert.ok(r.message && r.message.length > 20, `rule at ${path} needs a message`);
    }
  });

  it("is a namespaced v1alpha1 kind in the fedbackup category with a status subresource", () => {
    assert.equal(schedule.spec.scope, "Namespaced");
    assert.deepEqual(schedule.spec.names.categories, ["fedbackup"]);
    assert.deepEqual(storageVersion(schedule).subresources?.status, {});
  });

  it("gives the template the FederatedBackupSpec type rather than a copy", () => {
    const out = generateApiTypes(readCrdTexts(root));
    assert.match(out, /template: FederatedBackupSpec;/);
    assert.doesNotMatch(out, /BackupScheduleSpecTemplate/);
  });
});
