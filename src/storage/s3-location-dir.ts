// A backup's directory under an S3 prefix: each file one object, its key the file's path below the prefix.
//
// Writes. A file is streamed once: the agent's copy hashes each chunk and hands it to an upload sink, which
// fills parts of PART_BYTES from a fixed pool of UPLOAD_QUEUE + 1 buffers and uploads each full part while the
// next one fills (at most UPLOAD_QUEUE in flight): memory is the pool, whatever the file's size. (The SDK's
// multipart helper, @aws-sdk/lib-storage, copies each part once more and leaves the copies to the garbage
// collector: measured 160-210 MiB peak for the agent against this loop's 110-130 MiB.) A file smaller
// than a part is one PutObject. An object appears only when its upload completes, which is S3's own
// atomicity: a file is there complete or not at all, and the manifest, uploaded last, means its VM is
// complete. A failed upload is aborted (its parts deleted); one cut short by a crash (the agent killed, the
// store down) leaves an incomplete upload that nothing lists, and removeTree, run before a VM is captured
// again, aborts those under its prefix.
//
// Reads. A file is read in order, as the copies read: one ranged GET from the first position asked for,
// consumed as the reads advance; a read elsewhere starts another GET. Every GET asks for the ETag seen when
// the file was opened, so an object replaced in the meantime fails the read rather than mixing two files.
import type { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from "@aws-sdk/client-s3";
import type { LocationDir } from "./location-dir.js";
import { notFound } from "./location-dir.js";
import type { PositionalSink, PositionalSource } from "./positional.js";
import { isNotFound } from "./s3-errors.js";

/** Bytes per uploaded part: 8 MiB (S3's minimum is 5 MiB), so a 2 GiB disk is 256 parts of the 10,000 allowed. */
export const PART_BYTES = 8 * 1024 * 1024;
/** Parts uploaded at once while the next one fills: 3 buffers of 8 MiB in all (make bench measures it). */
export const UPLOAD_QUEUE = 2;

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
    const upload = new PartUpload(this.client, this.bucket, this.key(rel));
    try {
      const result = await produce(upload);
      await upload.complete();
      return result;
    } catch (err) {
      await upload.abort();
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
// filesystem); an object has no holes, so a gap is uploaded as zeros. Each chunk is copied into the part
// being filled before the write returns: the copy reuses its buffers as soon as it does.
class PartUpload implements PositionalSink {
  private written = 0;
  private readonly free: Buffer[] = [];
  private part: Buffer | undefined;
  private filled = 0;
  private uploadId: string | undefined;
  private readonly parts: CompletedPart[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | undefined;
  private nextPart = 1;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly key: string,
  ) {}

  async write(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }> {
    await this.fillTo(position);
    await this.append(buffer.subarray(offset, offset + length));
    return { bytesWritten: length };
  }

  async truncate(length: number): Promise<void> {
    if (length < this.written) {
      throw new Error(`an object being uploaded cannot be cut back to ${length} bytes (${this.written} written)`);
    }
    await this.fillTo(length);
  }

  /** Uploads what is left and makes the object appear: one PutObject for a file smaller than a part. */
  async complete(): Promise<void> {
    this.throwIfFailed();
    const last = (this.part ?? Buffer.alloc(0)).subarray(0, this.filled);
    if (this.uploadId === undefined) {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key, Body: last }));
      return;
    }
    if (last.length > 0) await this.startPart(this.part!, last.length);
    await Promise.all(this.inFlight);
    this.throwIfFailed();
    const parts = [...this.parts].sort((a, b) => a.PartNumber! - b.PartNumber!);
    await this.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.bucket,
        Key: this.key,
        UploadId: this.uploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
  }

  /** Deletes the parts uploaded so far (best effort: a store that is down keeps them until removeTree). */
  async abort(): Promise<void> {
    await Promise.allSettled(this.inFlight);
    if (this.uploadId === undefined) return;
    await this.client
      .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: this.uploadId }))
      .catch(() => {});
  }

  private async fillTo(position: number): Promise<void> {
    if (position < this.written) {
      throw new Error(`an object is uploaded in order: a write at ${position} after ${this.written} bytes`);
    }
    while (this.written < position)
      await this.append(ZEROS.subarray(0, Math.min(ZEROS.length, position - this.written)));
  }

  private async append(data: Buffer): Promise<void> {
    let at = 0;
    while (at < data.length) {
      this.throwIfFailed();
      this.part ??= await this.takeBuffer();
      const n = Math.min(data.length - at, PART_BYTES - this.filled);
      data.copy(this.part, this.filled, at, at + n);
      this.filled += n;
      this.written += n;
      at += n;
      if (this.filled === PART_BYTES) {
        await this.startPart(this.part, PART_BYTES);
        this.part = undefined;
        this.filled = 0;
      }
    }
  }

  // A buffer of the pool: a new one while the pool is not full, else the first one an upload gives back.
  private async takeBuffer(): Promise<Buffer> {
    while (this.free.length === 0 && this.inFlight.size >= UPLOAD_QUEUE) {
      await Promise.race(this.inFlight);
      this.throwIfFailed();
    }
    return this.free.pop() ?? Buffer.allocUnsafe(PART_BYTES);
  }

  private async startPart(buffer: Buffer, length: number): Promise<void> {
    this.uploadId ??= (
      await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.key }))
    ).UploadId;
    if (!this.uploadId) throw new Error(`the store gave no upload id for ${this.key}`);
    const partNumber = this.nextPart++;
    const upload = this.client
      .send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: this.key,
          UploadId: this.uploadId,
          PartNumber: partNumber,
          Body: buffer.subarray(0, length),
        }),
      )
      .then(
        (answer) => {
          this.parts.push({ PartNumber: partNumber, ETag: answer.ETag });
        },
        (err: unknown) => {
          this.failure ??= err instanceof Error ? err : new Error(String(err));
        },
      )
      .finally(() => {
        this.inFlight.delete(upload);
        this.free.push(buffer);
      });
    this.inFlight.add(upload);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
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
