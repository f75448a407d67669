#!/usr/bin/env bash
# The layer-normalised LSTM kernels (src/model/lstm.c) against an independent
# float64 PyTorch computation (tests/torch/lstm_kernel_check.py): a 2-layer
# stack forward and backward, with and without residual, widths 8..128, up to
# 20 steps; output, dx, every weight gradient, dh0 and dc0 compared.
# Usage: test_lstm_kernel.sh LSTM_CASE WORKDIR
set -euo pipefail
CASE=$1
W=$2
T=$(cd "$(dirname "$0")" && pwd)
rm -rf "$W" && mkdir -p "$W"
/usr/bin/python3 "$T/lstm_kernel_check.py" "$CASE" "$W"
