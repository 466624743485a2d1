// A real S3 server on loopback for tests and the demo: SeaweedFS's `weed mini` (master, volume server, filer
// and S3 gateway in one process), built and cached by hack/objectstore/build.sh. It checks signatures, stores
// multipart uploads, and keeps its data across a crash and a restart, which a mock would not.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CreateBucketCommand, ListBucketsCommand, type S3Client, type S3ServiceException } from "@aws-sdk/client-s3";
import { REPO_ROOT } from "./binaries.js";
import { freePort } from "./ports.js";
import { ManagedProcess } from "./processes.js";
import { DEFAULT_REGION, s3ClientFor, type S3Credentials, type S3Location } from "../../src/storage/s3-client.js";

export interface ObjectStoreOptions {
  /** Data directory (volumes, filer metadata, logs). A fresh temporary one, removed by stop(), by default. */
  dir?: string;
  /** Buckets that exist once startObjectStore returns. */
  buckets?: string[];
  /** The admin key pair the server accepts; a random one by default. */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Keep a temporary data directory after stop (for debugging). */
  keep?: boolean;
  log?: (message: string) => void;
}

/** Every port `weed mini` listens on; each is given explicitly so that weed never picks one by itself. */
export interface ObjectStorePorts {
  master: number;
  masterGrpc: number;
  volume: number;
  volumeGrpc: number;
  filer: number;
  filerGrpc: number;
  s3: number;
  s3Grpc: number;
  admin: number;
  adminGrpc: number;
}

const PORT_NAMES: Array<keyof ObjectStorePorts> = [
  "master",
  "masterGrpc",
  "volume",
  "volumeGrpc",
  "filer",
  "filerGrpc",
  "s3",
  "s3Grpc",
  "admin",
  "adminGrpc",
];

const STARTUP_TIMEOUT_MS = 60_000;

/** What weed mini prints once every service runs and the -bucket buckets were created (or failed to be). */
const READY_BANNER = "Press Ctrl+C to stop all components";

/**
 * The gRPC Unix sockets weed mini opens in /tmp whatever its flags say, one per gRPC port. weed removes
 * them on a clean exit, and a stale one when it starts on the same port; after a crash they stay.
 */
export function weedGrpcSockets(ports: ObjectStorePorts): string[] {
  return [
    ["master", ports.masterGrpc],
    ["volume", ports.volumeGrpc],
    ["filer", ports.filerGrpc],
    ["s3", ports.s3Grpc],
    ["admin", ports.adminGrpc],
  ].map(([service, port]) => `/tmp/seaweedfs-${service}-grpc-${port}.sock`);
}

/**
 * The command line of `weed mini` for one test server. An explicit port that is taken makes weed exit
 * instead of moving to the next free one (which it does for ports left at their defaults), so a clash
 * shows as an error, not as a server on a port nobody knows. WebDAV, the Iceberg and Lance catalogs, the
 * admin UI and the legacy admin port are off: the tests need S3 only (the admin server itself always runs).
 */
export function weedMiniArgs(dir: string, ports: ObjectStorePorts, buckets: string[]): string[] {
  const args = [
    // glog's files go to the data directory, not to $TMPDIR; warnings and errors also go to stderr.
    `-logdir=${path.join(dir, "logs")}`,
    "mini",
    `-dir=${path.join(dir, "data")}`,
    "-ip=127.0.0.1",
    "-ip.bind=127.0.0.1",
    "-master.telemetry=false",
    // As on AWS: a write to a bucket that does not exist fails (NoSuchBucket) instead of creating it.
    "-s3.autoCreateBucket=false",
    `-master.port=${ports.master}`,
    `-master.port.grpc=${ports.masterGrpc}`,
    `-volume.port=${ports.volume}`,
    `-volume.port.grpc=${ports.volumeGrpc}`,
    `-filer.port=${ports.filer}`,
    `-filer.port.grpc=${ports.filerGrpc}`,
    // Unix sockets default to /tmp/seaweedfs-<service>-<port>.sock; keep them with the server's files.
    `-filer.localSocket=${path.join(dir, "filer.sock")}`,
    `-s3.port=${ports.s3}`,
    `-s3.port.grpc=${ports.s3Grpc}`,
    `-s3.localSocket=${path.join(dir, "s3.sock")}`,
    "-s3.port.iceberg=0",
    "-s3.port.lance=0",
    "-webdav=false",
    "-admin.ui=false",
    `-admin.port=${ports.admin}`,
    `-admin.port.grpc=${ports.adminGrpc}`,
    "-admin.port.legacy=0",
  ];
  if (buckets.length > 0) args.push(`-bucket=${buckets.join(",")}`);
  return args;
}

