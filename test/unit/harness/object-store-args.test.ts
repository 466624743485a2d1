import assert from "node:assert/strict";
import { weedEnvironment, weedMiniArgs, type ObjectStorePorts } from "../../harness/object-store.js";

const PORTS: ObjectStorePorts = {
  master: 40001,
  masterGrpc: 40002,
  volume: 40003,
  volumeGrpc: 40004,
  filer: 40005,
  filerGrpc: 40006,
  s3: 40007,
  s3Grpc: 40008,
  admin: 40009,
  adminGrpc: 40010,
};

function flags(args: string[]): Map<string, string> {
  const mini = args.indexOf("mini");
  return new Map(
    args.slice(mini + 1).map((a) => {
      const [name, value] = a.replace(/^-/, "").split(/=(.*)/s);
      return [name!, value ?? "true"];
    }),
  );
}

describe("weed mini command line", () => {
  const args = weedMiniArgs("/srv/s3", PORTS, ["a", "b"]);
  const f = flags(args);

  it("gives every port weed listens on explicitly, so it never moves one by itself", () => {
    const portFlags = [...f].filter(([name]) => /\.port(\.grpc)?$/.test(name));
    assert.deepEqual(
      portFlags.map(([, v]) => Number(v)).sort(),
      Object.values(PORTS).sort(),
      "each allocated port is passed once",
    );
  });

  it("turns off the listeners the tests do not use", () => {
    assert.equal(f.get("webdav"), "false");
    assert.equal(f.get("s3.port.iceberg"), "0");
    assert.equal(f.get("s3.port.lance"), "0");
    assert.equal(f.get("admin.port.legacy"), "0");
    assert.equal(f.get("master.telemetry"), "false");
    assert.equal(f.get("s3.autoCreateBucket"), "false");
  });

  it("binds loopback only and keeps data, logs and sockets under the directory", () => {
    assert.equal(f.get("ip.bind"), "127.0.0.1");
    assert.equal(f.get("dir"), "/srv/s3/data");
    assert.equal(args[0], "-logdir=/srv/s3/logs");
    assert.ok(f.get("filer.localSocket")!.startsWith("/srv/s3/"));
    assert.ok(f.get("s3.localSocket")!.startsWith("/srv/s3/"));
  });

  it("creates the buckets asked for, and names none when there are none", () => {
    assert.equal(f.get("bucket"), "a,b");
    assert.equal(flags(weedMiniArgs("/srv/s3", PORTS, [])).has("bucket"), false);
  });

  it("passes the key pair and none of the caller's WEED_ or S3_ variables", () => {
    process.env.WEED_MASTER_PORT = "1";
    try {
      const env = weedEnvironment("/srv/s3", { accessKeyId: "id", secretAccessKey: "secret" });
      assert.equal(env.AWS_ACCESS_KEY_ID, "id");
      assert.equal(env.AWS_SECRET_ACCESS_KEY, "secret");
      assert.equal(env.HOME, "/srv/s3");
      assert.deepEqual(
        Object.keys(env).filter((k) => k.startsWith("WEED_") || k.startsWith("S3_")),
        [],
      );
    } finally {
      delete process.env.WEED_MASTER_PORT;
    }
  });
});
