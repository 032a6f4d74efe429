#!/usr/bin/env bash
# The main job, offline: data → simulations → offline model family → evaluation → analysis → REPORT.md
#
#   bash scripts/reproduce.sh           # full run (≤ 20 min on 2 CPU cores), writes results/ (committed)
#   bash scripts/reproduce.sh --quick   # smoke run (≤ 3 min, what CI runs), writes runs/quick/
#
# Every stage skips work whose outputs are already complete (trained models, finished evaluation runs),
# so rerunning after a crash continues where it stopped. Delete runs/ to start from scratch.
# Evaluation runs are keyed by the models' weights: results left by other weights (e.g. the committed
# results/eval when this machine trained the family anew) are recomputed (--replace), never reused.
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
QUICK=""
case "${1:-}" in
  "") ;;
  --quick) QUICK=--quick ;;
  *) echo "error: unknown argument $1 (use --quick or nothing)" >&2; exit 2 ;;
esac
source "$(dirname "$0")/env.sh"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1   # the default job never reaches for a hub

if [[ -n "$QUICK" ]]; then
  OUT=runs/quick; FAMILY_RUN=runs/tinyworld-quick; FAMILY=tinyworld-quick
  FIGS=$OUT/figures; LIMIT=${LIMIT:-12}
else
  OUT=results; FAMILY_RUN=runs/tinyworld; FAMILY=tinyworld
  FIGS=$OUT/figures; LIMIT=${LIMIT:-}
fi
mkdir -p "$OUT" "$FIGS"
start=$SECONDS
stage() { echo; echo "=== [$((SECONDS - start))s] $*"; }

stage "1/6 data: rebuild, check against the release, variants, exports, Figure 3"
bash data_pipeline/run.sh
python -m data_pipeline.check --json "$OUT/check.json" > /dev/null
[[ -n "$QUICK" ]] && cp results/figures/fig3_neqa_stats.png "$FIGS/"

stage "2/6 simulations: Figure 5 and the Figure 6 grid"
bash simulation/run.sh $QUICK
[[ -n "$QUICK" ]] && cp runs/sentiment_quick/figures/fig[56]_* "$FIGS/"

stage "3/6 offline family: generate TinyWorld, train the ladder, fit loss scaling"
python -m simulation.family $QUICK --quiet

stage "4/6 evaluation: NeQA (six prompt methods), task 1 (zero-shot, cloze), task 2 (weak, strong) for every member; Figures 2 and 4"
FAMILIES=$FAMILY RESULTS=$OUT/eval LIMIT=$LIMIT EXTRA_ARGS=--replace bash eval_pipeline/run.sh

stage "5/6 analysis: trend shapes, measured task composition, accuracy along training"
python -m eval_pipeline.analyze trends "$OUT/eval"
python -m simulation.composition --results "$OUT/eval" --out-dir "$FIGS" > /dev/null
revisions=$(python -c "import sys; from eval_pipeline.registry import load_family
print(' '.join(sorted({r for m in load_family(sys.argv[1]).members for r in m.revisions})))" "$FAMILY")
for rev in $revisions; do   # every saved checkpoint, read the way these small models can be read (cloze)
  python -m eval_pipeline.evaluate --family "$FAMILY" --revision "$rev" --task neqa,task1 --prompt cloze \
    --output-dir "$OUT/trajectories" --no-progress --replace ${LIMIT:+--limit $LIMIT} > /dev/null
done
python -m eval_pipeline.analyze trajectories "$OUT/trajectories" --runs "$FAMILY_RUN"
for analysis in trends decompose slice-sandwich; do   # the papers' own numbers and released data
  python -m eval_pipeline.analyze "$analysis" --published --out-dir "$OUT/analysis" > /dev/null
done

stage "6/6 report"
python scripts/report.py --results "$OUT" --eval "$OUT/eval" --family-run "$FAMILY_RUN" \
  --family-figures "$([[ -n "$QUICK" ]] && echo "$FAMILY_RUN/results/figures" || echo "$FIGS")" \
  --check-json "$OUT/check.json"
echo "done in $((SECONDS - start))s: $OUT/REPORT.md"
