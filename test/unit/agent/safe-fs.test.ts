import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { link, mkdir, readFile, readdir, rename, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { UnsafePathError, withRoot, type SafeDir } from "../../../src/agent/safe-fs.js";
import { describeTree, makeTempDir, releaseFifo } from "./helpers.js";

describe("agent/safe-fs", function () {
  this.timeout(10_000);
  let dir: string;
  let root: string;
  let outside: string;
  let cleanup: () => Promise<void>;
  const fifos: string[] = [];

  // A root with two tenants' directories, and a file outside the root standing for a host secret.
  beforeEach(async () => {
    ({ dir, cleanup } = makeTempDir("safe-fs"));
    root = join(dir, "root");
    outside = join(dir, "secret.txt");
    await mkdir(join(root, "vms/a"), { recursive: true });
    await mkdir(join(root, "vms/b"), { recursive: true });
    await writeFile(join(root, "vms/a/disk.img"), "disk of a");
    await writeFile(join(root, "vms/b/disk.img"), "disk of b");
    await writeFile(outside, "host secret");
  });
  afterEach(async () => {
    for (const fifo of fifos.splice(0)) await releaseFifo(fifo);
    await cleanup();
  });

  async function refusal(rel: string, open: (root: SafeDir) => Promise<unknown> = (r) => r.openFile(rel)) {
    const error = await withRoot(root, open).then(
      () => assert.fail(`${rel} was opened`),
      (err: unknown) => err,
    );
    assert.ok(error instanceof UnsafePathError, `not an UnsafePathError: ${String(error)}`);
    return error;
  }

  it("opens a regular file below the root", async () => {
    const text = await withRoot(root, async (r) => {
      const file = await r.openFile("vms/a/disk.img");
      try {
        return await file.readFile("utf8");
      } finally {
        await file.close();
      }
    });
    assert.equal(text, "disk of a");
  });

  it("refuses a symlinked file, with a relative or an absolute target", async () => {
    await symlink("../b/disk.img", join(root, "vms/a/rel.img"));
    await symlink(outside, join(root, "vms/a/abs.img"));
    await symlink("nowhere", join(root, "vms/a/dangling.img"));
    for (const name of ["rel.img", "abs.img", "dangling.img"]) {
      const error = await refusal(`vms/a/${name}`);
      assert.equal(error.reason, "SymbolicLink");
      assert.equal(error.message, `vms/a/${name} is a symbolic link`);
    }
  });

  it("refuses a symlinked directory on the way, naming it and the path", async () => {
    await symlink("b", join(root, "vms/c"));
    const error = await refusal("vms/c/disk.img");
    assert.equal(error.reason, "SymbolicLink");
    assert.equal(error.message, "vms/c is a symbolic link, on the way to vms/c/disk.img");
    const again = await refusal("vms/c/new", (r) => r.openDir("vms/c/new", { create: true }));
    assert.equal(again.reason, "SymbolicLink");
    assert.deepEqual(await readdir(join(root, "vms/b")), ["disk.img"], "nothing was created through the link");
  });

  it("refuses a hard link, a FIFO (without blocking), a directory and a device", async () => {
    await link(join(root, "vms/b/disk.img"), join(root, "vms/a/hard.img"));
    const fifo = join(root, "vms/a/fifo.img");
    execFileSync("mkfifo", [fifo]);
    fifos.push(fifo);
    assert.equal((await refusal("vms/a/hard.img")).message, "vms/a/hard.img has 2 hard links");
    assert.equal((await refusal("vms/a/fifo.img")).message, "vms/a/fifo.img is a FIFO");
    assert.equal((await refusal("vms/a")).message, "vms/a is a directory");
    if (process.getuid?.() === 0) {
      execFileSync("mknod", [join(root, "vms/a/null.img"), "c", "1", "3"]);
      assert.equal((await refusal("vms/a/null.img")).message, "vms/a/null.img is a character device");
    }
  });

  it("refuses paths that are not plain relative paths", async () => {
    for (const rel of ["../secret.txt", "/etc/passwd", "vms//a/disk.img", "vms/./a/disk.img", "vms/a/"]) {
      assert.equal((await refusal(rel)).reason, "InvalidPath", rel);
    }
  });

  it("creates files exclusively: never through an existing name, a dangling symlink included", async () => {
    await symlink(join(dir, "created-outside"), join(root, "vms/a/planted"));
    await withRoot(root, async (r) => {
      const a = await r.openDir("vms/a");
      try {
        await assert.rejects(a.createFile("planted"), { code: "EEXIST" });
        await assert.rejects(a.createFile("disk.img"), { code: "EEXIST" });
        const file = await a.createFile("new.img");
        await file.writeFile("new");
        await file.close();
      } finally {
        await a.close();
      }
    });
    assert.deepEqual(await readdir(dir), ["root", "secret.txt"]);
    assert.equal(await readFile(join(root, "vms/a/disk.img"), "utf8"), "disk of a");
    assert.equal(await readFile(join(root, "vms/a/new.img"), "utf8"), "new");
  });

  it("an open directory stays that directory after its path is swapped for a symlink", async () => {
    await withRoot(root, async (r) => {
      const a = await r.openDir("vms/a");
      try {
        // A tenant moves the directory away and puts a symlink to another tenant's directory in its place.
        await rename(join(root, "vms/a"), join(root, "vms/a-moved"));
        await symlink("b", join(root, "vms/a"));
        const file = await a.createFile("written.img");
        await file.close();
        await a.rename("written.img", "renamed.img");
        // Opening by path again now meets the symlink, and is refused.
        await assert.rejects(r.openDir("vms/a"), { reason: "SymbolicLink" });
      } finally {
        await a.close();
      }
    });
    assert.deepEqual((await readdir(join(root, "vms/a-moved"))).sort(), ["disk.img", "renamed.img"]);
    assert.deepEqual(await readdir(join(root, "vms/b")), ["disk.img"]);
  });

  it("removes a tree without following the symlinks in it", async () => {
    await mkdir(join(root, "doomed/sub"), { recursive: true });
    await writeFile(join(root, "doomed/sub/file"), "x");
    await symlink(join(root, "vms"), join(root, "doomed/to-vms"));
    await symlink(outside, join(root, "doomed/sub/to-secret"));
    await symlink(join(root, "vms/b"), join(root, "gone-link"));
    const before = await describeTree(root);
    await withRoot(root, async (r) => {
      assert.equal(await r.removeTree("doomed"), true);
      // A symlink named as the tree is removed as a name.
      assert.equal(await r.removeTree("gone-link"), true);
      assert.equal(await r.removeTree("never-was"), false);
      assert.equal(await r.removeTree("never/was"), false);
    });
    const after = await describeTree(root);
    for (const path of Object.keys(before).filter((p) => p.startsWith("vms"))) assert.equal(after[path], before[path]);
    assert.deepEqual(Object.keys(after).sort(), ["vms", "vms/a", "vms/a/disk.img", "vms/b", "vms/b/disk.img"]);
    assert.equal(await readFile(outside, "utf8"), "host secret");
  });

  it("refuses to remove below a symlinked directory", async () => {
    await symlink("vms", join(root, "link"));
    const before = await describeTree(root);
    const error = await refusal("link/b", (r) => r.removeTree("link/b"));
    assert.equal(error.message, "link is a symbolic link, on the way to link/b");
    assert.deepEqual(await describeTree(root), before);
  });
});
