#!/usr/bin/env bash
# Install PyTorch for this machine into the Python given as $1, and say which build it chose.
#   - an NVIDIA GPU (nvidia-smi works): the default build from the package index (CUDA);
#   - otherwise the CPU-only build: from the PyTorch CPU index when it answers (a few hundred
#     MB instead of gigabytes of nvidia-* wheels), else whatever the configured index serves
#     (on some machines that is already a CPU wheel).
# TORCH_SPEC overrides the version (default torch==2.13.0).
set -euo pipefail
py="$1"
spec="${TORCH_SPEC:-torch==2.13.0}"
cpu_index="https://download.pytorch.org/whl/cpu"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
  echo "torch: an NVIDIA GPU is present, installing $spec (CUDA build) from the package index"
  "$py" -m pip install --quiet "$spec"
elif "$py" - "$cpu_index" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1] + "/", timeout=5)
except Exception:
    sys.exit(1)
PY
then
  echo "torch: no NVIDIA GPU, installing the CPU build of $spec from the PyTorch CPU index"
  "$py" -m pip install --quiet "$spec" --index-url "$cpu_index"
else
  echo "torch: no NVIDIA GPU and the PyTorch CPU index does not answer: installing $spec from the configured package index"
  "$py" -m pip install --quiet "$spec"
fi
"$py" -c "import torch; print('torch', torch.__version__, '(CUDA available)' if torch.cuda.is_available() else '(CPU)')"
