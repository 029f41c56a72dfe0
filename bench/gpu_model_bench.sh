#!/usr/bin/env bash
# The GPU figures for bench/model_bench.py in one prepared run (for a lent H200 or any CUDA box).
# Usage: bash bench/gpu_model_bench.sh CONFIG_BASE_JSON OUT_DIR   (python3 with torch + transformers)
set -uo pipefail
config=${1:?config_base.json}
out=${2:-.}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/gpu.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$out/gpu.txt"
for batch in 8 16; do
  timeout 240 python3 bench/model_bench.py --config "$config" --device cuda --batch "$batch" --timed-steps 10 \
    --json "$out/base_cuda_b$batch.json" 2>&1 | tee "$out/base_cuda_b$batch.txt"
done
timeout 300 python3 bench/model_bench.py --config "$config" --device cuda --batch 8 --timed-steps 10 --compile \
  --json "$out/base_cuda_b8_compiled.json" 2>&1 | tail -8 | tee "$out/base_cuda_b8_compiled.txt"
