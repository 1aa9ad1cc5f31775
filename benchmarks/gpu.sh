#!/usr/bin/env bash
# The GPU figures of docs/performance.md, on a machine with a CUDA device, in one go:
#   bash benchmarks/gpu.sh [OUT]            (default OUT: bench-out/gpu)
# 1. the tests marked cuda (tests/test_cuda.py);
# 2. train_bench.py on cuda: the default objective, Ent-PPO with the shared value head (2 epochs x 4
#    minibatches) and TB, at batch 64, 256 and 1,024;
# 3. sample_bench.py on cuda at batch 256, 1,024 and 4,096 (no metric timing).
# Each part writes its own log under OUT; a failing part does not stop the next.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-out/gpu}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/device.txt" 2>&1
$py -c "import torch, torch_geometric; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'pyg', torch_geometric.__version__, torch.cuda.get_device_name(0))" >> "$out/device.txt" 2>&1

timeout 240 $py -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py > "$out/cuda_tests.log" 2>&1
echo "cuda tests: exit $?" >> "$out/cuda_tests.log"

shared=(--set objective.ppo_value_head=shared --set objective.ppo_epochs=2 --set objective.ppo_minibatches=4)
{
  for batch in 64 256 1024; do
    steps=5; [ "$batch" -ge 1024 ] && steps=3
    common=(--device cuda --steps "$steps" --warmup 2 --repeats 3 --set "train.batch_size=$batch" --set run.workers=1)
    echo "### default objective, batch $batch"
    timeout 120 $py benchmarks/train_bench.py "${common[@]}"
    echo "### entppo shared value head 2x4, batch $batch"
    timeout 120 $py benchmarks/train_bench.py "${common[@]}" "${shared[@]}"
    echo "### tb, batch $batch"
    timeout 120 $py benchmarks/train_bench.py "${common[@]}" --set objective.name=tb
  done
} > "$out/train_bench.log" 2>&1

{
  for batch in 256 1024 4096; do
    echo "### sample, batch $batch"
    timeout 90 $py benchmarks/sample_bench.py --device cuda --batch "$batch" --repeats 3 --no-metrics
  done
} > "$out/sample_bench.log" 2>&1
