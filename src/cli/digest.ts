// `fedbackup digest`: where every VM is, in what state, and when it was last backed up or restored.
// Reads the cluster with one LIST per resource type (in parallel), builds the digest with the pure
// src/digest/ library, filters it and prints it as a table, JSON or YAML.
import * as yaml from "js-yaml";
import type { NodeObject, VirtualMachine, VirtualMachineInstance } from "../api/kubevirt.js";
import { LABEL_MANAGED_BY } from "../api/labels.js";
import type { FederatedBackup, NodeSnapshot, WorkloadRestore } from "../api/v1alpha1/index.js";
import {
  buildDigest,
  filterDigest,
  parseDiskKinds,
  parseLabelSelector,
  parseWhen,
  renderDeletedTable,
  renderTable,
  type DigestClaim,
  type DigestCriteria,
  type DigestInput,
  type DigestRow,
} from "../digest/index.js";
import { KubeClient } from "../k8s/client.js";
import { ApiError } from "../k8s/errors.js";
import { Resources, type ResourceType } from "../k8s/resources.js";
import type { KubeObject } from "../k8s/types.js";
import { errorLine, integerFlag, parseFlags, usageErrorLine, UsageError } from "./flags.js";

export const digestUsage = `Usage: fedbackup digest [flags]

Where every VM (VirtualMachineInstance) is, in what state, and when it was last backed up or restored.
A VM without a VMI that was backed up is listed with phase Missing while its VirtualMachine exists (it is
stopped). VMs that exist only in backups (neither a VirtualMachine nor a VMI) are left out: --deleted
lists them, and only them. Every filter given must hold.

Flags:
  --kubeconfig PATH          kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)
      --context NAME         the kubeconfig context to use (default: its current context)
  -n, --namespace NS         only VMs in this namespace (default: the context's namespace, else "default";
                             in a pod without a kubeconfig, the pod's namespace)
  -A, --all-namespaces       VMs in every namespace (wins over --namespace)
  -l, --selector SELECTOR    label selector on the VMI's labels: a=b,c!=d,e,!f (also a in (x,y), a notin (x,y))
      --deleted              only VMs that exist only in backups (phase Deleted), with their last capture
                             and whether it carries the VM's definition (needed to re-create it). The
                             other filters apply as to any VM: a deleted VM has no labels (so a=b keeps
                             none, !a all), runs on no node (--node keeps none), has no node failures
                             (--min-node-failures 1 keeps none); its disks are those its capture recorded
      --node NODE            only VMs running on this node
      --phase PHASE          only VMs in this phase (Running, Pending, Succeeded, Failed, Missing, ...;
                             Deleted with --deleted; case-insensitive, several separated by commas)
      --backed-up-before T   last backed up before T (an age such as 30m, 2h, 7d, 1h30m, or an ISO timestamp)
      --backed-up-since T    last backed up at or after T
      --restored-since T     last restored at or after T
      --never-backed-up      only VMs without any capture
      --min-node-failures N  only VMs whose node has at least N failed backup steps
      --disks KINDS          only VMs with a disk of one of these kinds: hostDisk (a file on the shared
                             volume), claim (a PersistentVolumeClaim or DataVolume), dataVolume, Filesystem
                             or Block (a claim of that volume mode); case-insensitive, several separated
                             by commas
  -o, --output FORMAT        table (default), json or yaml
  -h, --help                 print this help

Table columns: DISKS the VM's data disks (hostDisk, claim or dataVolume with its volume mode, "2× " when
repeated; a Missing VM's as its last capture recorded them, its shared-volume files as "file"),
LAST BACKUP and LAST RESTORE are ages ("2h ago"; "never" and "-" when there is none),
BACKUP the FederatedBackup of the last capture (namespace/name when it lives in another namespace),
FAILURES the failed backup steps on the VM's current node.
With --deleted: NAMESPACE, NAME, DISKS, LAST BACKUP, BACKUP, CAPTURED ON (the node of the last capture),
DEFINITION (yes when the last capture carries the VM's definition, so a restore can re-create it; no when
it does not say so), LAST RESTORE. --deleted needs the right to list VirtualMachines: without it a deleted
VM cannot be told from a stopped one (both are Missing).

Exit codes: 0 (also when no VM matches), 1 when the cluster cannot be read, 2 on bad flags.
`;

const OUTPUTS = ["table", "json", "yaml"] as const;
type Output = (typeof OUTPUTS)[number];

