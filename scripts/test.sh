#!/usr/bin/env bash
# The test suite: bash scripts/test.sh [pytest args]
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
source "$(dirname "$0")/env.sh"
python -m pytest -q "$@"
