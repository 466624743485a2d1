#!/usr/bin/env bash
# Builds Kopia (the backup tool, a reference of the agent's data-path benchmark) from the Go module proxy
# into a per-version cache directory outside the repository and prints that directory; the binary is
# <dir>/bin/kopia.
#
# Not `go install kopia@version`: go install also asks the proxy for the module's version list (to report a
# deprecation), and a proxy that serves the version but not the list makes it fail. A throw-away wrapper
# module that requires the pinned version builds the same command from the same go.sum-checked modules
# (kopia's go.mod has no replace directives to repeat).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache_root=${FEDBACKUP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fedbackup}
dest="$cache_root/kopia/kopia-${KOPIA_VERSION}"
bin="$dest/bin"

complete() { [ -x "$bin/kopia" ]; }
if complete; then echo "$dest"; exit 0; fi

command -v go >/dev/null || { echo "build.sh: go is needed to build kopia" >&2; exit 1; }
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
go mod init fedbackup.invalid/kopia >/dev/null 2>&1
gomod=$(go mod download -json "${KOPIA_MODULE}@${KOPIA_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
go mod edit -go="$(awk '$1=="go"{print $2; exit}' "$gomod")" -require="${KOPIA_MODULE}@${KOPIA_VERSION}"
log "building kopia ${KOPIA_VERSION}"
go build -trimpath -ldflags "-s -w" -o "$bin/kopia.tmp" "${KOPIA_MODULE}" >&2
mv "$bin/kopia.tmp" "$bin/kopia"
complete || { log "kopia is missing in $bin"; exit 1; }
log "built in $(( $(date +%s) - started )) s"
echo "$(( $(date +%s) - started ))" > "$dest/cold-build-seconds"
echo "$dest"
