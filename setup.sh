#!/usr/bin/env bash
# Set up this checkout on a fresh machine: a virtualenv in .venv with PyTorch and the suite
# (editable, with the test extras). `--slurm` also installs and starts a local SLURM cluster
# (root on Debian 12; see slurm/README.md). Safe to run again: it only does what is missing.
set -euo pipefail
case "${1:-}${2:+ $2}" in  # before anything is installed: `setup.sh --help` must not install
    "" | --slurm) ;;
    -h | --help) echo "usage: bash setup.sh [--slurm]  (a virtualenv in .venv with the suite; --slurm also a local SLURM cluster)"; exit 0 ;;
    *) echo "usage: bash setup.sh [--slurm]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")"

python=${PYTHON:-python3}
# A venv without pip is remade: Debian's python3 without python3-venv leaves .venv/bin/python behind
# when it stops for the missing ensurepip, and a second run would then fail at pip, not say why.
.venv/bin/python -m pip --version >/dev/null 2>&1 || "$python" -m venv --clear .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# PyTorch first and explicitly: a bare range would let pip pick a multi-GB build from the index.
# Override with TORCH_PACKAGES="torch==X torchvision==Y" for another platform or CUDA version.
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
    # shellcheck disable=SC2086
    .venv/bin/python -m pip install --quiet ${TORCH_PACKAGES:-torch==2.14.1 torchvision==0.29.1}
fi
.venv/bin/python -m pip install --quiet -e '.[dev]'

if [ "${1:-}" = "--slurm" ]; then
    bash slurm/local-cluster.sh up
fi
echo "setup done: .venv/bin/suite --help"
