#!/usr/bin/env bash
# Installs the Debian packages reveal needs. Idempotent: silent when everything is present.
#   scripts/bootstrap.sh            build, tests, demo
#   scripts/bootstrap.sh --bench    also the reference implementations (PyTorch, FAISS)
set -euo pipefail

core=(build-essential cmake pkg-config git
      libopenmpi-dev openmpi-bin librocksdb-dev libprotobuf-c-dev protobuf-c-compiler
      libopenblas-dev libstb-dev libcjson-dev libxxhash-dev libsentencepiece-dev
      clang libclang-rt-14-dev cppcheck clang-format python3 python3-numpy qemu-user)
data=(librsvg2-bin nodejs npm iso-flags-png-320x240 kgeography-data miscfiles python3-pil
      unicode-cldr-core wordnet-base ruby-countries)
bench=(python3-torch python3-faiss)

want=("${core[@]}" "${data[@]}")
if [[ "${1:-}" == "--bench" ]]; then want+=("${bench[@]}"); fi

missing=()
for p in "${want[@]}"; do
  # npm may come from outside Debian on some machines; a working command is enough.
  if [[ "$p" == nodejs || "$p" == npm ]] && command -v "${p/nodejs/node}" >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then exit 0; fi

echo "bootstrap: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
