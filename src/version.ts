import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

// The nearest package.json above this file: the same from src/ (tsx) and from dist/src/ (compiled).
function packageJsonPath(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, "package.json"))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error("package.json not found");
    dir = parent;
  }
  return path.join(dir, "package.json");
}

export const VERSION = (JSON.parse(readFileSync(packageJsonPath(), "utf8")) as { version: string }).version;
