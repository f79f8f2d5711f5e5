#!/usr/bin/env bash
# A Debian bookworm base image with python3, venv and libgomp1 (LightGBM's OpenMP), built from Debian's packages with
# mmdebstrap and imported into the local Docker engine: for machines that reach Debian's
# mirror but no image registry. Needs root (or fakeroot) and mmdebstrap.
#   deploy/base-image.sh migraine-base:bookworm
set -euo pipefail
tag=${1:?usage: deploy/base-image.sh <tag>}
command -v mmdebstrap >/dev/null || { echo "mmdebstrap missing: apt-get install mmdebstrap" >&2; exit 2; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# minbase: essential packages + apt; no docs, man pages or translations; apt's lists and
# caches removed, since the image never runs apt.
mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates,libgomp1 \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  bookworm "$scratch/base.tar"
docker import --change 'ENV LANG=C.UTF-8' "$scratch/base.tar" "$tag"
echo "imported $tag"