interface DigestArgs {
  kubeconfig?: string;
  context?: string;
  /** The namespace asked for with --namespace (not with --all-namespaces). */
  namespace?: string;
  /** --all-namespaces; without it and without --namespace, the kubeconfig context's namespace. */
  allNamespaces: boolean;
  criteria: DigestCriteria;
  output: Output;
  help: boolean;
}

/** Parses and checks the flags before anything talks to the cluster; throws UsageError. */
export function parseDigestArgs(argv: string[], now: number): DigestArgs {
  const { values } = parseFlags({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      kubeconfig: { type: "string" },
      context: { type: "string" },
      namespace: { type: "string", short: "n" },
      "all-namespaces": { type: "boolean", short: "A" },
      selector: { type: "string", short: "l" },
      deleted: { type: "boolean" },
      node: { type: "string" },
      phase: { type: "string" },
      "backed-up-before": { type: "string" },
      "backed-up-since": { type: "string" },
      "restored-since": { type: "string" },
      "never-backed-up": { type: "boolean" },
      "min-node-failures": { type: "string" },
      disks: { type: "string" },
      output: { type: "string", short: "o", default: "table" },
      help: { type: "boolean", short: "h" },
    },
  });
  const output = values.output as Output;
  if (!OUTPUTS.includes(output))
    throw new UsageError(`unknown output format "${values.output}": use table, json or yaml`);
  const when = (flag: string, text: string | undefined): Date | undefined => {
    if (text === undefined) return undefined;
    try {
      return parseWhen(text, now);
    } catch (err) {
      throw new UsageError(`--${flag}: ${(err as Error).message}`);
    }
  };
  const namespace = values["all-namespaces"] ? undefined : values.namespace;
  const criteria: DigestCriteria = {};
  if (namespace !== undefined) criteria.namespace = namespace;
  if (values.selector !== undefined) {
    try {
      parseLabelSelector(values.selector);
    } catch (err) {
      throw new UsageError(`--selector: ${(err as Error).message}`);
    }
    criteria.selector = values.selector;
  }
  if (values.deleted) criteria.deleted = true;
  if (values.node !== undefined) criteria.node = values.node;
  if (values.phase !== undefined) criteria.phase = values.phase;
  const before = when("backed-up-before", values["backed-up-before"]);
  if (before) criteria.backedUpBefore = before;
  const since = when("backed-up-since", values["backed-up-since"]);
  if (since) criteria.backedUpSince = since;
  const restored = when("restored-since", values["restored-since"]);
  if (restored) criteria.restoredSince = restored;
  if (values["never-backed-up"]) criteria.neverBackedUp = true;
  const min = values["min-node-failures"];
  if (min !== undefined) criteria.minNodeFailures = integerFlag("min-node-failures", min);
  if (values.disks !== undefined) {
    try {
      criteria.disks = parseDiskKinds(values.disks);
    } catch (err) {
      throw new UsageError(`--disks: ${(err as Error).message}`);
    }
  }
  return {
    ...(values.kubeconfig === undefined ? {} : { kubeconfig: values.kubeconfig }),
    ...(values.context === undefined ? {} : { context: values.context }),
    ...(namespace === undefined ? {} : { namespace }),
    allNamespaces: values["all-namespaces"] ?? false,
    criteria,
    output,
    help: values.help ?? false,
  };
}

const isStatus = (err: unknown, status: number): boolean => err instanceof ApiError && err.status === status;

/**
 * Objects of a fedbackup type across the cluster. A user who may read only one namespace (403 on the
 * cluster-wide LIST) still gets that namespace's objects when one was asked for.
 */
async function listWide<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  namespace: string | undefined,
  labelSelector?: string,
): Promise<T[]> {
  const opts = labelSelector ? { labelSelector } : {};
  try {
    return (await client.list<T>(type, opts)).items;
  } catch (err) {
    if (!namespace || !isStatus(err, 403)) throw err;
    return (await client.list<T>(type, { ...opts, namespace })).items;
  }
}

