#!/usr/bin/env bash
# Builds orca's images locally (nothing can be pulled on these machines):
#   busybox    orca/busybox:<hash>    busybox-static + glibc's loader and libc (what etcd links)
#   node-base  orca/node-base:<hash>  busybox + the host's /usr/bin/node and its libraries + CA certs
#   etcd       orca/etcd:<hash>       ucp-kv: Debian's etcd on orca/busybox
#   orca       orca/orca:<hash>       dist/ + production node_modules on orca/node-base
#   kube       orca/kube:<k8s version>-<hash>  kube-apiserver, -controller-manager, -scheduler and
#              kwok (static Go binaries cached by scripts/kube-binaries.mjs) on orca/busybox
#
# Usage: scripts/build-images.sh [busybox|node-base|etcd|orca|kube]...   (default: all but kube)
# Talks to $DOCKER_HOST (or the default engine). Prints one `name=ref` line per image on stdout;
# progress goes to stderr. Every tag is a hash of the image's inputs, so the script is idempotent:
# an image whose tag already exists is skipped, and the rootfs tars are cached in $ORCA_IMAGE_CACHE
# (default ~/.cache/orca/images) so a fresh engine only pays for `docker import`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${ORCA_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orca/images}"
# Bump when a recipe changes in a way its input files do not show.
RECIPE=1
# The docker CLI here has no buildx plugin; the classic builder talks to dockerd 20.10 directly.
export DOCKER_BUILDKIT=0

mkdir -p "$CACHE"
log() { echo "[build-images] $*" >&2; }

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

short_hash() { sha256sum | cut -c1-16; }

# Hash of the named files' contents and paths.
hash_files() { sha256sum "$@" | short_hash; }

# Shared libraries a dynamically linked binary needs, as absolute paths (ldd's resolved targets).
libs_of() {
  ldd "$1" 2>/dev/null | awk '/=>/ { if ($3 ~ /^\//) print $3; next } $1 ~ /^\// { print $1 }' || true
}

BUSYBOX_BIN=/bin/busybox
[ -x "$BUSYBOX_BIN" ] || BUSYBOX_BIN=/usr/bin/busybox
NODE_BIN=/usr/bin/node
ETCD_BIN=/usr/bin/etcd
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

# make_rootfs <dir> <binaries...>: busybox applets, the binaries' libraries and a minimal /etc.
make_rootfs() {
  local dir="$1"
  shift
  mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,var/run,proc,sys,dev,data}
  chmod 1777 "$dir/tmp"
  cp "$BUSYBOX_BIN" "$dir/bin/busybox"
  # busybox --install -s needs /proc/self/exe inside a chroot; link the applets by hand instead.
  local applet
  for applet in $("$BUSYBOX_BIN" --list-full); do
    [ "$applet" = "bin/busybox" ] && continue
    mkdir -p "$dir/$(dirname "$applet")"
    ln -sf /bin/busybox "$dir/$applet"
  done
  local bin lib
  for bin in "$@"; do
    for lib in $(libs_of "$bin"); do
      mkdir -p "$dir$(dirname "$lib")"
      cp -L "$lib" "$dir$lib"
    done
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
  printf 'hosts: files dns\n' >"$dir/etc/nsswitch.conf"
}

# import_rootfs <ref> <tar-name> <builder-function>: the cached tar (built once, atomically) → docker import.
import_rootfs() {
  local ref="$1" tar="$CACHE/$2" builder="$3"
  if image_exists "$ref"; then
    log "$ref exists"
    return
  fi
  (
    flock 9
    if [ ! -s "$tar" ]; then
      log "making rootfs $tar"
      local tmp
      tmp="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
      "$builder" "$tmp/root"
      tar --numeric-owner --owner=0 --group=0 -C "$tmp/root" -cf "$tmp/rootfs.tar" .
      mv "$tmp/rootfs.tar" "$tar"
      rm -rf "$tmp"
    fi
  ) 9>"$CACHE/.lock"
  log "importing $ref"
  docker import --change 'CMD ["/bin/sh"]' "$tar" "$ref" >/dev/null
}

busybox_rootfs() { make_rootfs "$1" "$ETCD_BIN"; }

node_rootfs() {
  make_rootfs "$1" "$NODE_BIN"
  mkdir -p "$1/usr/bin" "$1/etc/ssl/certs"
  cp "$NODE_BIN" "$1/usr/bin/node"
  cp "$CA_BUNDLE" "$1/etc/ssl/certs/ca-certificates.crt"
}

BUSYBOX_REF=""
NODE_BASE_REF=""

build_busybox() {
  [ -n "$BUSYBOX_REF" ] && return
  local libs
  libs=$(libs_of "$ETCD_BIN")
  # shellcheck disable=SC2086
  BUSYBOX_REF="orca/busybox:$( (echo "recipe $RECIPE"; sed -n '/^make_rootfs()/,/^}/p;/^busybox_rootfs()/p' "$0"; hash_files "$BUSYBOX_BIN" $libs) | short_hash)"
  import_rootfs "$BUSYBOX_REF" "busybox-${BUSYBOX_REF#*:}.tar" busybox_rootfs
}

