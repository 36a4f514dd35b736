#!/usr/bin/env bash
# Builds the country-flags knowledge sources and task data (docs/data.md).
#   tools/flags/build.sh [--out DIR] [--image-size N] [--quick] [--npm-dir DIR]
# Installs what it reads: Debian packages through scripts/bootstrap.sh, npm packages from the
# committed lock file into DIR/npm (or --npm-dir; never globally). Deterministic and
# re-runnable: a second run re-renders nothing and rewrites no file whose bytes are right.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/data/flags"
size=32
quick=()
npm_dir=""

usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while (($#)); do
  case "$1" in
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --image-size) size="${2:?--image-size needs a number}"; shift 2 ;;
    --quick) quick=(--quick); shift ;;
    --npm-dir) npm_dir="${2:?--npm-dir needs a directory}"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "build.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ "$size" =~ ^[0-9]+$ ]] || { echo "build.sh: --image-size '$size' is not a number" >&2; exit 2; }
mkdir -p "$out"
out="$(cd "$out" && pwd)"
npm_dir="${npm_dir:-$out/npm}"
mkdir -p "$npm_dir"

"$root/scripts/bootstrap.sh"

# npm ci only when the installed tree does not come from this exact lock file.
stamp="$npm_dir/node_modules/.reveal-lock-sha256"
want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  cp "$here/package.json" "$here/package-lock.json" "$npm_dir/"
  echo "build.sh: installing npm packages into $npm_dir"
  (cd "$npm_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" > "$stamp"
fi

exec /usr/bin/python3 "$here/build.py" --npm "$npm_dir/node_modules" --out "$out" \
  --image-size "$size" "${quick[@]}"
