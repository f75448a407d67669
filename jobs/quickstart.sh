#!/usr/bin/env bash
# The main job: install, build, and run a short FPT training under mpirun
# (2 ranks: 2 pipeline stages) on the default task, Fashion-MNIST (from
# Debian's dataset-fashion-mnist), with the default backbone: the byte-level
# GPT-2 language model that fpt pretrained on English text from Debian packages
# (data/models/default.h5 -> lm-byte-12x128.h5; docs/RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash jobs/setup.sh

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MODEL=${MODEL:-data/models/default.h5}
DATA=build/data/fashion-mnist.h5
mkdir -p build/data
[ -f "$DATA" ] || build/fpt data fashion-mnist -o "$DATA"
RUN_DIR=${RUN_DIR:-runs/quickstart}
mpirun -np 2 --oversubscribe build/fpt train --model "$MODEL" --data "$DATA" \
  --stages 2 --micro-batches 2 --steps "${STEPS:-300}" --batch-size 16 --lr 1e-3 --seed 1 \
  --log-every 50 --checkpoint-every 100 --run-dir "$RUN_DIR" --resume auto
echo "quickstart: metrics in $RUN_DIR/metrics.jsonl, checkpoints in $RUN_DIR/checkpoints"
