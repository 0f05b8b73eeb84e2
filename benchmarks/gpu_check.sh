#!/usr/bin/env bash
# GPU checks (fp16 training step, NCCL, torch.compile, the training loop on CUDA) on a CUDA machine whose
# python3 has PyTorch. The project's other dependencies come as wheels in .whl/ (pure Python, or built for
# that machine's Python) when it has no package index; a prepared smoke dataset is expected in
# .gpu/data (python -m stylegan_v.prepare experiment=smoke paths.data_dir=.gpu/data).
#   bash benchmarks/gpu_check.sh [out.json]
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
export PYTHONUNBUFFERED=1
python3 benchmarks/gpu_check.py --data-dir .gpu/data --out "${1:-${OUT:-.gpu}/gpu_check.json}"
