#!/usr/bin/env bash
# Build the C++ runtime (runtimes/cpp/build/edgepack_check and predict). Idempotent: the first
# run fetches headers and builds (~1 min), later runs only rebuild what changed (~1 s).
#
# onnxruntime's C/C++ headers are not in bookworm or on PyPI, so they come from Debian trixie's
# libonnxruntime-dev, fetched with a PRIVATE apt state (own sources list, lists and cache under
# .deps; the mirror is the one this machine's apt already uses) and unpacked, never installed.
# The library is the libonnxruntime.so that the venv's onnxruntime wheel ships: the C API is
# versioned (OrtGetApiBase()->GetApi(ORT_API_VERSION)), so a newer library serves older headers.
# Text: libonnxruntime-genai.so (byte-level BPE tokenizers and chat templates of language models)
# comes from the onnxruntime-genai wheel on PyPI (pip download, unpacked, never installed); its C
# functions are declared in src/oga.h (the wheel ships no header). ICU (Debian's libicu-dev) gives
# the Unicode tables of the BERT WordPiece tokenizer (src/wordpiece.cpp).
#
# Prints the path of edgepack_check as the last line on stdout; progress goes to stderr.
# Environment: PYTHON (default .venv/bin/python), EDGEPACK_CPP_DEPS (default runtimes/cpp/.deps),
# EDGEPACK_CPP_BUILD (default runtimes/cpp/build), ONNXRUNTIME_INCLUDE_DIR (skip the fetch).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
deps="${EDGEPACK_CPP_DEPS:-$here/.deps}"
build="${EDGEPACK_CPP_BUILD:-$here/build}"
suite="${ORT_HEADERS_SUITE:-trixie}"

die() { echo "runtimes/cpp/setup.sh: $*" >&2; exit 1; }
log() { echo "runtimes/cpp/setup.sh: $*" >&2; }

for tool in cmake c++ dpkg-deb apt-get flock; do
  command -v "$tool" >/dev/null || die "missing '$tool': run scripts/setup_system.sh as root (apt-get install cmake g++ nlohmann-json3-dev libssl-dev)"
done
[ -f /usr/include/nlohmann/json.hpp ] || die "missing nlohmann-json3-dev: run scripts/setup_system.sh as root"
[ -f /usr/include/stb/stb_image.h ] || die "missing libstb-dev (stb_image decodes images): run scripts/setup_system.sh as root"
[ -f /usr/include/unicode/uchar.h ] || die "missing libicu-dev (Unicode tables for WordPiece): run scripts/setup_system.sh as root"
[ -x "$python" ] || die "no python at $python: run 'make test' (or set PYTHON to a python with onnxruntime)"

mkdir -p "$deps"
exec 9>"$deps/.lock"
flock 9  # one setup at a time: tests and `edgepack verify` may start it concurrently

# 1. The wheel's library, found via the venv's python without importing onnxruntime (slow).
read -r ort_version ort_lib < <("$python" - <<'EOF'
import glob, importlib.metadata as md, importlib.util, os, sys
spec = importlib.util.find_spec("onnxruntime")
if spec is None:
    sys.exit("onnxruntime is not installed in this python")
libs = glob.glob(os.path.join(spec.submodule_search_locations[0], "capi", "libonnxruntime.so*"))
if not libs:
    sys.exit("the onnxruntime wheel ships no libonnxruntime.so")
print(md.version("onnxruntime"), max(libs, key=len))
EOF
) || die "cannot locate libonnxruntime.so via $python"
# The binaries link libonnxruntime.so (its SONAME is libonnxruntime.so.1); the wheel ships only
# the fully versioned file, so point both names at it. Refreshed each run: follows venv upgrades.
mkdir -p "$deps/lib"
ln -sfn "$ort_lib" "$deps/lib/libonnxruntime.so"
ln -sfn "$ort_lib" "$deps/lib/libonnxruntime.so.1"

# 1b. onnxruntime-genai's library (tokenizers of language models), from its PyPI wheel, once.
genai_version="${ORT_GENAI_VERSION:-0.18.0}"
genai_lib="$deps/genai-$genai_version/libonnxruntime-genai.so"
if [ ! -f "$genai_lib" ]; then
  log "fetching onnxruntime-genai $genai_version's library (pip download, unpacked here)"
  rm -rf "$deps/genai.tmp" && mkdir -p "$deps/genai.tmp"
  "$python" -m pip download -q --no-deps --only-binary=:all: -d "$deps/genai.tmp" \
    "onnxruntime-genai==$genai_version" >&2 || die "pip download onnxruntime-genai==$genai_version failed"
  "$python" -c '
