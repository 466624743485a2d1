#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kubectl, etcd, kwok and helm from Go modules
# into a per-version cache directory outside the repository and prints that directory.
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod requires every staging module at v0.0.0
# and replaces it with a local path, which is ignored for a dependency. A throw-away wrapper module
# replaces each staging module by its published v0.Y.Z twin; the list is read from the module's own
# go.mod so that it follows releases. etcd's server module has replace directives too, so it gets a
# wrapper of its own (its client versions differ from the kubernetes ones).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache_root=${FEDBACKUP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fedbackup}
dest="$cache_root/controlplane/k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
bin="$dest/bin"
want=(kube-apiserver kube-controller-manager kubectl etcd kwok helm)

complete() {
  for b in "${want[@]}"; do [ -x "$bin/$b" ] || return 1; done
}
if complete; then echo "$dest"; exit 0; fi

command -v go >/dev/null || { echo "build.sh: go is needed to build the control plane" >&2; exit 1; }
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

build_kubernetes() {
  local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  local staging_version="v0.${KUBERNETES_VERSION#v1.}"
  mkdir -p "$work/kubernetes" && cd "$work/kubernetes"
  go mod init fedbackup.invalid/controlplane/kubernetes >/dev/null 2>&1
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  local go_line
  go_line=$(awk '$1=="go"{print $2; exit}' "$gomod")
  go mod edit -go="$go_line"
  local n=0
  while read -r mod; do
    go mod edit -replace="${mod}=${mod}@${staging_version}"
    n=$((n + 1))
  done < <(awk '$2=="=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod")
  log "kubernetes ${KUBERNETES_VERSION}: replacing ${n} staging modules with ${staging_version}"
  go get "k8s.io/kubernetes/cmd/kube-apiserver@${KUBERNETES_VERSION}" \
         "k8s.io/kubernetes/cmd/kube-controller-manager@${KUBERNETES_VERSION}" \
         "k8s.io/kubernetes/cmd/kubectl@${KUBERNETES_VERSION}" >&2
  local v="k8s.io/component-base/version" cv="k8s.io/client-go/pkg/version"
  local ldflags="-s -w -X $v.gitVersion=${KUBERNETES_VERSION} -X $v.gitMajor=1 -X $v.gitMinor=${minor}"
  ldflags+=" -X $cv.gitVersion=${KUBERNETES_VERSION} -X $cv.gitMajor=1 -X $cv.gitMinor=${minor}"
  for cmd in kube-apiserver kube-controller-manager kubectl; do
    [ -x "$bin/$cmd" ] && continue
    log "building $cmd"
    go build -trimpath -ldflags "$ldflags" -o "$bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
    mv "$bin/$cmd.tmp" "$bin/$cmd"
  done
}

build_etcd() {
  [ -x "$bin/etcd" ] && return 0
  mkdir -p "$work/etcd" && cd "$work/etcd"
  go mod init fedbackup.invalid/controlplane/etcd >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >&2
  log "building etcd ${ETCD_VERSION}"
  go build -trimpath -ldflags "-s -w" -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$bin/etcd.tmp" "$bin/etcd"
}

build_installable() { # name module-path version
  [ -x "$bin/$1" ] && return 0
  log "building $1 $3"
  mkdir -p "$work/gobin"
  GOBIN="$work/gobin" GOFLAGS= go install -trimpath -ldflags "-s -w" "$2@$3"
  mv "$work/gobin/$1" "$bin/$1"
}

build_etcd
build_installable kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"
build_installable helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
build_kubernetes
complete || { log "some binaries are missing in $bin"; exit 1; }
log "built in $(( $(date +%s) - started )) s"
echo "$(( $(date +%s) - started ))" > "$dest/cold-build-seconds"
echo "$dest"
