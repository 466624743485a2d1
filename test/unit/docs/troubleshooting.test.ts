// The README's Troubleshooting tables name every reason fedbackup writes where users see it (conditions,
// Events, status.missing, the node steps' failed and results, status.plan problems, capture indications),
// and nothing else. The reasons are read from the code itself with the TypeScript compiler: every CamelCase
// string literal (or literal type) that becomes a property, parameter or variable called `reason` or
// `problem` (or `...Reason`) under src/api, src/planning, src/controllers and src/agent. A reason added to the
// code without a row in the README, or a row left behind when a reason goes, fails here. NOT_SHOWN lists what
// the scan finds that users never see, NOT_WIRED files whose reasons reach no status yet.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import * as yaml from "js-yaml";
import ts from "typescript";
import { INDICATIONS } from "../../../src/agent/manifest.js";
import { CREATOR_UNKNOWN, NAMESPACE_NOT_PERMITTED } from "../../../src/controllers/runtime/creator-access.js";
import { MISSING_REASONS } from "../../../src/planning/index.js";
import { REPO_ROOT } from "../../harness/binaries.js";

const SCANNED = ["src/api", "src/planning", "src/controllers", "src/agent"];

/** CamelCase values the scan finds that never reach a status, a condition or an Event, and why. */
const NOT_SHOWN: Record<string, string> = {
  Conflict: "the reason of the 409 ApiError a lost Lease race throws (runtime/lease-state.ts); the pass is retried",
  ...Object.fromEntries(
    ["SymbolicLink", "NotRegularFile", "NotDirectory", "HardLink", "Replaced", "InvalidPath"].map((r) => [
      r,
      "agent/safe-fs.ts's UnsafeReason: the agent reports the VM as UnsafeFile",
    ]),
  ),
  ...Object.fromEntries(
    [
      "NotBlockDevice",
      "DeviceBusy",
      "DeviceTooSmall",
      "DeviceChanged",
      "InvalidLayout",
      "WriteFailed",
      "ReadBackMismatch",
    ].map((r) => [
      r,
      "agent/block-device.ts's BlockDeviceErrorReason: a backup reports the VM as CaptureFailed with the error's message, a restore as one of its own reasons (agent/restore-claims.ts) or RestoreFailed",
    ]),
  ),
  NoDataDisk:
    "planning/vm-disks.ts's name for a VM without any data disk; the operator reports NoSharedDisk (the CRD's reason) for it",
};

/**
 * Files that nothing under src/ imports yet: their reasons reach no status, so they need no row until
 * something uses them (a test below fails then, asking for the rows).
 */
const NOT_WIRED: Record<string, string> = {};

/** Reasons users see that are not a `reason` in the code: each with the file that sets it. */
const ALSO_SHOWN: Record<string, { file: string; why: string }> = {
  Unlisted: {
    file: "src/controllers/federatedbackup/transitions.ts",
    why: "the reason label of fedbackup_workloads_missing for the VMs beyond the 100 that status.missing lists",
  },
  // The consistency of a capture (NodeSnapshot status.captured[].indication), from an exported list.
  ...Object.fromEntries(
    INDICATIONS.map((i) => [i, { file: "src/storage/manifest-schema.ts", why: "capture indication" }]),
  ),
};

const CAMEL_CASE = /^[A-Z][A-Za-z0-9]*$/;
const REASON_NAME = /^(reason|problem)$|Reason$/;

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    if (statSync(p).isDirectory()) return tsFiles(p);
    return p.endsWith(".ts") ? [p] : [];
  });
}

