#!/bin/sh
# Builds the OCI distribution-spec conformance suite (a Go program) once into a cache outside the
# repository and prints the binary's path. The module comes from the Go module proxy at a pinned
# version; a build that is already there is reused.
set -eu
VERSION="${OCI_CONFORMANCE_VERSION:-v0.0.0-20260831232431-97274622c111}"
MODULE=github.com/opencontainers/distribution-spec/conformance
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/orca/oci-conformance/$VERSION"
BIN="$CACHE/conformance"
if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null 2>&1 || { echo "build-oci-conformance: go is not installed" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
cd "$WORK"
printf 'module orca.local/conformance-fetch\n\ngo 1.24\n' > go.mod
DIR="$(go mod download -json "$MODULE@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -n "$DIR" ] || { echo "build-oci-conformance: could not download $MODULE@$VERSION" >&2; exit 1; }
cp -R "$DIR" src
chmod -R u+w src
mkdir -p "$CACHE"
(cd src && GOFLAGS=-mod=mod go build -o "$BIN.tmp" .) >&2
mv "$BIN.tmp" "$BIN"
echo "$BIN"
