// The S3 probe's classification, on the errors the AWS SDK really produces: an HTTP server on loopback
// answers each request of the probe with a status and an S3 error document, and the SDK parses them; a closed
// port gives the connection error. (The real object store is exercised by test/integration/backup-location.)
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { classifyProbeError, probeKey, probeS3 } from "../../../src/storage/s3-probe.js";
import type { S3Location } from "../../../src/storage/s3-client.js";

type Answer = { status: number; code?: string };
type Script = Partial<Record<"HEAD" | "PUT" | "DELETE", Answer>>;

const errorDocument = (code: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${code} from the test server</Message><RequestId>1</RequestId></Error>`;

async function s3Double(script: Script): Promise<{ endpoint: string; seen: string[]; server: Server }> {
  const seen: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on("end", () => {
      seen.push(`${req.method} ${(req.url ?? "").split("?")[0]!.replace(/\/$/, "")}`);
      const answer = script[req.method as keyof Script] ?? { status: req.method === "DELETE" ? 204 : 200 };
      const body = answer.code && req.method !== "HEAD" ? errorDocument(answer.code) : "";
      res.writeHead(answer.status, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { endpoint: `http://127.0.0.1:${port}`, seen, server };
}

const location = (endpoint: string): S3Location => ({
  endpoint,
  bucket: "backups",
  prefix: "cluster-a",
  forcePathStyle: true,
  credentialsSecretRef: { name: "s3-credentials" },
});
const credentials = { accessKeyId: "AKIDTEST", secretAccessKey: "secret" };

describe("S3 location probe", () => {
  const servers: Server[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
  });
  async function probeAgainst(script: Script) {
    const double = await s3Double(script);
    servers.push(double.server);
    const outcome = await probeS3(location(double.endpoint), credentials, { token: "t0" });
    return { outcome, seen: double.seen };
  }

  it("heads the bucket, then puts and deletes a probe object under the prefix", async () => {
    const { outcome, seen } = await probeAgainst({});
    assert.equal(outcome.ok, true);
    assert.deepEqual(seen, [
      "HEAD /backups",
      "PUT /backups/cluster-a/.fedbackup/probe-t0",
      "DELETE /backups/cluster-a/.fedbackup/probe-t0",
    ]);
  });

  it("a bucket that does not exist (HeadBucket 404, no body) is BucketNotFound, and nothing is written", async () => {
    const { outcome, seen } = await probeAgainst({ HEAD: { status: 404 } });
    assert.equal(outcome.ok, false);
    assert.equal(!outcome.ok && outcome.reason, "BucketNotFound");
    assert.match(!outcome.ok ? outcome.message : "", /bucket backups at http:\/\/127\.0\.0\.1:\d+ does not exist/);
    assert.deepEqual(seen, ["HEAD /backups"]);
  });

  it("a key pair refused on HeadBucket (403) is InvalidCredentials", async () => {
    const { outcome } = await probeAgainst({ HEAD: { status: 403 } });
    assert.equal(!outcome.ok && outcome.reason, "InvalidCredentials");
  });

  it("SignatureDoesNotMatch and InvalidAccessKeyId are InvalidCredentials whatever the request", async () => {
    for (const code of ["SignatureDoesNotMatch", "InvalidAccessKeyId"]) {
      const { outcome } = await probeAgainst({ PUT: { status: 403, code } });
      assert.equal(!outcome.ok && outcome.reason, "InvalidCredentials", code);
      assert.match(!outcome.ok ? outcome.message : "", new RegExp(code));
    }
  });

  it("a put denied after the bucket was found is NotWritable, and so is a delete denied", async () => {
    const put = await probeAgainst({ PUT: { status: 403, code: "AccessDenied" } });
    assert.equal(!put.outcome.ok && put.outcome.reason, "NotWritable");
    assert.match(
      !put.outcome.ok ? put.outcome.message : "",
      /not write objects under cluster-a\/\.fedbackup\/probe-\*/,
    );
    const del = await probeAgainst({ DELETE: { status: 403, code: "AccessDenied" } });
    assert.equal(!del.outcome.ok && del.outcome.reason, "NotWritable");
    assert.match(!del.outcome.ok ? del.outcome.message : "", /not delete/);
  });

  it("NoSuchBucket on the put is BucketNotFound; another error of the store is ValidationFailed with its code", async () => {
    const gone = await probeAgainst({ PUT: { status: 404, code: "NoSuchBucket" } });
    assert.equal(!gone.outcome.ok && gone.outcome.reason, "BucketNotFound");
    const other = await probeAgainst({ PUT: { status: 500, code: "InternalError" } });
    assert.equal(!other.outcome.ok && other.outcome.reason, "ValidationFailed");
    assert.match(!other.outcome.ok ? other.outcome.message : "", /PutObject on bucket backups .*InternalError/);
  });

  it("a closed port is Unreachable, reported at once", async () => {
    const double = await s3Double({});
    const endpoint = double.endpoint;
    await new Promise<void>((resolve) => double.server.close(() => resolve()));
    const started = Date.now();
    const outcome = await probeS3(location(endpoint), credentials);
    assert.equal(!outcome.ok && outcome.reason, "Unreachable");
    assert.match(!outcome.ok ? outcome.message : "", /ECONNREFUSED/);
    assert.ok(Date.now() - started < 3_000, "one attempt, no retries");
  });

  it("classifies the transport's errors: DNS, timeouts, untrusted certificates", () => {
    const where = { endpoint: "https://s3.example", bucket: "b" };
    const dns = Object.assign(new Error("getaddrinfo ENOTFOUND s3.example"), { code: "ENOTFOUND" });
    assert.equal(classifyProbeError(dns, "HeadBucket", where).reason, "Unreachable");
    const timeout = Object.assign(new Error("socket timed out"), { name: "TimeoutError" });
    assert.equal(classifyProbeError(timeout, "HeadBucket", where).reason, "Unreachable");
    const tls = Object.assign(new Error("self-signed certificate"), { code: "DEPTH_ZERO_SELF_SIGNED_CERT" });
    const classified = classifyProbeError(tls, "HeadBucket", where);
    assert.equal(classified.reason, "Unreachable");
    assert.match(classified.message, /caBundle/);
  });

  it("puts the probe under the prefix, or at the bucket's root without one", () => {
    assert.equal(probeKey({ prefix: "/a/b/" }, "x"), "a/b/.fedbackup/probe-x");
    assert.equal(probeKey({}, "x"), ".fedbackup/probe-x");
  });
});
