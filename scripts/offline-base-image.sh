#!/usr/bin/env bash
# Build a local sandbox base image without pulling from any container registry:
# Debian bookworm from Debian's own packages (debootstrap), imported with `docker import`.
# For air-gapped hosts and CI without registry access. Usage: offline-base-image.sh TAG
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), FORCE=1 to rebuild an
# existing tag. Needs root (debootstrap) and a Docker engine.
set -euo pipefail

tag=${1:?usage: offline-base-image.sh TAG}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# python3 plus the CLI tools an agent reaches for; the sandbox Dockerfile only adds a user on top.
packages=python3,python3-pip,python3-venv,procps,psmisc,curl,ca-certificates,git,less,file,jq,zip,unzip,xz-utils,bzip2,bc,tree,diffutils,patch,sqlite3,wget,nano

if [[ -z ${FORCE:-} ]] && docker image inspect "$tag" >/dev/null 2>&1; then
  echo "offline-base-image: $tag already present"
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  echo "offline-base-image: installing debootstrap"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
fi

root=$(mktemp -d /tmp/offline-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "offline-base-image: debootstrap bookworm into $root (usually 1-3 min, most of it downloading packages)"
debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
  tail -n 30 "$root.log" >&2
  exit 1
}
rm -f "$root.log"
# Trim what a container never needs: apt lists and caches.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
echo "offline-base-image: importing as $tag"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  - "$tag" >/dev/null
echo "offline-base-image: built $tag in ${SECONDS} s"
