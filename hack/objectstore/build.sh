#!/usr/bin/env bash
# Builds SeaweedFS's `weed` (a real S3 server for tests and the demo) from the Go module proxy
# into a per-version cache directory outside the repository and prints that directory.
#
# seaweedfs cannot be `go install`ed: its go.mod replaces github.com/tyler-smith/go-bip39 by
# github.com/cosmos/go-bip39, and go install refuses a module with replace directives. A
# throw-away wrapper module repeats the module's own replace directives (read from its go.mod so
# that they follow releases) and builds the command from there.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache_root=${FEDBACKUP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fedbackup}
dest="$cache_root/objectstore/seaweedfs-${SEAWEEDFS_VERSION}"
bin="$dest/bin"

complete() { [ -x "$bin/weed" ]; }
if complete; then echo "$dest"; exit 0; fi

command -v go >/dev/null || { echo "build.sh: go is needed to build the object store" >&2; exit 1; }
mkdir -p "$bin"
# One build at a time per cache directory, so two runs on one machine do not race.
exec 9>"$dest/.build.lock"
flock 9
if complete; then echo "$dest"; exit 0; fi

work=$(mktemp -d "$dest/work.XXXXXX")
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off
log() { echo "build.sh: $*" >&2; }
started=$(date +%s)

cd "$work"
go mod init fedbackup.invalid/objectstore/seaweedfs >/dev/null 2>&1
gomod=$(go mod download -json "${SEAWEEDFS_MODULE}@${SEAWEEDFS_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
go mod edit -go="$(awk '$1=="go"{print $2; exit}' "$gomod")"
# Single-line replace directives that point at another module version (not a local path).
n=0
while read -r from to version; do
  go mod edit -replace="${from}=${to}@${version}"
  n=$((n + 1))
done < <(awk '
  $1=="replace" && $2=="(" {block=1; next}
  block && $1==")" {block=0; next}
  block && $2=="=>" && $3 !~ /^\./ && NF==4 {print $1, $3, $4}
  $1=="replace" && $3=="=>" && $4 !~ /^\./ && NF==5 {print $2, $4, $5}
' "$gomod")
log "seaweedfs ${SEAWEEDFS_VERSION}: repeating ${n} replace directives"
go get "${SEAWEEDFS_MODULE}/weed@${SEAWEEDFS_VERSION}" >&2
log "building weed"
go build -trimpath -ldflags "-s -w" -o "$bin/weed.tmp" "${SEAWEEDFS_MODULE}/weed"
mv "$bin/weed.tmp" "$bin/weed"
complete || { log "weed is missing in $bin"; exit 1; }
log "built in $(( $(date +%s) - started )) s"
echo "$(( $(date +%s) - started ))" > "$dest/cold-build-seconds"
echo "$dest"
