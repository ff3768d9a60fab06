#!/usr/bin/env bash
# Install an XLA CPU PJRT plugin for GoMLX's "xla" backend from PyPI.
#
# GoMLX v0.26.0 (go-xla v0.1.4) downloads its CPU plugin from GitHub. This
# script takes a CPU plugin from a PyPI wheel instead. See docs/xla.md.
#
# Usage:
#   scripts/install-xla-cpu.sh [--wheel FILE] [--force] [--no-verify] [DIR]
#
#   DIR          install folder (default: $XLA_DIR, else <repo>/.xla)
#   --wheel FILE install from a wheel file you already have (no network),
#                e.g. one fetched on another machine with:
#                  pip download --no-deps --only-binary=:all: \
#                    --platform manylinux_2_27_x86_64 --python-version 3 \
#                    lammps-jax-pjrt-cpu==0.11.2
#                The XLA_WHEEL env var does the same.
#   --force      reinstall even if this version is already installed
#   --no-verify  accept a wheel whose SHA-256 differs from the pinned one
#                (another version or package, which was not tested)
#
# Progress goes to stderr and the export lines go to stdout, so this works:
#   eval "$(scripts/install-xla-cpu.sh)"
#
# Env: XLA_DIR, XLA_WHEEL, PYTHON (default python3, used for pip).
set -euo pipefail

# Pinned plugin: tested with GoMLX v0.26.0 / go-xla v0.1.4 (PJRT C API 0.83).
PKG=lammps-jax-pjrt-cpu
VER=0.11.2
WHEEL_NAME=lammps_jax_pjrt_cpu-0.11.2-py3-none-manylinux_2_27_x86_64.whl
WHEEL_SHA256=1319390d948b39f69f7dade496b7c385149d9ca6097a6b62114da113216d9ad1
SO_MEMBER=lammps_jax_pjrt_cpu/pjrt_c_api_cpu_plugin.so
LICENSE_PREFIX=lammps_jax_pjrt_cpu-0.11.2.dist-info/licenses/
# go-xla finds the plugin "cpu" as <dir>/pjrt_c_api_cpu_plugin.so.
PLUGIN_FILE=pjrt_c_api_cpu_plugin.so

log() { printf '%s\n' "$*" >&2; }
die() { printf 'install-xla-cpu: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${XLA_DIR:-}
WHEEL=${XLA_WHEEL:-}
FORCE=0
VERIFY=1
while [ $# -gt 0 ]; do
  case $1 in
    --wheel) [ $# -ge 2 ] || die "--wheel needs a file"; WHEEL=$2; shift 2 ;;
    --wheel=*) WHEEL=${1#--wheel=}; shift ;;
    --force) FORCE=1; shift ;;
    --no-verify) VERIFY=0; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "${DIR_ARG:-}" ] || die "only one DIR may be given"; DIR_ARG=$1; shift ;;
  esac
done
DIR=${DIR_ARG:-${DIR:-$REPO/.xla}}

