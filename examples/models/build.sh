#!/usr/bin/env bash
# Build the model image OFFLINE, with no registry: Debian's python3.11 packages are downloaded
# with apt, unpacked into a root filesystem, imported as a base image (done once, then reused),
# and the model (model.json from train.py) and its server are built on top.
#
#   ./build.sh [MODEL_DIR] [TAG]     # defaults: ./model  siestaflow-example-model:latest
#
# Needs: root or the docker group, the docker CLI talking to an engine (DOCKER_HOST), apt-get and
# dpkg-deb (Debian/Ubuntu), and apt's package lists (it runs `apt-get update` once if they are
# missing). Recipe and timings: /work/shared/infra/container-engine.md. Prints the image id.
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

build_base() {
  local work pkgs d
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  pkgs="libc6 libgcc-s1 libstdc++6 zlib1g libexpat1 libssl3 libffi8 libbz2-1.0 liblzma5 libcrypt1
    libuuid1 media-types libpython3.11-minimal libpython3.11-stdlib python3.11-minimal python3-minimal"
  mkdir "$work/debs" "$work/rootfs"
  # shellcheck disable=SC2086
  (cd "$work/debs" && apt-get download -q $pkgs >/dev/null 2>&1) ||
    { apt-get -o DPkg::Lock::Timeout=900 update -qq &&
      (cd "$work/debs" && apt-get download -q $pkgs >/dev/null); }
  # dpkg-deb -x: no chroot, no maintainer scripts (so no .pyc files: compiled below)
  for d in "$work"/debs/*.deb; do dpkg-deb -x "$d" "$work/rootfs"; done
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
  echo "building the base image $BASE from Debian packages" >&2
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
