#!/usr/bin/env bash
# portable_kernels: the layer checks on a CPU without AVX2 or FMA (qemu-x86_64 -cpu Nehalem), so
# that the baseline build of the elementwise kernels (training/layer_impl.h, TRN_HOT) is tested
# as well as the x86-64-v3 one this machine's CPU gets. Run from the build's tests directory.
set -uo pipefail
qemu=$(command -v qemu-x86_64) ||
  { echo "portable_kernels: qemu-x86_64 not found (Debian package qemu-user, scripts/bootstrap.sh)"; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "grad_layers" "grad_attention" "grad_losses" \
  "golden_attention attention_self attention_causal attention_cross rmsnorm mlp perceiver crossentropy"; do
  # shellcheck disable=SC2086 # a test and its arguments
  if ! "$qemu" -cpu Nehalem ./$t >"$log" 2>&1; then
    grep -v '^qemu-x86_64: warning' "$log" | tail -20
    echo "portable_kernels: FAIL: $t on a CPU without AVX2"
    exit 1
  fi
  grep -v '^qemu-x86_64: warning' "$log" | tail -1
  if [[ $t == grad_layers ]] && ! grep -q '^kernels baseline$' "$log"; then
    echo "portable_kernels: FAIL: the emulated CPU did not get the baseline kernels:"
    grep '^kernels' "$log"
    exit 1
  fi
done
echo "portable_kernels: ok (this CPU: $(./grad_layers | grep '^kernels'))"