build_node_base() {
  [ -n "$NODE_BASE_REF" ] && return
  local libs
  libs=$(libs_of "$NODE_BIN")
  # shellcheck disable=SC2086
  NODE_BASE_REF="orca/node-base:$( (echo "recipe $RECIPE"; sed -n '/^make_rootfs()/,/^}/p;/^node_rootfs()/,/^}/p' "$0"; hash_files "$BUSYBOX_BIN" "$NODE_BIN" "$CA_BUNDLE" $libs) | short_hash)"
  import_rootfs "$NODE_BASE_REF" "node-base-${NODE_BASE_REF#*:}.tar" node_rootfs
}

build_etcd() {
  build_busybox
  local ref
  ref="orca/etcd:$( (echo "$BUSYBOX_REF"; hash_files "$ETCD_BIN" "$ROOT/deploy/etcd.Dockerfile") | short_hash)"
  if image_exists "$ref"; then
    log "$ref exists"
  else
    local ctx
    ctx="$(mktemp -d)"
    cp "$ETCD_BIN" "$ctx/etcd"
    cp "$ROOT/deploy/etcd.Dockerfile" "$ctx/Dockerfile"
    log "building $ref"
    docker build -q --build-arg "BASE=$BUSYBOX_REF" -t "$ref" "$ctx" >/dev/null
    rm -rf "$ctx"
  fi
  echo "etcd=$ref"
}

# Top-level directories of the production dependency tree (nested ones ride along with their parent).
prod_modules() {
  (cd "$ROOT" && npm ls --omit=dev --parseable --all 2>/dev/null) |
    sed -n "s|^$ROOT/||p" | grep '^node_modules/' | sort |
    awk '{ if (kept != "" && index($0, kept "/") == 1) next; print; kept = $0 }'
}

build_orca() {
  build_node_base
  if [ ! -f "$ROOT/dist/apps/cli/src/main.js" ] && [ ! -d "$ROOT/dist/libs" ]; then
    log "dist/ missing: building with tsc"
    (cd "$ROOT" && npx tsc -p tsconfig.build.json) >&2 || [ -d "$ROOT/dist/libs" ]
  fi
  local ref
  ref="orca/orca:$(
    cd "$ROOT"
    (
      echo "$NODE_BASE_REF"
      find dist scripts -type f ! -name '.built' -print0 | sort -z | xargs -0 sha256sum
      sha256sum package.json package-lock.json deploy/orca.Dockerfile
    ) | short_hash
  )"
  if image_exists "$ref"; then
    log "$ref exists"
  else
    local ctx
    ctx="$(mktemp -d)"
    cp "$ROOT/deploy/orca.Dockerfile" "$ctx/Dockerfile"
    cp "$ROOT/package.json" "$ctx/"
    cp -a "$ROOT/dist" "$ROOT/scripts" "$ctx/"
    mkdir -p "$ctx/node_modules"
    local mod
    for mod in $(prod_modules); do
      (cd "$ROOT" && cp -a --parents "$mod" "$ctx/")
    done
    log "building $ref ($(du -sh "$ctx" | cut -f1) context)"
    docker build -q --build-arg "BASE=$NODE_BASE_REF" -t "$ref" "$ctx" >/dev/null
    rm -rf "$ctx"
  fi
  echo "orca=$ref"
}

# The Kubernetes components' image for the docker runtime (component setting kubernetes.image). The
# binaries must be built first (`node scripts/kube-binaries.mjs`, about 11 minutes the first time).
build_kube() {
  build_busybox
  local paths version bins
  paths="$(node "$ROOT/scripts/kube-binaries.mjs" --paths)"
  version="$(node -e 'console.log(JSON.parse(process.argv[1]).kubernetesVersion)' "$paths")"
  bins="$(node -e 'const p = JSON.parse(process.argv[1]); console.log([p.kubeApiserver, p.kubeControllerManager, p.kubeScheduler, p.kwok].join(" "))' "$paths")"
  local bin
  for bin in $bins; do
    [ -x "$bin" ] || { echo "$bin is not built: run node scripts/kube-binaries.mjs" >&2; exit 1; }
  done
  local ref
  # shellcheck disable=SC2086
  ref="orca/kube:${version}-$( (echo "$BUSYBOX_REF recipe $RECIPE"; hash_files $bins) | short_hash)"
  if image_exists "$ref"; then
    log "$ref exists"
  else
    local ctx
    ctx="$(mktemp -d)"
    # shellcheck disable=SC2086
    cp $bins "$ctx/"
    printf 'ARG BASE\nFROM ${BASE}\nCOPY kube-apiserver kube-controller-manager kube-scheduler kwok /usr/local/bin/\nENTRYPOINT []\n' >"$ctx/Dockerfile"
    log "building $ref"
    docker build -q --build-arg "BASE=$BUSYBOX_REF" -t "$ref" "$ctx" >/dev/null
    rm -rf "$ctx"
  fi
  echo "kube=$ref"
}

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(busybox node-base etcd orca)
for target in "${targets[@]}"; do
  case "$target" in
    busybox) build_busybox && echo "busybox=$BUSYBOX_REF" ;;
    node-base) build_node_base && echo "node-base=$NODE_BASE_REF" ;;
    etcd) build_etcd ;;
    orca) build_orca ;;
    kube) build_kube ;;
    *)
      echo "unknown image: $target (expected busybox, node-base, etcd, orca or kube)" >&2
      exit 2
      ;;
  esac
done
