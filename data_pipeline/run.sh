#!/usr/bin/env bash
# The NeQA data pipeline, end to end (all of it runs in well under a minute on a laptop CPU):
#   bash data_pipeline/run.sh [--quick] [--seed N] [--out-dir DIR] [--refresh]
# 1. rebuild NeQA from the vendored sources into DIR (default runs/data) and check the negation rules
#    against the published data_pipeline/neqa.jsonl;
# 2. task-1/task-2 variants of the published file (neqa_task1.jsonl, neqa_task2.jsonl) and of the published
#    normalised 100-item files (neqa_100_task2.jsonl), plus the agreement of our task-1 version of
#    neqa_100.jsonl with the published one;
# 3. exports (prize CSVs and lm-eval task YAMLs);
# 4. statistics (DIR/figures/fig3_neqa_stats.png).
# Everything is written under DIR, then compared byte for byte with the tracked copies in data_pipeline/
# (a difference is an error: the committed files no longer follow from the code). --refresh writes the
# tracked copies instead (data_pipeline/*.jsonl, data_pipeline/exports/, results/figures/fig3_neqa_stats.png):
# the one way this script changes tracked files. --quick is accepted for symmetry; nothing here is slow.
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
SEED=0; OUT=runs/data; REFRESH=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) shift ;;
    --refresh) REFRESH=1; shift ;;
    --seed) SEED="$2"; shift 2 ;;
    --out-dir|--output-dir) OUT="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
source "$(dirname "$0")/../scripts/env.sh"
if [[ "$REFRESH" == 1 ]]; then VARIANTS=data_pipeline; FIG=results/figures; else VARIANTS=$OUT; FIG=$OUT/figures; fi
mkdir -p "$OUT" "$VARIANTS/exports" "$FIG"
set -x
python -m data_pipeline.build --seed "$SEED" --out "$OUT/neqa_rebuilt.jsonl" --check data_pipeline/neqa.jsonl
python -m data_pipeline.variants data_pipeline/neqa.jsonl --out-dir "$VARIANTS"
python -m data_pipeline.variants data_pipeline/neqa_100_normalized.jsonl --out-dir "$VARIANTS" \
  --plain data_pipeline/neqa_100_normalized_nonnegated.jsonl --name neqa_100
python -m data_pipeline.variants data_pipeline/neqa_100.jsonl --out-dir "$OUT/compare" \
  --compare data_pipeline/neqa_100_nonnegated.jsonl
# the YAMLs name their data relative to data_pipeline/exports, wherever they are written
python -m data_pipeline.export data_pipeline/neqa.jsonl --task2 "$VARIANTS/neqa_task2.jsonl" \
  --out-dir "$VARIANTS/exports" --data-path ../neqa.jsonl
python -m data_pipeline.stats data_pipeline/neqa.jsonl --out "$FIG/fig3_neqa_stats.png"
set +x
if [[ "$REFRESH" == 0 ]]; then   # what is tracked must be what the code makes
  status=0
  for f in neqa_task1.jsonl neqa_task2.jsonl neqa_100_task2.jsonl $(cd data_pipeline && ls -d exports/*); do
    cmp -s "$OUT/$f" "data_pipeline/$f" || { echo "error: $OUT/$f differs from the tracked data_pipeline/$f (rerun with --refresh to update it)" >&2; status=1; }
  done
  [[ $status == 0 ]] && echo "the rebuilt variants and exports are identical to the tracked ones in data_pipeline/"
  exit $status
fi
