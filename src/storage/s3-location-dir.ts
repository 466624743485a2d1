// A backup's directory under an S3 prefix: each file one object, its key the file's path below the prefix.
//
// Writes. A file is streamed once: the agent's copy hashes each chunk and hands it to an upload sink, which
// feeds a multipart upload (@aws-sdk/lib-storage) of PART_BYTES parts with at most UPLOAD_QUEUE parts in
// flight, so memory is bounded whatever the file's size (a few parts plus the copy's ring of buffers). An
// object appears only when its upload completes, which is S3's own atomicity: a file is there complete or
// not at all, and the manifest, uploaded last, means its VM is complete. A failed upload is aborted (its
// parts deleted); one cut short by a crash (the agent killed, the store down) leaves an incomplete upload
// that nothing lists, and removeTree, run before a VM is captured again, aborts those under its prefix.
//
// Reads. A file is read in order, as the copies read: one ranged GET from the first position asked for,
// consumed as the reads advance; a read elsewhere starts another GET. Every GET asks for the ETag seen when
// the file was opened, so an object replaced in the meantime fails the read rather than mixing two files.
import type { Readable } from "node:stream";
import { PassThrough } from "node:stream";
import { once } from "node:events";
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import type { LocationDir } from "./location-dir.js";
import { notFound } from "./location-dir.js";
import type { PositionalSink, PositionalSource } from "./positional.js";
import { isNotFound } from "./s3-errors.js";

/** Bytes per uploaded part: 8 MiB (S3's minimum is 5 MiB), so a 2 GiB disk is 256 parts of the 10,000 allowed. */
export const PART_BYTES = 8 * 1024 * 1024;
/** Parts uploaded at once: enough to keep a connection busy while the next part fills. */
export const UPLOAD_QUEUE = 3;

export class S3LocationDir implements LocationDir {
  readonly remote = true;

  /** `root`: the key of the backup's directory (the location's prefix and the backup's path), no trailing '/'. */
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly root: string,
  ) {}

  relative(rel: string): string {
    return `s3://${this.bucket}/${this.key(rel)}`;
  }

  async openFile(rel: string): Promise<PositionalSource> {
    const key = this.key(rel);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return new S3ObjectSource(this.client, this.bucket, key, head.ContentLength ?? 0, head.ETag);
    } catch (err) {
      if (isNotFound(err)) throw notFound(this.relative(rel), err);
      throw err;
    }
  }

  async commit<T>(rel: string, produce: (sink: PositionalSink) => Promise<T>): Promise<T> {
    const body = new PassThrough({ highWaterMark: 1024 * 1024 });
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: this.key(rel), Body: body },
      partSize: PART_BYTES,
      queueSize: UPLOAD_QUEUE,
      leavePartsOnError: false,
    });
    const uploaded = upload.done();
    // Settled by whoever awaits it below; this only keeps a failure seen first by a write from going unhandled.
    uploaded.catch(() => {});
    const sink = new UploadSink(body, uploaded);
    try {
      const result = await produce(sink);
      body.end();
      await uploaded;
      return result;
    } catch (err) {
      body.destroy(err instanceof Error ? err : new Error(String(err)));
      await upload.abort().catch(() => {});
      await uploaded.catch(() => {});
      throw err;
    }
  }

  async remove(rel: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(rel) }));
  }

  async removeTree(rel: string): Promise<void> {
    const prefix = `${this.key(rel)}/`;
    for (let token: string | undefined, first = true; first || token; first = false) {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key) await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: object.Key }));
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    }
    await abortIncompleteUploads(this.client, this.bucket, prefix);
  }

  private key(rel: string): string {
    return this.root ? `${this.root}/${rel}` : rel;
  }
}

