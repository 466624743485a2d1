import { readFileSync, writeFileSync } from "node:fs";
import * as yaml from "js-yaml";

const b64 = (file: string): string => readFileSync(file).toString("base64");

export interface KubeconfigUser {
  clientCert?: string;
  clientKey?: string;
  token?: string;
}

export function kubeconfigYaml(
  server: string,
  caCertFile: string,
  user: KubeconfigUser,
  name = "fedbackup-local",
): string {
  const userEntry: Record<string, string> = {};
  if (user.clientCert && user.clientKey) {
    userEntry["client-certificate-data"] = b64(user.clientCert);
    userEntry["client-key-data"] = b64(user.clientKey);
  }
  if (user.token) userEntry.token = user.token;
  return yaml.dump({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name, cluster: { server, "certificate-authority-data": b64(caCertFile) } }],
    users: [{ name, user: userEntry }],
    contexts: [{ name, context: { cluster: name, user: name, namespace: "default" } }],
    "current-context": name,
  });
}

export function writeKubeconfig(file: string, server: string, caCertFile: string, user: KubeconfigUser): void {
  writeFileSync(file, kubeconfigYaml(server, caCertFile, user), { mode: 0o600 });
}
