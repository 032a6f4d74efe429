#!/usr/bin/env bash
# Scoring throughput of this repository against lm-evaluation-harness (offline, CPU, float32).
#   bash benchmarks/run.sh                      # default: GPT-2-small shape, 48 items, 3 prompts, 2 runs per side
#   bash benchmarks/run.sh --items 16 --repeats 1 --threads 1
# Creates or reuses .venv-bench (the main requirements plus lm-eval and accelerate); set NEQA_BENCH_VENV to
# use another folder. Arguments go to python -m benchmarks.score_throughput (see --help).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${NEQA_BENCH_VENV:-$ROOT/.venv-bench}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[bench] creating virtual environment in $VENV" >&2
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.requirements.sha256"
WANT="$(cat "$ROOT/requirements.txt" "$ROOT/benchmarks/requirements.txt" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "[bench] installing benchmarks/requirements.txt (first run takes a few minutes)" >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
  (cd "$ROOT/benchmarks" && "$VENV/bin/python" -m pip install --quiet -r requirements.txt) >&2
  echo "$WANT" > "$STAMP"
fi
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
cd "$ROOT"
exec "$VENV/bin/python" -m benchmarks.score_throughput "$@"
