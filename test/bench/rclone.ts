// rclone, the reference the agent's S3 upload is compared with in s3-bench.ts: its remote configured by
// environment variables only (no config file holds the key pair), and its command lines.

export interface RcloneRemote {
  /** The remote's name, as in `<name>:bucket/path`: letters, digits and '_' (it becomes part of variable names). */
  name: string;
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * rclone's environment: `base` (the benchmark's) without its AWS_* variables, plus RCLONE_CONFIG_<NAME>_<OPTION>
 * for each option of an S3 remote of a store that is not AWS (provider Other), with path-style requests as
 * self-hosted stores need. The AWS SDK inside rclone reads AWS_* variables whatever the remote says (an
 * AWS_CA_BUNDLE makes it fail on a plain-http endpoint), and the remote is meant to be exactly this one.
 * `configFile` is the (empty) config file rclone is pointed at, so that it never reads or writes the user's.
 */
export function rcloneEnvironment(
  base: NodeJS.ProcessEnv,
  remote: RcloneRemote,
  configFile: string,
): NodeJS.ProcessEnv {
  if (!/^[A-Za-z0-9_]+$/.test(remote.name)) throw new Error(`rclone remote name ${JSON.stringify(remote.name)}`);
  const prefix = `RCLONE_CONFIG_${remote.name.toUpperCase()}_`;
  return {
    ...Object.fromEntries(Object.entries(base).filter(([name]) => !name.startsWith("AWS_"))),
    RCLONE_CONFIG: configFile,
    [`${prefix}TYPE`]: "s3",
    [`${prefix}PROVIDER`]: "Other",
    [`${prefix}ENDPOINT`]: remote.endpoint,
    [`${prefix}REGION`]: remote.region,
    [`${prefix}ACCESS_KEY_ID`]: remote.accessKeyId,
    [`${prefix}SECRET_ACCESS_KEY`]: remote.secretAccessKey,
    [`${prefix}FORCE_PATH_STYLE`]: "true",
  };
}

/**
 * The flags that make `rclone copy` do the agent's work: parts of `partBytes`, `partsInFlight` parts uploaded
 * at once, and one file at a time (the agent extracts a VM's files one after the other).
 */
export function comparableFlags(partBytes: number, partsInFlight: number): string[] {
  const MiB = 1024 * 1024;
  if (partBytes % MiB !== 0) throw new Error(`part size ${partBytes} is not a whole number of MiB`);
  return [
    "--s3-chunk-size",
    `${partBytes / MiB}M`,
    "--s3-upload-concurrency",
    String(partsInFlight),
    "--transfers",
    "1",
  ];
}
