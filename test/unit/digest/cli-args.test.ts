import assert from "node:assert/strict";
import { digestUsage, nothingFoundLine, parseDigestArgs, renderDigest, runDigest } from "../../../src/cli/digest.js";
import type { DigestRow } from "../../../src/digest/index.js";
import { hoursAgo, NOW } from "./fixtures.js";

describe("fedbackup digest flags", () => {
  const hour = 3_600_000;
  const cases: Array<{ argv: string[]; want: Partial<ReturnType<typeof parseDigestArgs>> }> = [
    // Neither -n nor -A: the kubeconfig context's namespace, known once the kubeconfig is read.
    { argv: [], want: { namespace: undefined, allNamespaces: false, criteria: {}, output: "table", help: false } },
    { argv: ["-n", "apps"], want: { namespace: "apps", criteria: { namespace: "apps" } } },
    { argv: ["--namespace=apps"], want: { namespace: "apps", criteria: { namespace: "apps" } } },
    { argv: ["-A"], want: { allNamespaces: true, criteria: {} } },
    { argv: ["-n", "apps", "--all-namespaces"], want: { namespace: undefined, allNamespaces: true, criteria: {} } },
    { argv: ["--kubeconfig", "kc.yaml"], want: { kubeconfig: "kc.yaml" } },
    { argv: ["--context", "prod"], want: { context: "prod", allNamespaces: false } },
    { argv: ["-A", "--context=prod"], want: { context: "prod", allNamespaces: true, criteria: {} } },
    { argv: ["-l", "a=b,c!=d,e,!f"], want: { criteria: { selector: "a=b,c!=d,e,!f" } } },
    { argv: ["--selector=tier in (web,db)"], want: { criteria: { selector: "tier in (web,db)" } } },
    { argv: ["--node", "node-a", "--phase", "Running"], want: { criteria: { node: "node-a", phase: "Running" } } },
    { argv: ["--backed-up-before", "7d"], want: { criteria: { backedUpBefore: new Date(NOW - 168 * hour) } } },
    {
      argv: ["--backed-up-since", "2025-05-01T00:00:00Z", "--restored-since", "2h"],
      want: {
        criteria: { backedUpSince: new Date("2025-05-01T00:00:00Z"), restoredSince: new Date(NOW - 2 * hour) },
      },
    },
    { argv: ["--never-backed-up"], want: { criteria: { neverBackedUp: true } } },
    { argv: ["--deleted"], want: { criteria: { deleted: true } } },
    {
      argv: ["--deleted", "-n", "apps", "--disks", "claim", "--backed-up-since", "1d"],
      want: {
        criteria: { namespace: "apps", deleted: true, disks: ["claim"], backedUpSince: new Date(NOW - 24 * hour) },
      },
    },
    { argv: ["--min-node-failures", "2"], want: { criteria: { minNodeFailures: 2 } } },
    { argv: ["--disks", "claim"], want: { criteria: { disks: ["claim"] } } },
    { argv: ["--disks=block,HOSTDISK"], want: { criteria: { disks: ["Block", "hostDisk"] } } },
    { argv: ["-o", "json"], want: { output: "json" } },
    { argv: ["-oyaml"], want: { output: "yaml" } },
    { argv: ["--output=table"], want: { output: "table" } },
    { argv: ["-h"], want: { help: true } },
  ];
  for (const { argv, want } of cases) {
    it(argv.join(" ") || "(none)", () => {
      const got = parseDigestArgs(argv, NOW);
      assert.deepEqual(Object.fromEntries(Object.keys(want).map((k) => [k, got[k as keyof typeof got]])), want);
    });
  }

  const bad: Array<{ argv: string[]; message: RegExp }> = [
    { argv: ["-o", "wide"], message: /unknown output format "wide"/ },
    { argv: ["--backed-up-before", "yesterday"], message: /--backed-up-before: invalid time "yesterday"/ },
    { argv: ["--restored-since", "2"], message: /--restored-since: invalid time/ },
    { argv: ["--min-node-failures=-1"], message: /--min-node-failures: "-1" is not a non-negative integer/ },
    { argv: ["--min-node-failures", "x"], message: /not a non-negative integer/ },
    { argv: ["-l", "a b"], message: /--selector: invalid label selector/ },
    { argv: ["--disks", "pvc"], message: /--disks: unknown disk kind "pvc": use hostDisk, claim, dataVolume/ },
    { argv: ["--nodes", "x"], message: /Unknown option '--nodes'/ },
    { argv: ["vms"], message: /Unexpected argument 'vms'/ },
    { argv: ["--never-backed-up=yes"], message: /--never-backed-up/ },
    { argv: ["--deleted=yes"], message: /--deleted/ },
  ];
  for (const { argv, message } of bad) {
    it(`rejects ${argv.join(" ")}`, () => assert.throws(() => parseDigestArgs(argv, NOW), message));
  }

  it("exits 2 on bad flags, with one line on stderr and nothing on stdout, before reading the cluster", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runDigest(
      ["--kubeconfig", "/nonexistent", "-o", "xml"],
      (s) => out.push(s),
      (s) => err.push(s),
    );
    assert.equal(code, 2);
    assert.deepEqual(out, []);
    assert.equal(
      err.join(""),
      `fedbackup digest: unknown output format "xml": use table, json or yaml (see 'fedbackup digest --help')\n`,
    );
  });

  it("says what was not found, deleted VMs or VMs, and where", () => {
    assert.equal(nothingFoundLine("apps", false), "No VMs found in namespace apps.\n");
    assert.equal(nothingFoundLine(undefined, false), "No VMs found.\n");
    assert.equal(nothingFoundLine("apps", true), "No deleted VMs found in namespace apps.\n");
    assert.equal(nothingFoundLine(undefined, true), "No deleted VMs found.\n");
  });

  it("prints deleted VMs with their own columns in a table, and as any row in JSON", () => {
    const row: DigestRow = {
      namespace: "apps",
      name: "db",
      phase: "Deleted",
      migrating: false,
      disks: [],
      lastBackup: { backup: "apps/nightly", at: hoursAgo(2), node: "node-a", round: 1, definition: true },
      backups: 1,
      nodeFailures: 0,
      labels: {},
    };
    assert.match(renderDigest([row], "table", NOW, true), /^NAMESPACE +NAME +DISKS +LAST BACKUP +BACKUP +CAPTURED ON/);
    assert.match(renderDigest([row], "table", NOW, true), /\napps +db +- +2h ago +nightly +node-a +yes +-\n$/);
    assert.match(renderDigest([row], "table", NOW), /^NAMESPACE +NAME +NODE +PHASE/);
    assert.deepEqual(JSON.parse(renderDigest([row], "json", NOW, true)), [row]);
  });

  it("documents --deleted in its usage", () => {
    assert.match(digestUsage, /--deleted +only VMs that exist only in backups \(phase Deleted\)/);
    assert.match(digestUsage, /CAPTURED ON/);
  });

  it("prints its usage with --help", async () => {
    const out: string[] = [];
    assert.equal(await runDigest(["--help"], (s) => out.push(s)), 0);
    assert.equal(out.join(""), digestUsage);
  });

  it("exits 1 when the cluster cannot be read", async () => {
    const err: string[] = [];
    const code = await runDigest(
      ["--kubeconfig", "/nonexistent/kubeconfig"],
      () => assert.fail("nothing on stdout"),
      (s) => err.push(s),
    );
    assert.equal(code, 1);
    assert.match(err.join(""), /^fedbackup digest: /);
  });
});
