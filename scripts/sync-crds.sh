#!/usr/bin/env bash
# Copy the generated CRDs (crds/*.yaml) into the Helm chart, byte for byte.
#   scripts/sync-crds.sh           copy (files gone from crds/ leave the chart too)
#   scripts/sync-crds.sh --check   exit 1 and name the files when the chart is out of date
# tests/chart/test_crds.py asserts the copies are identical. The chart also holds kopf's peering
# CRDs (kopf-peering.yaml), which are not generated and which this script leaves alone.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/crds"
dst="$root/helm/gameplay-analytics/crds"
shopt -s nullglob

CHART_ONLY="kopf-peering.yaml"

if [[ "${1:-}" == "--check" ]]; then
  if diff -r -q -x "$CHART_ONLY" "$src" "$dst" >/dev/null 2>&1; then
    echo "chart CRDs are in sync with crds/"
    exit 0
  fi
  diff -r -q -x "$CHART_ONLY" "$src" "$dst" >&2 || true
  echo "chart CRDs differ from crds/: run scripts/sync-crds.sh" >&2
  exit 1
fi

mkdir -p "$dst"
for stale in "$dst"/*; do
  [[ "$(basename "$stale")" == "$CHART_ONLY" || -e "$src/$(basename "$stale")" ]] || { rm -f "$stale"; echo "removed $(basename "$stale")"; }
done
files=("$src"/*.yaml)
if (( ${#files[@]} == 0 )); then
  echo "no CRDs in $src (generate them first)" >&2
  exit 1
fi
for f in "${files[@]}"; do
  cp "$f" "$dst/"
  echo "copied $(basename "$f")"
done