/** Aborts the multipart uploads under `prefix` that never completed (their parts are otherwise kept and billed). */
export async function abortIncompleteUploads(client: S3Client, bucket: string, prefix: string): Promise<number> {
  let aborted = 0;
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await client.send(
      new ListMultipartUploadsCommand({
        Bucket: bucket,
        Prefix: prefix,
        KeyMarker: keyMarker,
        UploadIdMarker: uploadIdMarker,
      }),
    );
    for (const upload of page.Uploads ?? []) {
      if (!upload.Key || !upload.UploadId) continue;
      await client.send(
        new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }),
      );
      aborted++;
    }
    if (!page.IsTruncated) return aborted;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
  }
}

const ZEROS = Buffer.alloc(1024 * 1024);

// The copies write at positions in increasing order and leave all-zero chunks unwritten (holes on a
// filesystem); an object has no holes, so a gap is uploaded as zeros. Each chunk is copied before it is
// queued: the copy reuses its buffers as soon as a write returns.
class UploadSink implements PositionalSink {
  private written = 0;

  constructor(
    private readonly body: PassThrough,
    private readonly uploaded: Promise<unknown>,
  ) {}

  async write(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }> {
    await this.fillTo(position);
    await this.push(Buffer.from(buffer.subarray(offset, offset + length)));
    this.written += length;
    return { bytesWritten: length };
  }

  async truncate(length: number): Promise<void> {
    if (length < this.written) {
      throw new Error(`an object being uploaded cannot be cut back to ${length} bytes (${this.written} written)`);
    }
    await this.fillTo(length);
  }

  private async fillTo(position: number): Promise<void> {
    if (position < this.written) {
      throw new Error(`an object is uploaded in order: a write at ${position} after ${this.written} bytes`);
    }
    while (this.written < position) {
      const n = Math.min(ZEROS.length, position - this.written);
      await this.push(ZEROS.subarray(0, n));
      this.written += n;
    }
  }

  private async push(chunk: Buffer): Promise<void> {
    if (this.body.write(chunk)) return;
    const ended = this.uploaded.then(() => {
      throw new Error("the upload ended before all of its data was written");
    });
    await Promise.race([once(this.body, "drain"), ended]);
  }
}

class S3ObjectSource implements PositionalSource {
  private body: AsyncIterator<Uint8Array> | undefined;
  private stream: Readable | undefined;
  private bodyAt = 0;
  private pending: Buffer = Buffer.alloc(0);
  // Reads run one after another, in the order they were asked for (the copies ask ahead).
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly key: string,
    private readonly size: number,
    private readonly etag: string | undefined,
  ) {}

  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    const result = this.chain.then(() => this.readAt(buffer, offset, length, position));
    this.chain = result.catch(() => {});
    return result;
  }

  stat(): Promise<{ size: number }> {
    return Promise.resolve({ size: this.size });
  }

  async close(): Promise<void> {
    await this.chain;
    this.stream?.destroy();
    this.stream = this.body = undefined;
  }

  private async readAt(buffer: Buffer, offset: number, length: number, position: number) {
    if (position >= this.size || length === 0) return { bytesRead: 0 };
    if (!this.body || position !== this.bodyAt) await this.openAt(position);
    let filled = 0;
    while (filled < length) {
      if (this.pending.length === 0) {
        const next = await this.body!.next();
        if (next.done) break;
        this.pending = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      }
      const n = Math.min(length - filled, this.pending.length);
      this.pending.copy(buffer, offset + filled, 0, n);
      this.pending = this.pending.subarray(n);
      filled += n;
    }
    this.bodyAt += filled;
    return { bytesRead: filled };
  }

  private async openAt(position: number): Promise<void> {
    this.stream?.destroy();
    const response = await this.client.send(
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: this.key,
        Range: `bytes=${position}-`,
        ...(this.etag ? { IfMatch: this.etag } : {}),
      }),
    );
    this.stream = response.Body as Readable;
    this.body = this.stream[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
    this.bodyAt = position;
    this.pending = Buffer.alloc(0);
  }
}
