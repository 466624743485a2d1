// What a hostile tenant can do to its own disk on the shared volume, for the backup and restore tests.
//
// The world: tenant A (prod/a, the attacker) owns vms/a/disk.img, tenant B (prod/b, the victim) owns
// vms/b/disk.img, and a file outside every volume stands for a host secret (a ServiceAccount token).
import { execFileSync } from "node:child_process";
import { link, rm, symlink } from "node:fs/promises";
import { join } from "node:path";

export interface World {
  /** The shared volume's mount point. */
  shared: string;
  /** A file outside the shared volume and the location. */
  secret: string;
}

export interface Attack {
  name: string;
  /** Prepares vms/a/disk.img (A's own file) on the shared volume. */
  plant(world: World): Promise<void>;
  /** The message A is refused with: it names the path. */
  refusal: RegExp;
  /** The attack makes B's own disk unsafe too (a hard link has two names): B is refused as well. */
  victimRefused?: RegExp;
  /** A FIFO to release after the test, should code under test have opened it. */
  fifo?: (world: World) => string;
}

const disk = (world: World) => join(world.shared, "vms/a/disk.img");

export const DISK_ATTACKS: Attack[] = [
  {
    name: "A's disk.img replaced by a symlink with a relative target (B's disk)",
    plant: async (world) => {
      await rm(disk(world));
      await symlink("../b/disk.img", disk(world));
    },
    refusal: /vms\/a\/disk\.img is a symbolic link/,
  },
  {
    name: "A's disk.img replaced by a symlink with an absolute target (a host file)",
    plant: async (world) => {
      await rm(disk(world));
      await symlink(world.secret, disk(world));
    },
    refusal: /vms\/a\/disk\.img is a symbolic link/,
  },
  {
    name: "A's directory replaced by a symlink to B's",
    plant: async (world) => {
      await rm(join(world.shared, "vms/a"), { recursive: true });
      await symlink("b", join(world.shared, "vms/a"));
    },
    refusal: /vms\/a is a symbolic link, on the way to vms\/a\/disk\.img/,
  },
  {
    name: "A's disk.img replaced by a hard link to B's disk",
    plant: async (world) => {
      await rm(disk(world));
      await link(join(world.shared, "vms/b/disk.img"), disk(world));
    },
    refusal: /vms\/a\/disk\.img has 2 hard links/,
    victimRefused: /vms\/b\/disk\.img has 2 hard links/,
  },
  {
    name: "A's disk.img replaced by a FIFO",
    plant: async (world) => {
      await rm(disk(world));
      execFileSync("mkfifo", [disk(world)]);
    },
    refusal: /vms\/a\/disk\.img is a FIFO/,
    fifo: disk,
  },
];
