import assert from "node:assert/strict";
import { storageLeaseName, volumeLeaseName } from "../../../src/k8s/volume-lease.js";

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

describe("k8s/volume-lease storageLeaseName", () => {
  it("keeps the shared volume's Lease name for a volume key, so older runs on the volume still exclude newer ones", () => {
    assert.equal(storageLeaseName("volume/nfs:server:/exports/vm"), volumeLeaseName("nfs:server:/exports/vm"));
    assert.match(
      storageLeaseName("volume/nfs:server:/exports/vm"),
      /^fedbackup-volume-nfs-server-exports-vm-[0-9a-f]{8}$/,
    );
  });

  it("gives every other kind of key a name of its own: a StorageClass and a group of one name stay apart", () => {
    const names = [
      "storageclass/fast",
      "group/fast",
      "claim/vms/fast",
      "storageclass/Fast_SSD",
      "storageclass/fast-ssd",
      "volume/fast",
    ].map(storageLeaseName);
    assert.equal(new Set(names).size, names.length);
    assert.match(names[0]!, /^fedbackup-storage-storageclass-fast-[0-9a-f]{8}$/);
  });

  it("is a bounded DNS subdomain whatever the key", () => {
    for (const key of ["storageclass/" + "x".repeat(400), "claim/ns/" + "Ab_".repeat(200), "group/-a-", "claim//"]) {
      const name = storageLeaseName(key);
      assert.ok(name.length <= 253, `${name.length} characters`);
      assert.match(name, DNS_SUBDOMAIN);
    }
  });
});
