// The image cannot be built here (no container engine), so the Dockerfile is checked statically, and its
// entrypoint is checked against the real build output laid out as the final stage lays it out.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT } from "../../harness/binaries.js";
import { buildImageLayout } from "../../harness/image-layout.js";

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Instructions of a Dockerfile (comments dropped, continuation lines joined), grouped by stage. */
export function parseDockerfile(text: string): { args: Instruction[]; stages: Stage[] } {
  const logical: string[] = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && pending === "")) continue;
    if (line.endsWith("\\")) {
      pending += line.slice(0, -1) + " ";
      continue;
    }
    logical.push(pending + line);
    pending = "";
  }
  const args: Instruction[] = [];
  const stages: Stage[] = [];
  for (const l of logical.filter((l) => l !== "")) {
    const [, op, rest] = /^(\S+)\s*(.*)$/.exec(l)!;
    const ins = { op: op!.toUpperCase(), args: rest!.trim() };
    if (ins.op === "FROM") {
      const [image, as, name] = ins.args.split(/\s+/);
      stages.push({ from: image!, ...(as?.toUpperCase() === "AS" ? { name } : {}), instructions: [] });
    } else if (stages.length === 0) args.push(ins);
    else stages.at(-1)!.instructions.push(ins);
  }
  return { args, stages };
}

const dockerfile = parseDockerfile(readFileSync(path.join(REPO_ROOT, "Dockerfile"), "utf8"));
const final = dockerfile.stages.at(-1)!;
const all = (stage: Stage, op: string) => stage.instructions.filter((i) => i.op === op);
const workdir = (stage: Stage) => all(stage, "WORKDIR").at(-1)?.args ?? "/";
const entrypoint = (): string[] => JSON.parse(all(final, "ENTRYPOINT").at(-1)!.args) as string[];

/** COPY [--from=STAGE] SRC... DEST, with DEST resolved against the stage's WORKDIR. */
function copies(stage: Stage) {
  return all(stage, "COPY").map((c) => {
    const words = c.args.split(/\s+/);
    const flags = words.filter((w) => w.startsWith("--"));
    const paths = words.filter((w) => !w.startsWith("--"));
    const from = flags.find((f) => f.startsWith("--from="))?.slice("--from=".length);
    return { from, sources: paths.slice(0, -1), dest: path.posix.resolve(workdir(stage), paths.at(-1)!) };
  });
}

describe("Dockerfile", () => {
  it("builds every stage on the Node 24 LTS slim base, pinned by its full version tag", () => {
    assert.ok(dockerfile.stages.length >= 2, "multi-stage");
    for (const stage of dockerfile.stages) {
      assert.match(stage.from, /^node:24\.\d+\.\d+-[a-z]+-slim(@sha256:[0-9a-f]{64})?$/, `FROM ${stage.from}`);
    }
    assert.equal(new Set(dockerfile.stages.map((s) => s.from)).size, 1, "one base for every stage");
  });

  it("runs the final stage as a numeric non-root user", () => {
    const user = all(final, "USER").at(-1)?.args;
    assert.ok(user, "USER is set in the final stage");
    const [uid, gid] = user.split(":");
    assert.match(uid!, /^\d+$/, "numeric, so runAsNonRoot can be verified by the kubelet");
    assert.notEqual(Number(uid), 0);
    if (gid !== undefined) assert.notEqual(Number(gid), 0);
  });

  it("copies only the build output, production node_modules and package.json into the final stage", () => {
    const byName = new Map(dockerfile.stages.map((s) => [s.name, s]));
    assert.equal(all(final, "RUN").length, 0, "nothing is installed or built in the final stage");
    const found = copies(final).map((c) => {
      if (!c.from) {
        assert.deepEqual(c.sources, ["package.json"], "only package.json comes from the context");
        return "package.json";
      }
      const stage = byName.get(c.from);
      assert.ok(stage, `COPY --from=${c.from}: a stage of this Dockerfile`);
      assert.equal(c.sources.length, 1);
      const source = path.posix.relative(workdir(stage), c.sources[0]!);
      if (source === "node_modules") {
        const installs = all(stage, "RUN").map((r) => r.args);
        assert.ok(
          installs.some((r) => /\bnpm ci\b/.test(r) && /--omit=dev\b/.test(r)),
          `stage ${c.from} installs production dependencies only (npm ci --omit=dev)`,
        );
        assert.ok(!installs.some((r) => /\bnpm (install|i)\b/.test(r) && !/--omit=dev/.test(r)));
        return "node_modules";
      }
      assert.equal(source, "dist/src", `COPY --from=${c.from} ${c.sources[0]}: the build output of src/`);
      assert.ok(
        all(stage, "RUN").some((r) => /tsc -p tsconfig\.build\.json/.test(r.args)),
        "compiled from tsconfig.build.json (src/ only)",
      );
      return "dist/src";
    });
    assert.deepEqual(found.sort(), ["dist/src", "node_modules", "package.json"]);
  });

  it("carries the OCI labels", () => {
    const labels = all(final, "LABEL")
      .map((l) => l.args)
      .join(" ");
    for (const key of ["title", "description", "source", "licenses", "version", "revision", "created"]) {
      assert.match(labels, new RegExp(`org\\.opencontainers\\.image\\.${key}=`), key);
    }
  });

  it("names an entrypoint that exists in the build output and answers --help with exit 0", function () {
    this.timeout(180_000);
    const [command, script] = entrypoint();
    assert.equal(command, "node");
    // Where the script comes from: the COPY whose destination holds it, back to the build stage's tree.
    const copy = copies(final).find((c) => c.from && script!.startsWith(c.dest + "/"))!;
    assert.ok(copy, `a COPY puts ${script} into the image`);
    const stage = dockerfile.stages.find((s) => s.name === copy.from)!;
    const inStage = path.posix.join(
      path.posix.relative(workdir(stage), copy.sources[0]!),
      script!.slice(copy.dest.length),
    );
    assert.match(inStage, /^dist\//, "the script is build output (outDir dist)");

    // The final stage's layout: package.json, node_modules and the build output side by side.
    const app = buildImageLayout();
    try {
      const built = path.join(app, inStage);
      assert.ok(existsSync(built), `${inStage} exists in the build output`);
      const help = spawnSync(process.execPath, [built, "--help"], { cwd: app, encoding: "utf8" });
      assert.equal(help.status, 0, help.stderr);
      assert.match(help.stdout, /Usage: fedbackup <command>/);
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });
});