import glob, sys, zipfile
folder = sys.argv[1]
with zipfile.ZipFile(glob.glob(folder + "/onnxruntime_genai-*.whl")[0]) as zf:
    member = next(n for n in zf.namelist() if n.endswith("/libonnxruntime-genai.so"))
    open(folder + "/libonnxruntime-genai.so", "wb").write(zf.read(member))
' "$deps/genai.tmp" || die "the onnxruntime-genai wheel has no libonnxruntime-genai.so"
  mkdir -p "$(dirname "$genai_lib")" && mv "$deps/genai.tmp/libonnxruntime-genai.so" "$genai_lib"
  rm -rf "$deps/genai.tmp"
fi
ln -sfn "$genai_lib" "$deps/lib/libonnxruntime-genai.so"

# 2. The headers: unpacked once into $deps/onnxruntime-dev, then reused.
headers="${ONNXRUNTIME_INCLUDE_DIR:-$deps/onnxruntime-dev/usr/include/onnxruntime}"
if [ ! -f "$headers/onnxruntime_cxx_api.h" ]; then
  [ -z "${ONNXRUNTIME_INCLUDE_DIR:-}" ] || die "no onnxruntime_cxx_api.h in ONNXRUNTIME_INCLUDE_DIR=$headers"
  apt="$deps/apt"
  rm -rf "$apt" && mkdir -p "$apt/sources" "$apt/prefs" "$apt/lists/partial" "$apt/cache/archives/partial"
  : >"$apt/status"
  # The mirror this machine's apt uses for its own release, read from apt itself (no lists needed).
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  mirror="$(apt-get -o Dir::State::Lists="$apt/lists" --print-uris update 2>/dev/null |
    sed -n "s|^'\(.*\)/dists/$codename/InRelease'.*|\1|p" | head -n1)"
  [ -n "$mirror" ] || die "no Debian mirror for '$codename' in this machine's apt sources: set ONNXRUNTIME_INCLUDE_DIR to onnxruntime headers (1.18+)"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n%s' "$mirror" "$suite" \
    "$([ -f "$keyring" ] && printf 'Signed-By: %s\n' "$keyring")" >"$apt/sources/$suite.sources"
  opts=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$apt/sources"
    -o Dir::Etc::PreferencesParts="$apt/prefs" -o Dir::State="$apt" -o Dir::State::Lists="$apt/lists"
    -o Dir::State::status="$apt/status" -o Dir::Cache="$apt/cache" -o Acquire::Languages=none)
  [ "$(id -u)" -ne 0 ] || opts+=(-o APT::Sandbox::User=root)  # the private dirs are root's
  log "fetching libonnxruntime-dev from $suite (private apt state under $apt)"
  apt-get "${opts[@]}" -qq update >&2 || die "apt-get update of $suite failed (private state in $apt)"
  (cd "$apt" && apt-get "${opts[@]}" -qq download libonnxruntime-dev >&2) ||
    die "apt-get download libonnxruntime-dev from $suite failed"
  rm -rf "$deps/onnxruntime-dev.tmp" && mkdir "$deps/onnxruntime-dev.tmp"
  dpkg-deb -x "$apt"/libonnxruntime-dev_*.deb "$deps/onnxruntime-dev.tmp"
  rm -rf "$deps/onnxruntime-dev" && mv "$deps/onnxruntime-dev.tmp" "$deps/onnxruntime-dev"
  rm -rf "$apt/lists" "$apt/cache"  # ~10 MB of package lists, not needed again
fi

# 3. Headers must not be newer than the library: GetApi(N) fails for N above the library's.
api="$(sed -n 's/^#define ORT_API_VERSION \([0-9]*\).*/\1/p' "$headers/onnxruntime_c_api.h")"
lib_api="$(echo "$ort_version" | cut -d. -f2)"
[ -n "$api" ] && [ "$api" -le "$lib_api" ] ||
  die "headers have ORT_API_VERSION ${api:-?} but the wheel's onnxruntime $ort_version serves up to $lib_api"

# 4. Build.
log "building with onnxruntime $ort_version (headers API $api) into $build"
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DONNXRUNTIME_INCLUDE_DIR="$headers" -DONNXRUNTIME_LIB_DIR="$deps/lib" >/dev/null ||
  die "cmake configure failed (see above)"
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null || die "build failed (see above)"
echo "$build/edgepack_check"
