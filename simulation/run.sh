#!/usr/bin/env bash
# Figure 5 and Figure 6: bash simulation/run.sh [--quick]
#   Figure 5: the task-decomposition curves (the measured composition: python -m simulation.composition --results DIR).
#   Figure 6: train the size × negation-ratio grid on the generated sentiment corpus, then evaluate it.
# --quick: 2 sizes × 2 ratios, 150 steps (a smoke test, ~30 s of training), into runs/sentiment_quick.
# Without it: 5 sizes × 4 ratios, 300 steps, into runs/sentiment; figures into results/figures (committed).
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
case "${1:-}" in ""|--quick) ;; *) echo "error: unknown argument $1 (use --quick or nothing)" >&2; exit 2 ;; esac
source "$(dirname "$0")/../scripts/env.sh"
if [[ "${1:-}" == "--quick" ]]; then
  RUNS=runs/sentiment_quick; OUT=runs/sentiment_quick/figures
  SIZES="1 3"; RATIOS="0 0.1"; STEPS=150
else
  RUNS=runs/sentiment; OUT=results/figures
  SIZES="0 1 2 3 4"; RATIOS="0 0.01 0.05 0.2"; STEPS=300
fi
python -m simulation.composition --out-dir "$OUT"
# one process for the whole grid (imports cost seconds); one thread is faster for models this small
python -m simulation.sentiment_train --size $SIZES --ratio $RATIOS --steps $STEPS --threads 1 --quiet --runs "$RUNS"
python -m simulation.sentiment_eval --runs "$RUNS" --out-dir "$OUT"
