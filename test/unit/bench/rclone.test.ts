import assert from "node:assert/strict";
import { comparableFlags, rcloneEnvironment } from "../../bench/rclone.js";

describe("bench: rclone configured by environment", () => {
  const remote = {
    name: "bench",
    endpoint: "http://127.0.0.1:8333",
    region: "us-east-1",
    accessKeyId: "AKID",
    secretAccessKey: "s3cr3t",
  };

  it("defines an S3 remote of provider Other, path-style, under the upper-cased name", () => {
    const env = rcloneEnvironment({ PATH: "/usr/bin" }, remote, "/tmp/x/rclone.conf");
    assert.deepEqual(env, {
      PATH: "/usr/bin",
      RCLONE_CONFIG: "/tmp/x/rclone.conf",
      RCLONE_CONFIG_BENCH_TYPE: "s3",
      RCLONE_CONFIG_BENCH_PROVIDER: "Other",
      RCLONE_CONFIG_BENCH_ENDPOINT: "http://127.0.0.1:8333",
      RCLONE_CONFIG_BENCH_REGION: "us-east-1",
      RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: "AKID",
      RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: "s3cr3t",
      RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: "true",
    });
  });

  it("drops the AWS_* variables of the environment it starts from, which the AWS SDK would read", () => {
    const env = rcloneEnvironment(
      { PATH: "/usr/bin", AWS_CA_BUNDLE: "/etc/ca.pem", AWS_PROFILE: "prod", HOME: "/root" },
      remote,
      "/dev/null",
    );
    assert.equal(env.AWS_CA_BUNDLE, undefined);
    assert.equal(env.AWS_PROFILE, undefined);
    assert.equal(env.HOME, "/root");
    assert.equal(env.RCLONE_CONFIG_BENCH_ACCESS_KEY_ID, "AKID");
  });

  it("refuses a name that cannot be part of a variable name", () => {
    assert.throws(() => rcloneEnvironment({}, { ...remote, name: "my-remote" }, "/dev/null"), /remote name/);
    assert.throws(() => rcloneEnvironment({}, { ...remote, name: "" }, "/dev/null"), /remote name/);
  });

  it("asks for the agent's part size and parts in flight, one file at a time", () => {
    assert.deepEqual(comparableFlags(8 * 1024 * 1024, 3), [
      "--s3-chunk-size",
      "8M",
      "--s3-upload-concurrency",
      "3",
      "--transfers",
      "1",
    ]);
    assert.deepEqual(comparableFlags(16 * 1024 * 1024, 5).slice(0, 4), [
      "--s3-chunk-size",
      "16M",
      "--s3-upload-concurrency",
      "5",
    ]);
    assert.throws(() => comparableFlags(5 * 1024 * 1024 + 1, 3), /whole number of MiB/);
  });
});
