#!/usr/bin/env bash
# Build the model image OFFLINE, with no registry: a root filesystem holding Python 3.11 is made
# from Debian packages and imported as a base image (done once, then reused), and the model
# (model.json from train.py) and its server are built on top.
#
#   ./build.sh [MODEL_DIR] [TAG]     # defaults: ./model  siestaflow-example-model:latest
#
# Where the base's files come from (BASE_SOURCE):
#   auto (default)  host when this machine has all the packages installed, else apt
#   host            the files of this machine's installed packages (`dpkg -L`): no network at all
#   apt             `apt-get download` from the configured mirror (an internal mirror or cache works),
#                   unpacked with dpkg-deb; runs `apt-get update` once when the lists are missing
# Needs: root or the docker group, the docker CLI talking to an engine (DOCKER_HOST), and dpkg
# (Debian/Ubuntu). Recipe and timings: /work/shared/infra/container-engine.md. Prints the image id.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MODEL_DIR=${1:-$HERE/model}
TAG=${2:-siestaflow-example-model:latest}
BASE=${BASE_IMAGE:-siestaflow-python-base:3.11}
export DOCKER_BUILDKIT=0   # the legacy builder: Debian's engine has no BuildKit/buildx
[ -f "$MODEL_DIR/model.json" ] || { echo "build.sh: no $MODEL_DIR/model.json (run train.py first)" >&2; exit 2; }

# One build at a time on this machine (parallel test workers share the base image).
exec 9>"${TMPDIR:-/tmp}/siestaflow-model-build.lock"
flock 9

# docker build, with the legacy builder's deprecation notice shown only when the build fails
quiet_build() {
  local err rc=0
  err=$(mktemp)
  docker build -q "$@" 2>"$err" || rc=$?
  [ $rc = 0 ] || cat "$err" >&2
  rm -f "$err"
  return $rc
}

PKGS="libc6 libgcc-s1 libstdc++6 zlib1g libexpat1 libssl3 libffi8 libbz2-1.0 liblzma5 libcrypt1
  libuuid1 media-types libpython3.11-minimal libpython3.11-stdlib python3.11-minimal python3-minimal"

host_has_packages() {
  local p
  for p in $PKGS; do
    [ "$(dpkg-query -W -f '${db:Status-Abbrev}' "$p" 2>/dev/null)" = "ii " ] || return 1
  done
}

# the installed packages' files and symlinks into $1 (tar makes their directories; a merged-/usr
# host's /lib -> usr/lib symlinks come along, so their targets must exist first)
rootfs_from_host() {
  mkdir -p "$1"/usr/bin "$1"/usr/sbin "$1"/usr/lib "$1"/usr/lib64  # targets of merged-/usr symlinks
  # shellcheck disable=SC2086
  dpkg -L $PKGS | sort -u | while IFS= read -r f; do
    if [ -L "$f" ] || [ -f "$f" ]; then printf '%s\n' "${f#/}"; fi
  done | tar -C / --no-recursion -cf - -T - | tar -C "$1" -xf -
}

# the packages downloaded with apt and unpacked into $1 (dpkg-deb -x: no chroot, no maintainer scripts)
rootfs_from_apt() {
  local debs d
  debs=$(mktemp -d)
  # shellcheck disable=SC2086
  (cd "$debs" && apt-get download -q $PKGS >/dev/null 2>&1) ||
    { apt-get -o DPkg::Lock::Timeout=900 update -qq &&
      (cd "$debs" && apt-get download -q $PKGS >/dev/null); } || { rm -rf "$debs"; return 1; }
  for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$1"; done
  rm -rf "$debs"
}

build_base() {
  local work source=${BASE_SOURCE:-auto}
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  mkdir "$work/rootfs"
  if [ "$source" = auto ]; then
    if host_has_packages; then source=host; else source=apt; fi
  fi
  echo "building the base image $BASE from Debian packages ($source)" >&2
  case $source in
    host) rootfs_from_host "$work/rootfs" ;;
    apt) rootfs_from_apt "$work/rootfs" ;;
    *) echo "build.sh: BASE_SOURCE is auto, host or apt, not $source" >&2; return 2 ;;
  esac
  # no maintainer scripts ran, so there are no .pyc files (compiled below)
  ln -sf python3.11 "$work/rootfs/usr/bin/python3"
  rm -rf "$work"/rootfs/usr/share/{doc,man,locale,lintian}
  install -d -m 1777 "$work/rootfs/tmp"
  tar --numeric-owner -C "$work/rootfs" -c . | docker import - "$BASE-raw" >/dev/null
  # compiled stdlib: the server starts in ~0.15 s instead of ~0.5 s
  printf 'FROM %s\nRUN ["/usr/bin/python3","-m","compileall","-q","-j0","/usr/lib/python3.11"]\n' "$BASE-raw" |
    quiet_build -t "$BASE" - >/dev/null
  docker rmi "$BASE-raw" >/dev/null 2>&1 || true
}

if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  build_base
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$HERE/Dockerfile" "$HERE/serve" "$ctx/"
cp -r "$MODEL_DIR" "$ctx/model"
chmod +x "$ctx/serve"
quiet_build --build-arg BASE="$BASE" \
  --label "org.siestaflow.model-sha256=$(sha256sum "$MODEL_DIR/model.json" | cut -d' ' -f1)" \
  -t "$TAG" "$ctx"
