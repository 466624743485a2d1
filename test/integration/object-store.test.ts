// The S3 server the object-storage tests run against (test/harness/object-store.ts): a real SeaweedFS that
// checks signatures, completes multipart uploads, survives a crash, and runs twice on one machine.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { startObjectStore, weedBinary, type ObjectStore } from "../harness/object-store.js";

const BUCKET = "backups";
const MiB = 1024 * 1024;

async function readObject(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await got.Body!.transformToByteArray());
}

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** `size` random bytes as a stream of 1 MiB chunks of unknown total length, and their sha256. */
function randomStream(size: number): { body: Readable; digest: () => string } {
  const hash = createHash("sha256");
  let left = size;
  const body = new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const chunk = randomBytes(Math.min(MiB, left));
      left -= chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { body, digest: () => hash.digest("hex") };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  assert.fail("the request succeeded");
}

describe("object store (SeaweedFS S3)", () => {
  let store: ObjectStore;
  let other: ObjectStore;
  let client: S3Client;

  before(async function () {
    this.timeout(30 * 60_000); // a cold cache builds weed first (hack/objectstore/build.sh, a few minutes)
    weedBinary();
    this.timeout(60_000);
    // Both at once: a start takes seconds (the filer waits to be sure it has no peers), most of it idle.
    const log = (m: string) => console.log(`      ${m}`);
    [store, other] = await Promise.all([
      startObjectStore({ buckets: [BUCKET], log }),
      startObjectStore({ buckets: ["other"], log }),
    ]);
    client = store.client();
  });

  after(async () => {
    client?.destroy();
    await Promise.all([store?.stop(), other?.stop()]);
  });

  it("checks signatures: a wrong secret is refused with SignatureDoesNotMatch", async () => {
    const key = "signed/object";
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: "right key" }));
    const wrong = store.client({ accessKeyId: store.accessKeyId, secretAccessKey: `${store.secretAccessKey}x` });
    try {
      const read = await rejection(wrong.send(new GetObjectCommand({ Bucket: BUCKET, Key: key })));
      assert.equal(read.name, "SignatureDoesNotMatch");
      const write = await rejection(wrong.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: "other" })));
      assert.equal(write.name, "SignatureDoesNotMatch");
    } finally {
      wrong.destroy();
    }
    assert.equal((await readObject(client, BUCKET, key)).toString(), "right key");
  });

  it("refuses a write to a bucket that does not exist, as AWS does, instead of creating it", async () => {
    const refused = await rejection(client.send(new PutObjectCommand({ Bucket: "missing", Key: "k", Body: "x" })));
    assert.equal(refused.name, "NoSuchBucket");
    await store.createBucket("created");
    await store.createBucket("created"); // again: the bucket is there already
    await client.send(new PutObjectCommand({ Bucket: "created", Key: "k", Body: "x" }));
  });

  it("stores a 40 MiB multipart upload of unknown length and reads back the same bytes", async function () {
    this.timeout(60_000);
    const key = "multipart/disk.img";
    const { body, digest } = randomStream(40 * MiB);
    const upload = new Upload({
      client,
      params: { Bucket: BUCKET, Key: key, Body: body },
      partSize: 8 * MiB,
      queueSize: 2,
    });
    const done = await upload.done();
    // A multipart object's ETag is the digest of its parts' digests with their count: "<hex>-5".
    assert.match(done.ETag ?? "", /-5"?$/);
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    assert.equal(head.ContentLength, 40 * MiB);
    assert.equal(sha256(await readObject(client, BUCKET, key)), digest());
  });

  it("keeps its data when killed and started again on the same ports", async function () {
    this.timeout(60_000);
    const key = "crash/before-kill";
    const data = randomBytes(3 * MiB);
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: data }));
    const endpoint = store.endpoint;
    await store.kill();
    assert.equal(store.running, false);
    await rejection(client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })));
    await store.start();
    assert.equal(store.endpoint, endpoint);
    assert.equal(sha256(await readObject(client, BUCKET, key)), sha256(data));
    const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "multipart/" }));
    assert.deepEqual(
      listed.Contents?.map((o) => [o.Key, o.Size]),
      [["multipart/disk.img", 40 * MiB]],
    );
  });

  it("runs a second server beside the first, on ports and data of its own", async () => {
    const otherClient = other.client();
    try {
      const mine = Object.values(store.ports);
      const theirs = Object.values(other.ports);
      assert.equal(new Set([...mine, ...theirs]).size, mine.length + theirs.length);
      assert.notEqual(other.endpoint, store.endpoint);
      await otherClient.send(new PutObjectCommand({ Bucket: "other", Key: "k", Body: "second" }));
      await other.createBucket(BUCKET);
      const listed = await otherClient.send(new ListObjectsV2Command({ Bucket: BUCKET }));
      assert.equal(listed.KeyCount ?? 0, 0);
      // Each server knows its own key pair only.
      const foreign = store.client(other.credentials);
      try {
        const refused = await rejection(foreign.send(new ListObjectsV2Command({ Bucket: BUCKET })));
        assert.equal(refused.name, "InvalidAccessKeyId");
      } finally {
        foreign.destroy();
      }
      assert.equal((await readObject(otherClient, "other", "k")).toString(), "second");
    } finally {
      otherClient.destroy();
    }
  });
});