/** Everything the digest needs, read with one LIST per type, all at once. */
export async function readDigestInput(client: KubeClient, namespace: string | undefined): Promise<DigestInput> {
  const [vmis, vms, backups, steps, restores, nodes, claims] = await Promise.all([
    client
      .list<VirtualMachineInstance & KubeObject>(Resources.VirtualMachineInstance, {
        ...(namespace ? { namespace } : {}),
        limit: 5000,
      })
      .then((l) => l.items),
    // They tell a deleted VM from a stopped one; without the right to list them, neither is told (Missing).
    client
      .list<VirtualMachine>(Resources.VirtualMachine, {
        ...(namespace ? { namespace } : {}),
        limit: 5000,
      })
      .then(
        (l) => l.items,
        (err: unknown) => {
          if (isStatus(err, 403)) return undefined;
          throw err;
        },
      ),
    listWide<FederatedBackup & KubeObject>(client, Resources.FederatedBackup, namespace),
    listWide<NodeSnapshot & KubeObject>(client, Resources.NodeSnapshot, namespace, `${LABEL_MANAGED_BY}=fedbackup`),
    // Older installations may not serve WorkloadRestores yet: no restores then.
    listWide<WorkloadRestore & KubeObject>(client, Resources.WorkloadRestore, namespace).catch((err: unknown) => {
      if (isStatus(err, 404)) return [];
      throw err;
    }),
    // Node readiness is a nicety: without the right to list Nodes the digest goes on without it.
    client.list<NodeObject & KubeObject>(Resources.Node).then(
      (l) => l.items,
      (err: unknown) => {
        if (isStatus(err, 403)) return undefined;
        throw err;
      },
    ),
    // The claims give their volume mode; without the right to list them, modes come from the last captures.
    client
      .list<DigestClaim & KubeObject>(Resources.PersistentVolumeClaim, {
        ...(namespace ? { namespace } : {}),
        limit: 5000,
      })
      .then(
        (l) => l.items,
        (err: unknown) => {
          if (isStatus(err, 403)) return undefined;
          throw err;
        },
      ),
  ]);
  return {
    vmis,
    ...(vms ? { vms } : {}),
    backups,
    steps,
    restores,
    ...(nodes ? { nodes } : {}),
    ...(claims ? { claims } : {}),
  };
}

/** The rows as `output` says; a table of deleted VMs (`deleted`) has their own columns. */
export function renderDigest(rows: readonly DigestRow[], output: Output, now: number, deleted = false): string {
  switch (output) {
    case "json":
      return `${JSON.stringify(rows, null, 2)}\n`;
    case "yaml":
      return yaml.dump(rows, { noRefs: true, lineWidth: -1 });
    case "table":
      return deleted ? renderDeletedTable(rows, now) : renderTable(rows, now);
  }
}

/** What stderr says when no row matches a table. */
export function nothingFoundLine(namespace: string | undefined, deleted: boolean): string {
  const what = deleted ? "No deleted VMs found" : "No VMs found";
  return namespace ? `${what} in namespace ${namespace}.\n` : `${what}.\n`;
}

/**
 * Runs `fedbackup digest` with `argv` (the arguments after "digest"), printing the result with `out` and
 * errors with `err`. Resolves to the exit code: 0, 1 on a failure to read the cluster, 2 on bad flags.
 */
export async function runDigest(
  argv: string[],
  out: (s: string) => void = (s) => void process.stdout.write(s),
  err: (s: string) => void = (s) => void process.stderr.write(s),
): Promise<number> {
  let args: DigestArgs;
  try {
    args = parseDigestArgs(argv, Date.now());
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(usageErrorLine("digest", e.message));
    return 2;
  }
  if (args.help) {
    out(digestUsage);
    return 0;
  }
  let client: KubeClient | undefined;
  try {
    // kubectl's order: an explicit or the user's kubeconfig before the credentials of a pod it runs in.
    client = KubeClient.load(args.kubeconfig, undefined, {
      ...(args.context === undefined ? {} : { context: args.context }),
      preferKubeconfig: true,
    });
    // As kubectl: the context's namespace unless -n or -A says otherwise.
    const namespace = args.allNamespaces ? undefined : (args.namespace ?? (client.namespaceFromConfig || "default"));
    const input = await readDigestInput(client, namespace);
    const deleted = args.criteria.deleted === true;
    if (deleted && !input.vms) {
      const where = namespace ? `in namespace ${namespace}` : "in all namespaces";
      throw new Error(
        `--deleted needs the right to list VirtualMachines (kubevirt.io virtualmachines) ${where}: without it a deleted VM cannot be told from a stopped one`,
      );
    }
    const now = Date.now();
    const criteria = namespace === undefined ? args.criteria : { ...args.criteria, namespace };
    const rows = filterDigest(buildDigest(input, now), criteria);
    if (rows.length === 0 && args.output === "table") {
      err(nothingFoundLine(namespace, deleted));
      return 0;
    }
    out(renderDigest(rows, args.output, now, deleted));
    return 0;
  } catch (e) {
    err(errorLine("digest", e));
    return 1;
  } finally {
    client?.close();
  }
}
