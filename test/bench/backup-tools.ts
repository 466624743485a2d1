// restic and Kopia, the backup tools the agent's extraction is compared with in agent-goals.ts: each backs up
// the benchmark's files into a new local repository per run. Their environments and command lines are built
// here; the repository (and the tool's config, cache and logs) live in one directory that the caller deletes
// between runs, so that no run deduplicates against the data of the one before.
import { join } from "node:path";

/** A reference backup tool: how to make its repository (not timed) and back a directory up into it (timed). */
export interface BackupTool {
  /** The row's label. */
  label: string;
  /** What the tool does that the agent does not (the agent copies each file whole, with its sha256). */
  does: string;
  /** Commands that create an empty repository in `work` (the tool's version in `versionArgs`). */
  setup(work: string): Command[];
  /** The command that backs `source` (a directory) up into the repository in `work`. */
  backup(work: string, source: string): Command;
  versionArgs: string[];
  /** Environment for every command: the benchmark's, without the tool's own variables, plus the password. */
  env(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
}

export interface Command {
  command: string;
  args: string[];
}

/** The repositories' password (a benchmark's throw-away repositories; it protects nothing). */
const PASSWORD = "fedbackup-bench";

/** `base` without the variables whose names start with one of `prefixes`, plus `extra`. */
export function environmentWithout(
  base: NodeJS.ProcessEnv,
  prefixes: readonly string[],
  extra: Record<string, string>,
): NodeJS.ProcessEnv {
  return {
    ...Object.fromEntries(Object.entries(base).filter(([name]) => !prefixes.some((p) => name.startsWith(p)))),
    ...extra,
  };
}

/**
 * restic (Debian's package) with its defaults: content-defined chunks, deduplicated; repository format 2,
 * whose default compression (auto: zstd) restic 0.14 applies to every chunk; everything encrypted.
 */
export function restic(binary = "restic"): BackupTool {
  const repo = (work: string) => ["--repo", join(work, "restic-repo"), "--cache-dir", join(work, "restic-cache")];
  return {
    label: "restic backup",
    does:
      "splits files into content-defined chunks and deduplicates them (across files and snapshots), " +
      "compresses them (zstd, auto) and encrypts them (AES-256-CTR + Poly1305)",
    setup: (work) => [{ command: binary, args: ["init", "--quiet", ...repo(work)] }],
    backup: (work, source) => ({
      command: binary,
      args: ["backup", "--quiet", "--host", "bench", ...repo(work), source],
    }),
    versionArgs: ["version"],
    // RESTIC_* of the caller (a repository, a password file) must not steer the benchmark's repository.
    env: (base) => environmentWithout(base, ["RESTIC_"], { RESTIC_PASSWORD: PASSWORD }),
  };
}

/**
 * Kopia with its defaults: content-defined chunks (DYNAMIC-4M-BUZHASH), deduplicated, hashed with
 * BLAKE2B-256-128 and encrypted (AES256-GCM-HMAC-SHA256); compression is off unless a policy sets it. Its
 * automatic maintenance is disabled when the repository is made: a new repository's first snapshot would
 * otherwise run a full maintenance pass, work that is not the backup and that Kopia schedules apart from it.
 * No update check (it would reach GitHub), no credentials persisted, config, cache and logs inside `work`.
 */
export function kopia(binary: string): BackupTool {
  const global = (work: string) => [
    "--config-file",
    join(work, "kopia", "repository.config"),
    "--log-dir",
    join(work, "kopia", "logs"),
  ];
  return {
    label: "kopia snapshot create",
    does:
      "splits files into content-defined chunks and deduplicates them (across files and snapshots), " +
      "encrypts them (AES256-GCM); compression only if a policy sets it (off by default)",
    setup: (work) => [
      {
        command: binary,
        args: [
          ...global(work),
          "repository",
          "create",
          "filesystem",
          "--path",
          join(work, "kopia-repo"),
          "--cache-directory",
          join(work, "kopia", "cache"),
          "--no-check-for-updates",
          "--no-persist-credentials",
        ],
      },
      {
        command: binary,
        args: [...global(work), "maintenance", "set", "--enable-quick=false", "--enable-full=false"],
      },
    ],
    backup: (work, source) => ({
      command: binary,
      args: [...global(work), "snapshot", "create", "--no-progress", source],
    }),
    versionArgs: ["--version"],
    env: (base) => environmentWithout(base, ["KOPIA_"], { KOPIA_PASSWORD: PASSWORD }),
  };
}