# The wheel contains a Linux x86-64 library that needs glibc 2.27 or newer.
[ "$(uname -s)" = Linux ] || die "the plugin needs Linux, but this system is $(uname -s)"
[ "$(uname -m)" = x86_64 ] || die "the plugin needs x86_64, but this machine is $(uname -m)"
glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}') || glibc=
if [ -n "$glibc" ]; then
  maj=${glibc%%.*}; min=${glibc#*.}; min=${min%%.*}
  if [ "$maj" -lt 2 ] || { [ "$maj" -eq 2 ] && [ "$min" -lt 27 ]; }; then
    die "glibc $glibc found, but the plugin needs glibc 2.27 or newer"
  fi
fi
command -v sha256sum >/dev/null || die "sha256sum not found. Install coreutils."
[ -z "$WHEEL" ] || [ -f "$WHEEL" ] || die "wheel file not found: $WHEEL"

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
STAMP=$DIR/INSTALLED

print_env() {
  log "Plugin: $DIR/$PLUGIN_FILE -> $(readlink "$DIR/$PLUGIN_FILE")"
  log "Use it with GoMLX's config \"xla:cpu\" (or GOMLX_BACKEND=xla:cpu) and:"
  printf 'export PJRT_PLUGIN_LIBRARY_PATH=%q\n' "$DIR"
  printf 'export GOMLX_NO_AUTO_INSTALL=1\n'
}

# Skip the work when the stamp records this wheel's hash and the link resolves.
if [ "$FORCE" = 0 ] && [ -f "$STAMP" ] && [ -e "$DIR/$PLUGIN_FILE" ]; then
  if [ -z "$WHEEL" ] && grep -qx "wheel_sha256=$WHEEL_SHA256" "$STAMP"; then
    log "$PKG $VER is already installed in $DIR (use --force to reinstall)."
    print_env; exit 0
  fi
  if [ -n "$WHEEL" ] && [ -f "$WHEEL" ] &&
     grep -qx "wheel_sha256=$(sha256sum "$WHEEL" | awk '{print $1}')" "$STAMP"; then
    log "$(basename "$WHEEL") is already installed in $DIR (use --force to reinstall)."
    print_env; exit 0
  fi
fi

TMP=$(mktemp -d "$DIR/.tmp.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# 1. Get the wheel.
if [ -n "$WHEEL" ]; then
  SOURCE="file $(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")"
else
  PY=${PYTHON:-python3}
  command -v "$PY" >/dev/null || die "$PY not found. Install Python with pip, or download $WHEEL_NAME on another machine and pass --wheel FILE."
  log "Downloading $PKG==$VER from PyPI with pip ..."
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: \
      --platform manylinux_2_27_x86_64 --python-version 3 --implementation py \
      -d "$TMP/wheel" "$PKG==$VER" >&2 ||
    die "pip download failed. Download $WHEEL_NAME on another machine and pass --wheel FILE."
  WHEEL=$TMP/wheel/$WHEEL_NAME
  [ -f "$WHEEL" ] || die "pip did not produce $WHEEL_NAME (got: $(ls "$TMP/wheel"))"
  SOURCE="PyPI $PKG==$VER"
fi

# 2. Check it is the pinned wheel.
sha=$(sha256sum "$WHEEL" | awk '{print $1}')
if [ "$sha" != "$WHEEL_SHA256" ]; then
  [ "$VERIFY" = 0 ] || die "SHA-256 mismatch for $(basename "$WHEEL"): got $sha, expected $WHEEL_SHA256 ($WHEEL_NAME). Pass --no-verify to install it anyway."
  log "warning: $(basename "$WHEEL") is not the pinned $WHEEL_NAME, so it is installed untested."
fi

# 3. Find the plugin library and the license files in the wheel.
list_members() {
  if command -v unzip >/dev/null; then
    unzip -Z1 "$1"
  elif command -v "${PYTHON:-python3}" >/dev/null; then
    "${PYTHON:-python3}" -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$1"
  else
    die "neither unzip nor python3 found, but one of them is needed to read the wheel"
  fi
}
extract_member() { # wheel member dest_file
  if command -v unzip >/dev/null; then
    unzip -p "$1" "$2" >"$3"
  else
    "${PYTHON:-python3}" -c 'import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)' "$1" "$2" "$3"
  fi
}
members=$(list_members "$WHEEL") || die "failed to read $WHEEL as a zip file"
so=$SO_MEMBER
if ! grep -qxF "$so" <<<"$members"; then
  # With --no-verify and another wheel, take the wheel's only .so file.
  sos=$(grep -E '\.so(\.[0-9]+)*$' <<<"$members" || true)
  [ "$(grep -c . <<<"$sos")" = 1 ] || die "cannot tell which .so file in the wheel is the plugin (found: ${sos:-none})"
  so=$sos
fi
lic_prefix=$LICENSE_PREFIX
[ "$sha" = "$WHEEL_SHA256" ] || lic_prefix=$(grep -m1 -oE '^[^/]+\.dist-info/' <<<"$members" || true)

# 4. Extract into a temporary folder, check it loads, then move it in place.
name=$PKG-$VER
[ "$sha" = "$WHEEL_SHA256" ] || name=$(basename "$WHEEL" .whl)
DEST_SUB=dist/$name
mkdir -p "$TMP/out"
log "Extracting $so ..."
extract_member "$WHEEL" "$so" "$TMP/out/$PLUGIN_FILE"
chmod 755 "$TMP/out/$PLUGIN_FILE"
while IFS= read -r m; do
  case $m in "$lic_prefix"*LICENSE*|"$lic_prefix"*NOTICE*|"$lic_prefix"licenses/*)
    if [ "${m%/}" = "$m" ]; then extract_member "$WHEEL" "$m" "$TMP/out/$(basename "$m")"; fi ;;
  esac
done <<<"$members"

if command -v "${PYTHON:-python3}" >/dev/null; then
  # dlopen the library and read PJRT_Api.pjrt_api_version. Its major and minor
  # version ints are at byte offset 32 of PJRT_Api on x86-64.
  if ver=$("${PYTHON:-python3}" -c 'import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.GetPjrtApi.restype = ctypes.c_void_p
api = lib.GetPjrtApi()
v = (ctypes.c_int * 2).from_address(api + 32)
print("%d.%d" % (v[0], v[1]))' "$TMP/out/$PLUGIN_FILE" 2>&1); then
    log "The plugin loads and implements PJRT C API $ver (go-xla v0.1.4 is built for 0.83)."
  else
    die "the plugin failed to load on this machine: $(tail -n 1 <<<"$ver")"
  fi
fi

rm -rf "${DIR:?}/$DEST_SUB"
mkdir -p "$(dirname "$DIR/$DEST_SUB")"
mv "$TMP/out" "$DIR/$DEST_SUB"
ln -sfn "$DEST_SUB/$PLUGIN_FILE" "$DIR/$PLUGIN_FILE.new"
mv -fT "$DIR/$PLUGIN_FILE.new" "$DIR/$PLUGIN_FILE"
{
  echo "package=$name"
  echo "source=$SOURCE"
  echo "wheel_sha256=$sha"
  echo "plugin=$DEST_SUB/$PLUGIN_FILE"
} >"$STAMP"
# Drop plugins installed here before (about 200 MB each).
for old in "$DIR"/dist/*; do
  [ "$old" = "$DIR/$DEST_SUB" ] || rm -rf "$old"
done
log "Installed $name into $DIR."
print_env
