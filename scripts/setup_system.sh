#!/usr/bin/env bash
# System packages the full test suite uses (CI runs as root on Debian). Tests that need one of
# these skip with a reason when it is missing, so `make test` still works without this script.
#   bash scripts/setup_system.sh            # what CI needs
#   bash scripts/setup_system.sh --corpus   # also the text packages of scripts/make_corpus.py
#   bash scripts/setup_system.sh --photos   # also the photographs of scripts/make_photos.py
# Uses the machine's own apt configuration: no mirror is named here.
set -euo pipefail

APT_PACKAGES=(
  # one package per line, with the tests that need it
  cmake              # tests/runtimes/test_cpp_runtime.py (runtimes/cpp/setup.sh builds with it)
  g++                # tests/runtimes/test_cpp_runtime.py
  nlohmann-json3-dev # tests/runtimes/test_cpp_runtime.py (the C++ runtime's JSON library)
  libssl-dev         # tests/runtimes/test_cpp_runtime.py (sha256 and ed25519 via OpenSSL 3 EVP)
  libstb-dev         # tests/runtimes/test_image_runtimes.py (stb_image decodes PNG/JPEG in the C++ runtime)
  libicu-dev         # tests/runtimes/test_text_runtimes.py (Unicode tables of the C++ runtime's WordPiece)
  openssh-server     # tests/bench/test_remote.py (a private sshd on 127.0.0.1; brings ssh too)
  qemu-user-static   # tests/bench/test_arm64.py (aarch64 python under qemu-aarch64-static)
  debootstrap        # tests/bench/test_arm64.py (builds the cached arm64 sysroot)
  time               # tests/bench/test_runner.py (peak RSS vs /usr/bin/time -v), scripts/bench_overhead.py
  fortunes-min       # tests/stages/test_probe.py: builtin:fortunes, the default probe of text builds
  chromium           # tests/report/test_report_page.py: the report rendered headless (console, plots, screenshot)
)
# `--corpus`: the Debian packages whose text scripts/make_corpus.py reads (training corpus; it
# refuses to run without any of them) and the held-out probes of packager/data/probe.py are made
# of. Not needed by `make test`. scripts/make_packages_dataset.py needs only apt's lists.
if [ "${1:-}" = "--corpus" ]; then
  APT_PACKAGES+=(
    libpython3-stdlib python3-doc wordnet-base dict-gcide dict-foldoc  # corpus
    debian-handbook debian-reference-en debian-faq maint-guide developers-reference  # corpus
    manpages manpages-dev                                              # corpus
    fortunes dict-devil dict-jargon                                    # probes
  )
fi
# `--photos`: real photographs for models/efficientnet-lite0*.yaml and scripts/bench_vision.py
# (scripts/make_photos.py picks them). Not needed by `make test`.
if [ "${1:-}" = "--photos" ]; then
  APT_PACKAGES+=(mate-backgrounds plasma-workspace-wallpapers lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 opencv-doc palapeli-data jigzo-data)
fi

if [ "${#APT_PACKAGES[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup_system: not root, skipping apt-get install of: ${APT_PACKAGES[*]}" >&2
  exit 0
fi
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# Node.js for runtimes/js (tests/runtimes/test_js_runtime.py, `make test`'s npm ci): this machine
# kind ships a Node.js 20 that dpkg may not know about, so ask for Debian's only when it is absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
