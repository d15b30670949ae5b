#!/usr/bin/env bash
# Builds the images the tests (and the README's local stack) use, from Debian packages.
# No registry is reachable here, so a debootstrap rootfs becomes the base image and small
# Dockerfiles on top of it emulate each official image's contract (DESIGN.md §7).
#
#   tests/images/build.sh            build what is missing or out of date
#   tests/images/build.sh --force    rebuild everything
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
prefix=pricescan-test
base=$prefix/base:bookworm
suite=bookworm
force=0
[ "${1:-}" = "--force" ] && force=1

packages=(
  mariadb-server mariadb-client redis-server redis-tools nginx-light prometheus prometheus-alertmanager
  python3-flask gunicorn python3-pymysql python3-redis
  curl wget ca-certificates procps
)

# An image is current when it carries the hash of what it was built from; a changed
# Dockerfile, entrypoint or package list rebuilds it, everything else is kept.
label=io.pricescan.test-source
image_hash() { docker image inspect --format "{{index .Config.Labels \"$label\"}}" "$1" 2>/dev/null || true; }
is_current() { [ $force = 0 ] && [ "$(image_hash "$1")" = "$2" ]; }

# The mirror comes from this machine's apt sources, never from this repository.
apt_mirror() {
  local uri=""
  if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
    uri=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' /etc/apt/sources.list.d/*.sources \
      | grep -v -- '-security' | head -n 1)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
      /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { echo "error: no Debian mirror found in /etc/apt/sources*" >&2; exit 1; }
  echo "$uri"
}

build_base() {
  local hash
  hash=$(printf '%s\n' "$suite" "${packages[@]}" | sha256sum | cut -c1-16)
  if is_current "$base" "$hash"; then
    echo "ok: $base is current"
    return
  fi
  command -v debootstrap >/dev/null || {
    echo "installing debootstrap"
    apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null
  }
  local mirror rootfs
  mirror=$(apt_mirror)
  rootfs=$(mktemp -d /tmp/pricescan-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' RETURN
  echo "debootstrap $suite (packages: ${packages[*]})"
  local list
  list=$(IFS=,; echo "${packages[*]}")
  debootstrap --variant=minbase --include="$list" "$suite" "$rootfs" "$mirror" >/tmp/pricescan-debootstrap.log 2>&1 \
    || { tail -n 30 /tmp/pricescan-debootstrap.log >&2; exit 1; }
  # Package scripts initialise data that must not end up in the image (see mysql/Dockerfile).
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import --change "LABEL $label=$hash" - "$base" >/dev/null
  echo "built: $base"
}

build_image() {
  local tag=$1 dir=$2 hash
  shift 2
  # The base's hash is part of each image's: a new base rebuilds everything on top of it.
  hash=$( (image_hash "$base"; echo "$*"; cd "$here" && find "$dir" -type f | sort | xargs cat) | sha256sum | cut -c1-16)
  if is_current "$tag" "$hash"; then
    echo "ok: $tag is current"
    return
  fi
  # The classic builder resolves FROM against local images only; BuildKit would ask a registry.
  local log=/tmp/pricescan-build-${tag//[\/:]/_}.log
  DOCKER_BUILDKIT=0 docker build --rm --force-rm --label "$label=$hash" --build-arg "BASE=$base" "$@" \
    -t "$tag" "$here/$dir" >"$log" 2>&1 \
    || { tail -n 30 "$log" >&2; exit 1; }
  echo "built: $tag"
}

build_base
build_image $prefix/mysql:8.0 mysql
build_image $prefix/redis:7 redis
build_image $prefix/nginx:1.25 nginx
build_image $prefix/prometheus:v2 prometheus
build_image $prefix/alertmanager:0.25 alertmanager
build_image $prefix/grafana-standin:1 grafana
build_image $prefix/api:v1 api --build-arg APP_VERSION=v1
build_image $prefix/api:v2 api --build-arg APP_VERSION=v2
build_image $prefix/api:broken api --build-arg APP_VERSION=broken --build-arg BROKEN=1
build_image $prefix/api:flaky api --build-arg APP_VERSION=flaky --build-arg FAIL_EVERY=20
build_image $prefix/api:slow api --build-arg APP_VERSION=slow --build-arg DELAY_MS=300
