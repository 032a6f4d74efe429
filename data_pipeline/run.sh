#!/usr/bin/env bash
# The NeQA data pipeline, end to end (all of it runs in well under a minute on a laptop CPU):
#   bash data_pipeline/run.sh [--quick] [--seed N]
# 1. rebuild NeQA from the vendored sources into runs/data/ and check the negation rules
#    against the published data_pipeline/neqa.jsonl;
# 2. task-1/task-2 variants of the published file (data_pipeline/neqa_task1.jsonl, neqa_task2.jsonl)
#    and of the published normalised 100-item files (data_pipeline/neqa_100_task2.jsonl), plus the
#    agreement of our task-1 version of neqa_100.jsonl with the published one;
# 3. exports (data_pipeline/exports/: prize CSVs and lm-eval task YAMLs);
# 4. statistics (results/figures/fig3_neqa_stats.png).
# --quick is accepted for symmetry with the other stages; nothing here is slow, so it skips nothing.
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
SEED=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) shift ;;
    --seed) SEED="$2"; shift 2 ;;
    *) echo "error: unknown argument $1" >&2; exit 2 ;;
  esac
done
source "$(dirname "$0")/../scripts/env.sh"
set -x
python -m data_pipeline.build --seed "$SEED" --out runs/data/neqa_rebuilt.jsonl --check data_pipeline/neqa.jsonl
python -m data_pipeline.variants data_pipeline/neqa.jsonl
python -m data_pipeline.variants data_pipeline/neqa_100_normalized.jsonl \
  --plain data_pipeline/neqa_100_normalized_nonnegated.jsonl --name neqa_100
python -m data_pipeline.variants data_pipeline/neqa_100.jsonl --out-dir runs/data \
  --compare data_pipeline/neqa_100_nonnegated.jsonl
python -m data_pipeline.export data_pipeline/neqa.jsonl --task2 data_pipeline/neqa_task2.jsonl \
  --out-dir data_pipeline/exports
python -m data_pipeline.stats data_pipeline/neqa.jsonl --out results/figures/fig3_neqa_stats.png