/**
 * The environment of `weed mini`: the key pair it accepts (as its admin identity) and nothing of the
 * caller's WEED_* or S3_BUCKET variables, which weed reads as flags. HOME and TMPDIR point into the data
 * directory so that no configuration file of the user's is read and no file is left elsewhere.
 */
export function weedEnvironment(dir: string, credentials: S3Credentials): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: dir,
    TMPDIR: path.join(dir, "tmp"),
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
  };
}

let weedPath: string | undefined;
/** The cached `weed` binary; hack/objectstore/build.sh builds it on first use and prints its directory. */
export function weedBinary(): string {
  if (!weedPath) {
    const started = Date.now();
    const dir = execFileSync("bash", [path.join(REPO_ROOT, "hack/objectstore/build.sh")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    }).trim();
    const seconds = (Date.now() - started) / 1000;
    if (seconds > 5) process.stderr.write(`SeaweedFS built in ${seconds.toFixed(0)} s into ${dir}\n`);
    weedPath = path.join(dir, "bin", "weed");
  }
  return weedPath;
}

function errorName(err: unknown): string {
  return (err as Partial<S3ServiceException>)?.name ?? "";
}

export class ObjectStore {
  readonly endpoint: string;
  readonly region = DEFAULT_REGION;
  private process: ManagedProcess | undefined;
  private stopped = false;

  private constructor(
    readonly dir: string,
    readonly ports: ObjectStorePorts,
    readonly accessKeyId: string,
    readonly secretAccessKey: string,
    private readonly buckets: string[],
    private readonly options: ObjectStoreOptions,
  ) {
    this.endpoint = `http://127.0.0.1:${ports.s3}`;
  }

  static async start(options: ObjectStoreOptions = {}): Promise<ObjectStore> {
    const dir = options.dir ?? mkdtempSync(path.join(os.tmpdir(), "fedbackup-s3-"));
    const ports = await allocatePorts();
    const store = new ObjectStore(
      dir,
      ports,
      options.accessKeyId ?? `fedbackup-${randomBytes(6).toString("hex")}`,
      options.secretAccessKey ?? randomBytes(24).toString("base64url"),
      options.buckets ?? [],
      options,
    );
    try {
      await store.start();
    } catch (err) {
      await store.stop();
      throw err;
    }
    return store;
  }

  get credentials(): S3Credentials {
    return { accessKeyId: this.accessKeyId, secretAccessKey: this.secretAccessKey };
  }

  /** A location in `bucket` on this server, as a BackupLocation spells it (path-style, as weed needs). */
  location(bucket: string, prefix?: string): S3Location {
    return {
      endpoint: this.endpoint,
      bucket,
      ...(prefix ? { prefix } : {}),
      region: this.region,
      forcePathStyle: true,
      credentialsSecretRef: { name: "object-store-credentials" },
    };
  }

  /** The product's client for this server, with this server's key pair unless others are given. */
  client(credentials: S3Credentials = this.credentials): S3Client {
    return s3ClientFor(this.location(""), credentials, { maxAttempts: 1 });
  }

  get running(): boolean {
    return this.process?.running ?? false;
  }

