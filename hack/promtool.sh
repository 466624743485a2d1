#!/usr/bin/env bash
# Prints the path of a promtool for the PrometheusRule tests, or nothing (they are then skipped, saying so):
# $PROMTOOL, one on PATH, or the one of Debian's `prometheus` package, extracted once per machine into a cache
# directory outside the repository. The package is downloaded, not installed: installing it would also set up
# a Prometheus server, its user and its service.
set -euo pipefail
if [ -n "${PROMTOOL:-}" ]; then echo "$PROMTOOL"; exit 0; fi
if found=$(command -v promtool); then echo "$found"; exit 0; fi
cache_root=${FEDBACKUP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fedbackup}
dir="$cache_root/promtool"
if [ ! -x "$dir/promtool" ]; then
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || exit 0
  mkdir -p "$dir"
  exec 9>"$dir/.lock"; flock 9
  if [ ! -x "$dir/promtool" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    ( cd "$work" && { apt-get download -qq prometheus >/dev/null 2>&1 ||
      { [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 && apt-get download -qq prometheus >/dev/null 2>&1; }; } ) || true
    deb=$(find "$work" -maxdepth 1 -name 'prometheus_*.deb' | head -n 1)
    [ -n "$deb" ] || exit 0
    dpkg-deb -x "$deb" "$work/x"
    install -m 0755 "$work/x/usr/bin/promtool" "$dir/promtool"
    echo "promtool.sh: extracted promtool from Debian's prometheus package into $dir" >&2
  fi
fi
"$dir/promtool" --version >/dev/null 2>&1 && echo "$dir/promtool"
