#!/usr/bin/env bash
# Prints a directory holding a `node` binary new enough for this project (>= 22.19, see package.json
# engines). Uses the machine's Node when it qualifies; otherwise installs Node 24 LTS from the npm
# registry's `node` package into a cache directory outside the repository, once per machine.
set -euo pipefail
need_major=22 need_minor=19
ok() { # path-to-node
  local v
  v=$("$1" -p 'process.versions.node' 2>/dev/null) || return 1
  local major=${v%%.*} rest=${v#*.}
  local minor=${rest%%.*}
  [ "$major" -gt "$need_major" ] || { [ "$major" -eq "$need_major" ] && [ "$minor" -ge "$need_minor" ]; }
}
if system_node=$(command -v node) && ok "$system_node"; then
  dirname "$system_node"; exit 0
fi
cache_root=${FEDBACKUP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fedbackup}
dir="$cache_root/node24"
bin="$dir/node_modules/node/bin"
if ! { [ -x "$bin/node" ] && ok "$bin/node"; }; then
  mkdir -p "$dir"
  exec 9>"$dir/.lock"; flock 9
  if ! { [ -x "$bin/node" ] && ok "$bin/node"; }; then
    echo "ensure-node.sh: installing Node 24 from the npm registry into $dir" >&2
    npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error node@24 >&2
    ok "$bin/node" || { echo "ensure-node.sh: the installed node does not run" >&2; exit 1; }
  fi
fi
echo "$bin"