/** Each reason found, with the places ("file:line") that set it. */
function reasonsInCode(): Map<string, Set<string>> {
  const files = SCANNED.flatMap((d) => tsFiles(path.join(REPO_ROOT, d)));
  const config = ts.getParsedCommandLineOfConfigFile(path.join(REPO_ROOT, "tsconfig.json"), undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(ts.flattenDiagnosticMessageText(d.messageText, "\n")),
  })!;
  const program = ts.createProgram(files, { ...config.options, noEmit: true });
  const checker = program.getTypeChecker();
  const found = new Map<string, Set<string>>();

  const add = (value: string, at: ts.Node) => {
    if (!CAMEL_CASE.test(value)) return;
    const source = at.getSourceFile();
    const line = source.getLineAndCharacterOfPosition(at.getStart()).line + 1;
    const places = found.get(value) ?? new Set<string>();
    places.add(`${path.relative(REPO_ROOT, source.fileName)}:${line}`);
    found.set(value, places);
  };
  const literalsOf = (node: ts.Node) => {
    const type = checker.getTypeAtLocation(node);
    for (const t of type.isUnion() ? type.types : [type]) if (t.isStringLiteral()) add(t.value, node);
  };
  // What an expression may evaluate to: the branches of `?:`, both sides of `??` and `||` (a union with
  // string would hide the literals), never a condition.
  const outcomes = (e: ts.Expression): ts.Expression[] => {
    if (ts.isParenthesizedExpression(e) || ts.isNonNullExpression(e)) return outcomes(e.expression);
    if (ts.isConditionalExpression(e)) return [...outcomes(e.whenTrue), ...outcomes(e.whenFalse)];
    const op = ts.isBinaryExpression(e) ? e.operatorToken.kind : undefined;
    if (ts.isBinaryExpression(e) && (op === ts.SyntaxKind.QuestionQuestionToken || op === ts.SyntaxKind.BarBarToken))
      return [...outcomes(e.left), ...outcomes(e.right)];
    return [e];
  };
  const valuesOf = (e: ts.Expression) => [e, ...outcomes(e)].forEach(literalsOf);

  const visit = (node: ts.Node): void => {
    const named = (name: ts.Node | undefined) => !!name && ts.isIdentifier(name) && REASON_NAME.test(name.text);
    if (ts.isPropertyAssignment(node) && named(node.name)) valuesOf(node.initializer);
    else if (ts.isShorthandPropertyAssignment(node) && named(node.name)) literalsOf(node.name);
    else if (
      (ts.isPropertySignature(node) ||
        ts.isPropertyDeclaration(node) ||
        ts.isParameter(node) ||
        ts.isVariableDeclaration(node)) &&
      named(node.name)
    ) {
      literalsOf(node.name);
      if (ts.isVariableDeclaration(node) && node.initializer) valuesOf(node.initializer);
    } else if ((ts.isCallExpression(node) || ts.isNewExpression(node)) && node.arguments) {
      // An argument given for a parameter called reason: fail(w, "NotStopped", ...), new RestoreError("...").
      const parameters = checker.getResolvedSignature(node)?.getParameters() ?? [];
      node.arguments.forEach((arg, i) => {
        if (parameters[i] && REASON_NAME.test(parameters[i].name)) valuesOf(arg);
      });
    }
    ts.forEachChild(node, visit);
  };
  for (const file of files) visit(program.getSourceFile(file)!);
  return found;
}

