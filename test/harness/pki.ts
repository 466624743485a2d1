// Certificates for a throw-away control plane, made with the openssl CLI (Node's crypto cannot sign
// X.509 certificates). EC P-256 keys keep this to a few tens of milliseconds.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  frontProxyCaCert: string;
  frontProxyClientCert: string;
  frontProxyClientKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

function newKey(dir: string, name: string): string {
  openssl(dir, ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}.key`]);
  return path.join(dir, `${name}.key`);
}

function newCa(dir: string, name: string, cn: string): { cert: string; key: string } {
  const key = newKey(dir, name);
  openssl(dir, [
    "req",
    "-x509",
    "-new",
    "-key",
    key,
    "-sha256",
    "-days",
    "30",
    "-subj",
    `/CN=${cn}`,
    "-out",
    `${name}.crt`,
  ]);
  return { cert: path.join(dir, `${name}.crt`), key };
}

function signed(
  dir: string,
  name: string,
  subject: string,
  ca: { cert: string; key: string },
  extensions: string,
): { cert: string; key: string } {
  const key = newKey(dir, name);
  openssl(dir, ["req", "-new", "-key", key, "-subj", subject, "-out", `${name}.csr`]);
  writeFileSync(path.join(dir, `${name}.ext`), extensions);
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    "-CAcreateserial",
    "-sha256",
    "-days",
    "30",
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.crt`,
  ]);
  return { cert: path.join(dir, `${name}.crt`), key };
}

/** A serving certificate signed by the control plane's CA, for test servers behind the API server. */
export function issueServingCert(pki: Pki, name: string, dnsNames: string[]): { cert: string; key: string } {
  const sans = ["IP:127.0.0.1", ...dnsNames.map((d) => `DNS:${d}`)].join(",");
  return signed(
    pki.dir,
    name,
    `/CN=${dnsNames[0] ?? name}`,
    { cert: pki.caCert, key: pki.caKey },
    `subjectAltName=${sans}\nextendedKeyUsage=serverAuth\n`,
  );
}

export function createPki(dir: string): Pki {
  const ca = newCa(dir, "ca", "fedbackup-local-ca");
  const serving = signed(
    dir,
    "serving",
    "/CN=kube-apiserver",
    ca,
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n",
  );
  const admin = signed(dir, "admin", "/O=system:masters/CN=fedbackup-admin", ca, "extendedKeyUsage=clientAuth\n");
  // The aggregation layer authenticates itself to extension API servers with this client cert.
  const frontProxyCa = newCa(dir, "front-proxy-ca", "fedbackup-front-proxy-ca");
  const frontProxyClient = signed(
    dir,
    "front-proxy-client",
    "/CN=front-proxy-client",
    frontProxyCa,
    "extendedKeyUsage=clientAuth\n",
  );
  const saKey = newKey(dir, "service-account");
  openssl(dir, ["ec", "-in", saKey, "-pubout", "-out", "service-account.pub"]);
  return {
    dir,
    caCert: ca.cert,
    caKey: ca.key,
    servingCert: serving.cert,
    servingKey: serving.key,
    adminCert: admin.cert,
    adminKey: admin.key,
    frontProxyCaCert: frontProxyCa.cert,
    frontProxyClientCert: frontProxyClient.cert,
    frontProxyClientKey: frontProxyClient.key,
    serviceAccountKey: saKey,
    serviceAccountPub: path.join(dir, "service-account.pub"),
  };
}
