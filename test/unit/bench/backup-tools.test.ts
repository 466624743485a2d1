import assert from "node:assert/strict";
import { environmentWithout, kopia, restic } from "../../bench/backup-tools.js";

describe("bench: the reference backup tools", () => {
  it("drops the caller's variables of the tool and adds the benchmark's", () => {
    const env = environmentWithout(
      { PATH: "/usr/bin", RESTIC_REPOSITORY: "s3:prod/backups", RESTIC_PASSWORD_FILE: "/root/pw", HOME: "/root" },
      ["RESTIC_"],
      { RESTIC_PASSWORD: "p" },
    );
    assert.deepEqual(env, { PATH: "/usr/bin", HOME: "/root", RESTIC_PASSWORD: "p" });
  });

  it("restic: a repository and a cache of its own inside the work directory, a password by environment", () => {
    const tool = restic("/usr/bin/restic");
    assert.deepEqual(tool.setup("/w"), [
      {
        command: "/usr/bin/restic",
        args: ["init", "--quiet", "--repo", "/w/restic-repo", "--cache-dir", "/w/restic-cache"],
      },
    ]);
    assert.deepEqual(tool.backup("/w", "/data/set"), {
      command: "/usr/bin/restic",
      args: [
        "backup",
        "--quiet",
        "--host",
        "bench",
        "--repo",
        "/w/restic-repo",
        "--cache-dir",
        "/w/restic-cache",
        "/data/set",
      ],
    });
    const env = tool.env({ RESTIC_REPOSITORY: "elsewhere", PATH: "/bin" });
    assert.equal(env.RESTIC_REPOSITORY, undefined);
    assert.ok(env.RESTIC_PASSWORD);
  });

  it("kopia: config, logs, cache and repository inside the work directory; no update check, no maintenance", () => {
    const tool = kopia("/cache/kopia");
    const steps = tool.setup("/w");
    assert.equal(steps.length, 2);
    for (const step of steps) {
      assert.equal(step.command, "/cache/kopia");
      assert.deepEqual(step.args.slice(0, 4), [
        "--config-file",
        "/w/kopia/repository.config",
        "--log-dir",
        "/w/kopia/logs",
      ]);
    }
    const create = steps[0]?.args ?? [];
    assert.deepEqual(create.slice(4, 7), ["repository", "create", "filesystem"]);
    for (const flag of ["--no-check-for-updates", "--no-persist-credentials"]) assert.ok(create.includes(flag), flag);
    assert.equal(create[create.indexOf("--path") + 1], "/w/kopia-repo");
    assert.equal(create[create.indexOf("--cache-directory") + 1], "/w/kopia/cache");
    assert.deepEqual(steps[1]?.args.slice(4), ["maintenance", "set", "--enable-quick=false", "--enable-full=false"]);
    const backup = tool.backup("/w", "/data/set");
    assert.deepEqual(backup.args.slice(4), ["snapshot", "create", "--no-progress", "/data/set"]);
    const env = tool.env({ KOPIA_CONFIG_PATH: "/root/.config/kopia/repository.config", PATH: "/bin" });
    assert.equal(env.KOPIA_CONFIG_PATH, undefined);
    assert.ok(env.KOPIA_PASSWORD);
  });

  it("each says what it does that the agent does not", () => {
    for (const tool of [restic(), kopia("kopia")]) {
      assert.match(tool.does, /dedup/);
      assert.match(tool.does, /encrypt/);
      assert.match(tool.does, /compress/);
    }
  });
});
