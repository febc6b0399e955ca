#!/usr/bin/env bash
# Every GPU measurement issue #14 asks for, in one call on a machine with one CUDA GPU (about 10 minutes on
# an H100 or H200): the CUDA tests, the P1 benchmark on the GPU (plain loop; 32 to 16,384 members in fp32 and
# TF32 against their matmul bounds), and the full comparison spec's wall time.
#
#   bash benchmarks/gpu_session.sh DATA_DIR [OUT_DIR]
#
# DATA_DIR holds mnist/ and fashion-mnist/ (the checksummed IDX files); OUT_DIR (default ./gpu-session) gets
# the logs and the comparison's results. Run it from the repository root with losslab installed
# (pip install -e '.[dev]'); the device tool's machines already have torch with CUDA.
set -u
data=${1:?give the folder with mnist/ and fashion-mnist/}
out=${2:-gpu-session}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))" | tee -a "$out/gpu.txt"
echo "== CUDA tests"
python -m pytest -q -m cuda -p no:cacheprovider tests/ 2>&1 | tail -15 | tee "$out/cuda-tests.txt"
echo "== P1 on the GPU"
python benchmarks/p1_population.py --device cuda 2>&1 | tee "$out/p1-cuda.txt"
echo "== the full comparison on the GPU"
/usr/bin/time -f "comparison wall %e s" losslab run comparison --device cuda --data-dir "$data" --out "$out/comparison" \
  2>&1 | tee "$out/comparison.txt"