  /**
   * Starts the server, on the same ports and data directory as before when it ran already (a restart after
   * kill()), and waits until it answers a signed request and every bucket asked for exists.
   */
  async start(): Promise<void> {
    if (this.stopped) throw new Error("the object store was stopped; start a new one");
    if (this.running) return;
    const log = this.options.log ?? (() => {});
    for (const sub of ["data", "logs", "tmp"]) mkdirSync(path.join(this.dir, sub), { recursive: true });
    const t0 = Date.now();
    const logFile = path.join(this.dir, "weed.log");
    const logOffset = fileSize(logFile);
    const proc = ManagedProcess.start(
      "weed",
      weedBinary(),
      weedMiniArgs(this.dir, this.ports, this.buckets),
      logFile,
      weedEnvironment(this.dir, this.credentials),
    );
    this.process = proc;
    const client = this.client();
    try {
      const deadline = Date.now() + STARTUP_TIMEOUT_MS;
      let lastError = "";
      for (;;) {
        if (!proc.running) throw new Error(`weed mini exited during startup:\n${proc.tail()}`);
        // Read before listing: once the banner is out weed creates no more buckets (an invalid name, say,
        // is only logged), so a bucket missing from a later list will not come.
        const bannerSeen = readFrom(logFile, logOffset).includes(READY_BANNER);
        let missing: string[] | undefined;
        try {
          const listed = await client.send(new ListBucketsCommand({}));
          const names = new Set((listed.Buckets ?? []).map((b) => b.Name));
          missing = this.buckets.filter((b) => !names.has(b));
          lastError = `buckets not there yet: ${missing.join(", ")}`;
        } catch (err) {
          lastError = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        }
        if (missing?.length === 0) break;
        if (missing && bannerSeen) {
          throw new Error(`weed mini did not create the buckets ${missing.join(", ")}:\n${proc.tail()}`);
        }
        if (Date.now() > deadline) {
          throw new Error(
            `S3 at ${this.endpoint} not ready after ${STARTUP_TIMEOUT_MS} ms (${lastError}):\n${proc.tail()}`,
          );
        }
        await sleep(100);
      }
    } catch (err) {
      await proc.stop();
      throw err;
    } finally {
      client.destroy();
    }
    log(`SeaweedFS S3 ready at ${this.endpoint} after ${Date.now() - t0} ms (data in ${this.dir})`);
  }

  /** SIGKILL, as a crash: nothing is flushed or shut down. start() brings it back on the same data. */
  async kill(): Promise<void> {
    const proc = this.process;
    if (!proc?.running) return;
    proc.child.kill("SIGKILL");
    await proc.stop();
    this.removeGrpcSockets();
  }

  private removeGrpcSockets(): void {
    for (const socket of weedGrpcSockets(this.ports)) rmSync(socket, { force: true });
  }

  /** Creates a bucket; one that this server's key pair owns already is fine. */
  async createBucket(name: string): Promise<void> {
    const client = this.client();
    try {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    } catch (err) {
      if (errorName(err) !== "BucketAlreadyOwnedByYou") throw err;
    } finally {
      client.destroy();
    }
  }

  /** Stops the server for good and removes a temporary data directory (unless kept). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.process?.stop();
    this.removeGrpcSockets();
    if (!this.options.keep && !this.options.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function readFrom(file: string, offset: number): string {
  try {
    return readFileSync(file).subarray(offset).toString("utf8");
  } catch {
    return "";
  }
}

async function allocatePorts(): Promise<ObjectStorePorts> {
  for (;;) {
    const numbers = await Promise.all(PORT_NAMES.map(() => freePort()));
    // Ports asked for at the same moment are distinct, but a port freed in between could come back twice.
    if (new Set(numbers).size !== numbers.length) continue;
    return Object.fromEntries(PORT_NAMES.map((name, i) => [name, numbers[i]!])) as unknown as ObjectStorePorts;
  }
}

/** Starts a SeaweedFS S3 server (see ObjectStore); stop() it when done. */
export function startObjectStore(options: ObjectStoreOptions = {}): Promise<ObjectStore> {
  return ObjectStore.start(options);
}
