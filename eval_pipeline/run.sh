#!/usr/bin/env bash
# Evaluate model families on NeQA (the paper's five prompt methods and cloze), task 1 (zero-shot, cloze) and task 2 (weak and strong
# prompt), then draw Figures 2 and 4.
#
#   bash eval_pipeline/run.sh                          # the offline family (train it first: python -m simulation.family)
#   FAMILIES=pythia,gpt2 bash eval_pipeline/run.sh     # hub models (needs the Hugging Face hub)
#   FAMILIES=my_family LIMIT=20 bash eval_pipeline/run.sh
#
# Environment knobs:
#   FAMILIES   comma-separated names of eval_pipeline/families/*.yaml (default: tinyworld)
#   RESULTS    results folder (default: results/eval)
#   LIMIT      evaluate only the first LIMIT items of each test set (default: all)
#   DATA_NEQA, DATA_TASK1, DATA_TASK2   test-set files overriding the family's `data:` mapping (and the
#              NeQA release used when the family has none)
#   X          x axis of the figures: auto | params | flops | order (default: auto = order where members share
#              a size or the paper's curves are drawn, else params)
#   PUBLISHED  1 to compare with the paper: its curves are drawn beside the new ones, and the test sets default
#              to the paper's 100-item files (data_pipeline/neqa_100*.jsonl) unless DATA_* say otherwise
#   NEQA_PROMPTS, TASK1_PROMPTS, TASK2_PROMPTS   comma-separated prompt methods per task (defaults: all = the
#              five methods and cloze; zeroshot,cloze; weak,strong), e.g. for a tuned family only the prompts
#              that matter: NEQA_PROMPTS=zeroshot,zeroshot_hint,fewshot,cloze; "none" skips the task
#   EXTRA_ARGS more arguments for every `python -m eval_pipeline.evaluate` call (e.g. "--device cuda")
# Families with `backend: published` are not runnable; they are skipped (use PUBLISHED=1 to plot them).
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
[[ $# -eq 0 ]] || { echo "error: unknown argument $1 (settings are environment variables: see --help)" >&2; exit 2; }
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

FAMILIES="${FAMILIES:-tinyworld}"
RESULTS="${RESULTS:-results/eval}"
X="${X:-auto}"
if [[ "${PUBLISHED:-0}" == 1 ]]; then   # like with like: the 100 items the paper's figures were computed on
  DATA_NEQA="${DATA_NEQA:-data_pipeline/neqa_100.jsonl}"
  DATA_TASK1="${DATA_TASK1:-data_pipeline/neqa_100_nonnegated.jsonl}"
  DATA_TASK2="${DATA_TASK2:-data_pipeline/neqa_100_task2.jsonl}"
fi

common=(--output-dir "$RESULTS")
[[ -n "${LIMIT:-}" ]] && common+=(--limit "$LIMIT")
# shellcheck disable=SC2206
[[ -n "${EXTRA_ARGS:-}" ]] && common+=(${EXTRA_ARGS})

run_eval() {  # task prompt; DATA_<TASK> (e.g. DATA_NEQA) overrides the test set
    local task=$1 prompt=$2 var="DATA_${1^^}" extra=()
    if [[ -n "${!var:-}" ]]; then extra=(--data "${!var}"); fi
    echo "== $family: $task ($prompt)"
    python -m eval_pipeline.evaluate --family "$family" --task "$task" --prompt "$prompt" "${extra[@]}" "${common[@]}"
}

IFS=',' read -ra families <<< "$FAMILIES"
for family in "${families[@]}"; do
    if [[ ! -f "eval_pipeline/families/${family}.yaml" && ! -f "runs/${family}/family.yaml" && ! -f "$family" ]]; then
        if [[ "$family" == tinyworld* ]]; then
            echo "error: runs/${family}/family.yaml not found; train the offline family first: python -m simulation.family" >&2
        else
            echo "error: no family '$family' (see: python -m eval_pipeline.registry)" >&2
        fi
        exit 2
    fi
    python -m eval_pipeline.registry "$family" > /dev/null || exit 2   # a bad YAML fails here, naming file and field
    backend=$(python -c "import sys; from eval_pipeline.registry import load_family; print(load_family(sys.argv[1]).backend)" "$family")
    if [[ "$backend" == published ]]; then
        echo "skipping $family: published numbers only (plot them with PUBLISHED=1)"
        continue
    fi
    # "none" skips a task
    [[ "${NEQA_PROMPTS:-}" == none ]] || run_eval neqa "${NEQA_PROMPTS:-all}"   # all: the five methods and cloze
    [[ "${TASK1_PROMPTS:-}" == none ]] || run_eval task1 "${TASK1_PROMPTS:-zeroshot,cloze}"
    [[ "${TASK2_PROMPTS:-}" == none ]] || run_eval task2 "${TASK2_PROMPTS:-weak,strong}"
done

plot_args=("$RESULTS" --x "$X")
[[ "${PUBLISHED:-0}" == 1 ]] && plot_args+=(--published)
python -m eval_pipeline.plot "${plot_args[@]}"
