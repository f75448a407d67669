#!/bin/bash
# The whole campaign of jobs/experiments.tsv on Slurm, as users run it
# (docs/RESULTS.md, "The campaign"; docs/SLURM.md, "The campaign"):
#   1. checks the file (jobs/experiment.sbatch --check): a bad line, an unknown
#      arm or backbone, or one cell with two protocols submits nothing;
#   2. submits jobs/data.sbatch if a dataset file the lines need is missing;
#   3. submits jobs/backbone.sbatch for each built backbone (bit, image, mlm)
#      the lines name whose file is not there yet (after the data job), unless
#      a job of an earlier campaign.sh is still making it (then it waits for
#      that one: the backbone jobs carry BACKBONE_DIR as their --comment);
#   4. submits jobs/experiment.sbatch as one array per backbone job of 3 that
#      its lines need, all after the data job of 2 (--dependency=afterok on
#      them; the lines of the shipped backbone wait for no backbone), each at
#      most THROTTLE (2) at once,
#      one rank each: if a job fails, the arrays that need it never start
#      (squeue shows DependencyNeverSatisfied; scancel them, fix, run this
#      again). Array index i is line i of PARAMS in every array.
# It prints one line per job: "data JOBID", "backbone NAME JOBID", "array JOBID".
# Run it from anywhere; jobs are submitted from the repository root, and the
# directories (CAMPAIGN_DIR ...) are relative to it. Running it again is safe
# once the previous campaign's jobs are gone: finished runs and existing
# backbones are skipped, the others resume from their checkpoints.
#   jobs/campaign.sh                               # everything, into runs/campaign
#   CAMPAIGN_DIR=runs/c2 THROTTLE=1 jobs/campaign.sh
#   DRY_RUN=1 jobs/campaign.sh                     # print the sbatch commands only
# Environment: PARAMS (jobs/experiments.tsv), CAMPAIGN_DIR (runs/campaign),
# EXP_DIR ($CAMPAIGN_DIR/exp), BACKBONE_DIR ($CAMPAIGN_DIR/backbones), LOG_DIR
# ($CAMPAIGN_DIR/logs: the jobs' output files), ARCHIVE (docs/results/campaign:
# finished runs and built backbones of earlier machines: the runs PARAMS names
# with its protocol are restored into EXP_DIR, and the backbones into
# BACKBONE_DIR, first, so they are skipped; unfinished runs with their latest
# checkpoint, so they resume; none: off), DATA_DIR (data), MODEL (the
# shipped backbone), THROTTLE (2), SBATCH_ARGS (extra options for every sbatch),
# FORCE=1 (submit although jobs named fpt-exp, fpt-data or fpt-backbone* are queued).
# The jobs inherit this environment (sbatch --export=ALL), so the knobs of
# jobs/backbone.sbatch (STEPS, ...) apply to the backbone jobs.
set -euo pipefail
# A relative PARAMS is the caller's; the directories below are relative to the repository root.
if [ -n "${PARAMS:-}" ] && [[ $PARAMS != /* ]] && [ -e "$PARAMS" ]; then PARAMS=$(pwd)/$PARAMS; fi
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PARAMS=${PARAMS:-jobs/experiments.tsv}
export CAMPAIGN_DIR=${CAMPAIGN_DIR:-runs/campaign}
export EXP_DIR=${EXP_DIR:-$CAMPAIGN_DIR/exp}
export BACKBONE_DIR=${BACKBONE_DIR:-$CAMPAIGN_DIR/backbones}
export DATA_DIR=${DATA_DIR:-data}
export FPT_ROOT=$ROOT
ARCHIVE=${ARCHIVE:-docs/results/campaign}
LOG_DIR=${LOG_DIR:-$CAMPAIGN_DIR/logs}
THROTTLE=${THROTTLE:-2}
say() { echo "campaign: $*" >&2; }
die() {
  say "error: $*"
  exit 1
}
[[ $THROTTLE =~ ^[1-9][0-9]*$ ]] || die "THROTTLE must be a positive number, not '$THROTTLE'"
[ -n "${DRY_RUN:-}" ] || command -v sbatch >/dev/null || die "no sbatch on PATH (is Slurm set up? SLURM_CONF?)"
# A second campaign beside a running one would start the same runs twice (fpt
# refuses the second on a run directory's lock, and that task fails).
# A backbone job still making its backbone is not in the way: the arrays wait
# for it (below) instead of a second job for the same run.
if [ -z "${DRY_RUN:-}${FORCE:-}" ] &&
  busy=$(squeue -h -u "$(id -un)" -o '%i %j' 2>/dev/null | grep -E ' fpt-(exp|data)') && [ -n "$busy" ]; then
  die "campaign jobs are still queued or running ($(awk '{ print $1 }' <<<"$busy" | sort -u | tr '\n' ' ')): wait for them or scancel them (FORCE=1 submits anyway)"
fi

# 1. The file.
if ! out=$(bash jobs/experiment.sbatch --check 2>&1); then
  grep 'error' <<<"$out" | sed 's/^.*fpt-job\[[^]]*\]: error: /campaign: error: /' >&2
  die "$PARAMS: not submitted"
fi
# shellcheck source=jobs/lib/fpt-job.sh
source jobs/lib/fpt-job.sh
n=$(fpt_exp_count "$PARAMS")
[ "$n" -gt 0 ] || die "$PARAMS has no run lines"
# What earlier machines finished (jobs/archive-runs.sh): skipped, not run again.
if [ -z "${DRY_RUN:-}" ] && [ "$ARCHIVE" != none ]; then
  fpt_restore "$ARCHIVE" "$EXP_DIR" "$BACKBONE_DIR" "$PARAMS" | sed 's/^/campaign: /' >&2
fi

# What the lines need: dataset files and built backbones.
cols() { # cols: "task backbone" per line (the backbone column or the arm's default)
  tail -n +2 "$PARAMS" | tr -d '\r' | awk -F'\t' -v h="$(sed -n 1p "$PARAMS" | tr -d '\r')" '
    BEGIN { n = split(h, H, "\t"); for (i = 1; i <= n; i++) C[H[i]] = i }
    NF == 0 { next }
    {
      b = C["backbone"] ? $C["backbone"] : "-"; k = $C["arm"]; sub(/@.*/, "", k)
      if (b == "" || b == "-") b = (k == "bit" || k == "image" || k == "mlm") ? k : "default"
      print $C["task"], b
    }'
}
need_data=()
for t in $(cols | cut -d' ' -f1 | sort -u); do
  case $t in
  fashion-mnist) [ -e "$DATA_DIR/fashion-mnist.h5" ] || need_data+=("$t") ;;
  listops | listops-x2) [ -e "$DATA_DIR/listops.h5" ] || need_data+=("$t") ;;
  pfam) [ -e "$DATA_DIR/pfam-256.h5" ] || need_data+=("$t") ;;
  esac