/** The README's Troubleshooting section: its tables by the heading above them, each row's reasons (first cell). */
function troubleshootingTables(): Map<string, string[]> {
  const readme = readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
  const start = readme.indexOf("\n## Troubleshooting\n");
  assert.ok(start >= 0, 'README.md has no "## Troubleshooting" section');
  const end = readme.indexOf("\n## ", start + 1);
  const tables = new Map<string, string[]>();
  let heading = "Troubleshooting";
  for (const line of readme.slice(start, end < 0 ? undefined : end).split("\n")) {
    const h = /^###\s+(.*)$/.exec(line);
    if (h) heading = h[1]!.trim();
    const row = /^\|([^|]*)\|/.exec(line);
    if (!row || /^\|\s*-+/.test(line)) continue;
    const reasons = [...row[1]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    if (reasons.length) tables.set(heading, [...(tables.get(heading) ?? []), ...reasons]);
  }
  return tables;
}

describe("README Troubleshooting", function () {
  let found: Map<string, Set<string>>;
  let tables: Map<string, string[]>;
  let documented: Set<string>;
  before(function () {
    this.timeout(120_000); // type-checking src/ takes a few seconds
    found = reasonsInCode();
    tables = troubleshootingTables();
    documented = new Set([...tables.values()].flat());
  });

  it("the scan finds the reasons it is known to have to find", () => {
    const musts = [
      ...MISSING_REASONS,
      "Migrated",
      NAMESPACE_NOT_PERMITTED,
      CREATOR_UNKNOWN,
      "WaitingForVolumeLease", // Progressing, backups and restores
      "NothingCaptured", // the Failed condition, behind a ?: and a ??
      "InProgress", // the Ready condition's reason is the phase
      "ChecksumMismatch", // the agent's restore errors (a union type)
      "NotStopped", // an argument of fail(), through a const
      "TargetNodeNotFound", // plan problems
      "Thawed", // an Event
      ...Object.keys(NOT_SHOWN),
    ];
    assert.deepEqual(
      musts.filter((r) => !found.has(r)),
      [],
    );
  });

  it("every reason the code sets has a row", () => {
    const wired = (place: string) => !(place.slice(0, place.lastIndexOf(":")) in NOT_WIRED);
    const shown = [
      ...[...found].filter(([, places]) => [...places].some(wired)).map(([r]) => r),
      ...Object.keys(ALSO_SHOWN),
    ].filter((r) => !(r in NOT_SHOWN));
    const undocumented = shown
      .filter((r) => !documented.has(r))
      .map((r) => `${r} (${[...(found.get(r) ?? [ALSO_SHOWN[r]!.file])].slice(0, 3).join(", ")})`);
    assert.deepEqual(
      undocumented,
      [],
      "add these to the README's Troubleshooting tables (or to NOT_SHOWN, saying why)",
    );
  });

  it("every reason in a row is one the code sets", () => {
    const unknown = [...documented].filter((r) => !(found.has(r) || r in ALSO_SHOWN) || r in NOT_SHOWN);
    assert.deepEqual(unknown, [], "these reasons are not set anywhere in the code: remove them from the README");
  });

  it("the files left out as not wired are imported by nothing under src/", () => {
    for (const file of Object.keys(NOT_WIRED)) assert.ok(statSync(path.join(REPO_ROOT, file)).isFile(), file);
    const importers = tsFiles(path.join(REPO_ROOT, "src")).flatMap((file) => {
      const text = readFileSync(file, "utf8");
      return Object.keys(NOT_WIRED)
        .filter((w) => {
          const module = path.basename(w, ".ts");
          return new RegExp(`(from|import\\(?)\\s*["'][^"']*\\b${module}\\.js["']`).test(text);
        })
        .map((w) => `${path.relative(REPO_ROOT, file)} imports ${w}`);
    });
    assert.deepEqual(importers, [], "its reasons now reach users: give them rows and remove it from NOT_WIRED");
  });

  it("the reasons not taken from a `reason` are still in their files", () => {
    for (const [reason, { file }] of Object.entries(ALSO_SHOWN))
      assert.ok(readFileSync(path.join(REPO_ROOT, file), "utf8").includes(reason), `${reason} in ${file}`);
  });

  it("the missing-VM table holds the CRD's reasons of status.missing, and the indication table the agent's", () => {
    const missingTable = [...tables].find(([h]) => /^Missing VMs/.test(h))?.[1] ?? [];
    const indicationTable = [...tables].find(([h]) => /indications/i.test(h))?.[1] ?? [];
    const crd = yaml.load(readFileSync(path.join(REPO_ROOT, "crds/fedbackup.io_federatedbackups.yaml"), "utf8")) as {
      spec: { versions: Array<{ schema: { openAPIV3Schema: unknown } }> };
    };
    const missingEnum = (
      crd.spec.versions[0]!.schema.openAPIV3Schema as {
        properties: {
          status: { properties: { missing: { items: { properties: { reason: { enum: string[] } } } } } };
        };
      }
    ).properties.status.properties.missing.items.properties.reason.enum;
    assert.ok(missingEnum.length >= MISSING_REASONS.length);
    assert.deepEqual(
      missingEnum.filter((r) => !missingTable.includes(r)),
      [],
    );
    assert.deepEqual(
      INDICATIONS.filter((i) => !indicationTable.includes(i)),
      [],
    );
  });
});
