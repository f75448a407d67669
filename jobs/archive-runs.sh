#!/bin/bash
# Keep what a campaign finished beyond the machine it ran on: copy each
# finished run's small files (metrics.jsonl, config.yaml, checkpoints/best.json:
# what analysis/ reads) and each built backbone (NAME.h5, with its run's small
# files) into ARCHIVE, to commit. jobs/campaign.sh restores the archive into a
# new machine's campaign directory before it submits, so those runs are skipped
# there and the tables are made from all of them. An unfinished run with a
# checkpoint keeps its small files, latest checkpoint and best.h5 (the weights
# its test figure is scored on at the end) in ARCHIVE/inflight,
# and so does a backbone being made (ARCHIVE/inflight/backbones/NAME-run, with
# its best.h5 and shape.h5), which the next machine's campaign resumes
# (docs/SLURM.md).
#   jobs/archive-runs.sh                          # runs/campaign -> docs/results/campaign
#   jobs/archive-runs.sh runs/pilot docs/results/pilot
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=jobs/lib/fpt-job.sh
source jobs/lib/fpt-job.sh
fpt_archive "${1:-runs/campaign}" "${2:-docs/results/campaign}"