done
need_bb=()
for b in $(cols | cut -d' ' -f2 | sort -u); do
  # shellcheck disable=SC2086 # a list of words
  if fpt__in "$b" $FPT_BACKBONES && [ ! -e "$(fpt_backbone_file "$b")" ]; then need_bb+=("$b"); fi
  # A backbone given as a path is nobody's job to make: it must be there now.
  if [[ $b == */* ]] && [ ! -e "$b" ]; then
    die "$PARAMS: backbone file $b (line $(($(cols | cut -d' ' -f2 | grep -nxF -- "$b" | head -1 | cut -d: -f1) + 1))) not found: not submitted"
  fi
done
if printf '%s\n' "${need_bb[@]}" | grep -qx image && [ ! -e "$DATA_DIR/fashion-mnist.h5" ] &&
  ! printf '%s\n' "${need_data[@]}" | grep -qx fashion-mnist; then
  need_data+=(fashion-mnist)
fi
if cols | cut -d' ' -f2 | grep -qx default && [ ! -e "$(fpt_backbone_file default)" ]; then
  die "the shipped backbone $(fpt_backbone_file default) is missing (set MODEL=...)"
fi

# 2-4. Submit; if a submission fails, cancel what this run submitted.
submitted=()
cleanup() {
  if [ ${#submitted[@]} -gt 0 ]; then
    say "cancelling the jobs submitted so far: ${submitted[*]}"
    scancel "${submitted[@]}" 2>/dev/null || true
  fi
}
submit() { # submit NAME SBATCH-ARGS...: prints the job id
  local id name=$1
  shift
  if [ -n "${DRY_RUN:-}" ]; then
    echo "${TASKS:+TASKS=\"$TASKS\" }${BACKBONE:+BACKBONE=$BACKBONE }sbatch --parsable --export=ALL ${SBATCH_ARGS:+$SBATCH_ARGS }$*" >&2
    echo "dry-$name"
    return 0
  fi
  # shellcheck disable=SC2086 # SBATCH_ARGS: extra options, split into words
  if ! id=$(sbatch --parsable --export=ALL ${SBATCH_ARGS:-} "$@" 2>&1); then
    say "error: sbatch $*: $id"
    cleanup
    exit 1
  fi
  id=${id%%;*}
  submitted+=("$id")
  echo "$id"
}
[ -n "${DRY_RUN:-}" ] || mkdir -p "$LOG_DIR" "$EXP_DIR" "$BACKBONE_DIR"
data_id=""
if [ ${#need_data[@]} -gt 0 ]; then
  data_id=$(TASKS="${need_data[*]}" submit data --output="$LOG_DIR/%x-%j.out" jobs/data.sbatch)
  echo "data $data_id"
fi
# Backbone jobs carry the backbone directory as their comment, so that a later
# campaign.sh finds the one still making NAME.h5 there and waits for it.
bb_tag="fpt-campaign:$ROOT/$BACKBONE_DIR"
inflight_backbone() { # inflight_backbone NAME: the queued or running job making NAME in BACKBONE_DIR
  [ -z "${DRY_RUN:-}" ] || return 0
  squeue -h -u "$(id -un)" -o '%i|%j|%k' 2>/dev/null |
    awk -F'|' -v j="fpt-backbone-$1" -v k="$bb_tag" '$2 == j && $3 == k { print $1; exit }'
}
declare -A bb_job=()
for b in "${need_bb[@]}"; do
  id=$(inflight_backbone "$b")
  if [ -n "$id" ]; then
    say "backbone $b: job $id is making it already; the lines that need it wait for that job"
  else
    id=$(BACKBONE=$b submit "backbone-$b" --job-name="fpt-backbone-$b" --comment="$bb_tag" \
      --output="$LOG_DIR/%x-%j.out" ${data_id:+--dependency="afterok:$data_id"} jobs/backbone.sbatch)
    echo "backbone $b $id"
  fi
  bb_job[$b]=$id
done
# One array per backbone job a line waits for, so that a line never waits for
# a backbone it does not use (the lines of the shipped backbone start at once,
# while a backbone trains for hours). Array index i is line i in each of them.
# The data job (minutes) is waited for by every array: were the lines without
# data an array of their own, Slurm would run all of them first (the older
# array goes first), not the lines in the file's order.
declare -A group=()
i=0
while read -r _ b; do
  d=()
  [ -z "$data_id" ] || d+=("$data_id")
  [ -z "${bb_job[$b]:-}" ] || d+=("${bb_job[$b]}")
  key=$(
    IFS=:
    echo "${d[*]:-none}"
  )
  group[$key]+="$i "
  i=$((i + 1))
done < <(cols)
ranges() { # ranges N...: ascending indices as Slurm's --array list (0-2,5)
  awk '{ for (i = 1; i <= NF; i++) { if (i > 1 && $i == p + 1) { p = $i; continue }
           if (i > 1) o = o (s == p ? s : s "-" p) ","; s = p = $i }
         print o (s == p ? s : s "-" p) }' <<<"$*"
}
waits=()
while read -r key; do
  dep=()
  [ "$key" = none ] || { dep=(--dependency="afterok:$key") && waits+=("$key"); }
  id=$(submit array --array="$(ranges "${group[$key]}")%$THROTTLE" --ntasks=1 --output="$LOG_DIR/%x-%A_%a.out" \
    "${dep[@]}" jobs/experiment.sbatch)
  echo "array $id"
done < <(
  [ -z "${group[none]+set}" ] || echo none # the lines that wait for nothing first
  printf '%s\n' "${!group[@]}" | grep -vx none | sort
)
say "$n runs of $PARAMS into $EXP_DIR in ${#group[@]} array(s), at most $THROTTLE at once each${waits[*]:+, some after job(s) ${waits[*]}}; logs in $LOG_DIR"
say "watch: squeue -o '%.12i %.9T %.24r %j'; tables: analysis/results_table.py $EXP_DIR --params $PARAMS"
