#!/usr/bin/env bash
# Figure 5 and Figure 6: bash simulation/run.sh [--quick] [OUT_DIR]
#   Figure 5: the task-decomposition curves (the measured composition: python -m simulation.composition --results DIR).
#   Figure 6: pretrain the offline ladder (5 GPT-2-shaped sizes, LM loss on generated reviews), fine-tune every
#   size with the LM loss on reviews + verdict (the verdict word weighted x30: python -m simulation.sentiment_plateau
#   says why) at r = 0, 0.01, 0.05, 0.1, 0.2 with 3 seeds, score and plot.
# --quick: 3 sizes x 2 ratios x 2 seeds, tiny budgets (a smoke run, one process) into runs/sentiment_quick.
# Runs go to runs/sentiment (runs/sentiment_quick); the figures and CSVs to OUT_DIR, or $OUT, or RUNS/figures.
# JOBS (default 2) training/evaluation processes of one thread each. The paper's own run (hub and GPU):
#   python -m simulation.sentiment_train --init hub --source sst2 --out-dir runs/sentiment_gpt2 \
#     --models distilgpt2,gpt2,gpt2-medium,gpt2-large,gpt2-xl && python -m simulation.sentiment_eval --runs runs/sentiment_gpt2
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
QUICK=""
if [[ "${1:-}" == "--quick" ]]; then QUICK=1; shift; fi
case "${1:-}" in -*) echo "error: unknown argument $1 (use --quick and/or an output folder)" >&2; exit 2 ;; esac
[[ $# -gt 1 ]] && { echo "error: too many arguments (use --quick and/or an output folder)" >&2; exit 2; }
source "$(dirname "$0")/../scripts/env.sh"
JOBS="${JOBS:-2}"
if [[ -n "$QUICK" ]]; then
  RUNS=runs/sentiment_quick; GRID=(--sizes 0 1 2 --ratio 0 0.2 --seeds 0 1 --pretrain-steps 20 --n-train 100); NTEST=60; JOBS=1
else
  RUNS=runs/sentiment; GRID=(); NTEST=200
fi
OUT="${1:-${OUT:-$RUNS/figures}}"
python -m simulation.composition --out-dir "$OUT"
python -m simulation.sentiment_train "${GRID[@]}" --out-dir "$RUNS" --jobs "$JOBS" --threads 1 --quiet
python -m simulation.sentiment_eval --runs "$RUNS" --out-dir "$OUT" --n-test "$NTEST" --jobs "$JOBS" --threads 1
