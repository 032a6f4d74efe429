#!/usr/bin/env bash
# The test suite: bash scripts/test.sh [pytest args]
source "$(dirname "$0")/env.sh"
python -m pytest -q "$@"
