# shellcheck shell=bash
# jobs/lib/fpt-job.sh: the shared part of every jobs/*.sbatch script (source it).
#
# What it does on `source`:
#   - FPT_ROOT: the repository this file sits in (the sbatch scripts source it
#     from $FPT_ROOT, default $SLURM_SUBMIT_DIR, so it is the submit directory).
#   - FPT: the fpt binary: default $FPT_ROOT/build/fpt in a repository
#     checkout, P/bin/fpt in an installation (FPT_ROOT = P/share/fpt), else
#     the fpt on PATH (made absolute).
#   - FPT_MODELS: the shipped models, default $FPT_ROOT/data/models (the jobs'
#     default MODEL is $FPT_MODELS/default.h5).
#   - Open MPI as root: OMPI_ALLOW_RUN_AS_ROOT{,_CONFIRM}=1, only when uid is 0.
#   - OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK (threads per rank; 1 if unset).
# Functions:
#   fpt_log MSG...                 one timestamped line on stdout (the job's output file)
#   fpt_die MSG...                 log, exit 1 (a real failure: never requeued)
#   fpt_need FILE HINT             fail unless FILE exists; HINT says how to make it
#   fpt_need_model FILE            the same for a backbone model file
#   fpt_data TASK FILE             fail unless FILE exists, or make it if fpt can
#                                  without a download (fashion-mnist, pfam, listops)
#   fpt_task_args TASK             sets the array FPT_TASK_ARGS: --task T (bit tasks)
#                                  or --data $DATA_DIR/T.h5 (checked with fpt_data)
#   fpt_sweep_line FILE INDEX      sets SWEEP_TASK SWEEP_LR SWEEP_SEED from a TSV line
#   fpt_exp_count FILE             run lines of an experiments file (jobs/experiments.tsv)
#   fpt_exp_line FILE INDEX        parse and check one of its lines: sets EXP_TASK EXP_ARM
#                                  EXP_KIND EXP_SEED EXP_STEPS EXP_BATCH EXP_LR
#                                  EXP_EVAL_EVERY EXP_PATIENCE EXP_BACKBONE EXP_WHERE
#   fpt_backbone_file NAME         default -> $MODEL, bit|image|mlm -> $BACKBONE_DIR/NAME.h5
#   fpt_archive CAMPAIGN_DIR ARCHIVE   copy what a campaign finished into ARCHIVE (to commit)
#   fpt_restore ARCHIVE EXP_DIR BACKBONE_DIR PARAMS   and back (the runs PARAMS names)
#   fpt_finished RUN_DIR           the run has its final test line
#   fpt_run SUBCOMMAND ARGS...     launch `fpt SUBCOMMAND ARGS` on all tasks, forward
#                                  USR1/TERM, and act on the exit code (never returns):
#                                    0  -> fpt_on_done if the script defines
#                                          it (a failure there: exit 1), exit 0
#                                    75 -> scontrol requeue $SLURM_JOB_ID, exit 0
#                                    *  -> exit with that code (not requeued)
# Environment knobs (all optional):
#   FPT_LAUNCHER      mpirun (default) or srun (srun --mpi=pmix)
#   FPT_MPIRUN_ARGS   extra mpirun options; default "--bind-to none" when a rank
#                     has more than one thread, else none
#   FPT_SRUN_ARGS     extra srun options
#   FPT_MAX_RESTARTS  do not requeue once SLURM_RESTART_COUNT reaches this (50)
#   DATA_DIR          where fpt_task_args looks for TASK.h5 (default data)
#   BACKBONE_DIR      where the built backbones are (default runs/backbones)
# Relative paths are relative to the job's working directory: the directory
# sbatch was run in (submit from the repository root).
# See docs/SLURM.md.

FPT_ROOT=${FPT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

fpt_log() {
  local id=${SLURM_JOB_ID:-local}
  if [ -n "${SLURM_ARRAY_JOB_ID:-}" ]; then id=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}; fi
  printf '%s fpt-job[%s]: %s\n' "$(date '+%F %T')" "$id" "$*"
}

fpt_die() {
  fpt_log "error: $*"
  exit 1
}

fpt_need() { # fpt_need FILE HINT
  [ -e "$1" ] || fpt_die "$1 not found ($2)"
}

if [ -z "${FPT:-}" ]; then
  FPT=$FPT_ROOT/build/fpt
  for c in "$FPT_ROOT/build/fpt" "$FPT_ROOT/../../bin/fpt" "$(command -v fpt || true)"; do
    if [ -n "$c" ] && [ -f "$c" ] && [ -x "$c" ]; then
      FPT=$c
      break
    fi
  done
fi
if [ -d "$(dirname "$FPT")" ]; then FPT=$(cd "$(dirname "$FPT")" && pwd)/$(basename "$FPT"); fi
[ -f "$FPT" ] && [ -x "$FPT" ] || fpt_die "no fpt binary at $FPT (build it with jobs/setup.sh, or set FPT=/path/to/fpt)"
FPT_MODELS=${FPT_MODELS:-$FPT_ROOT/data/models}

if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-${OMP_NUM_THREADS:-1}}

fpt_need_model() { # fpt_need_model FILE
  fpt_need "$1" "GPT-2: data/download_gpt2.sh gpt2 makes data/models/gpt2.h5; a random backbone: $FPT init --layers 12 --d-model 768 --heads 12 --positions 1024 -o $1"
}

# fpt_data TASK FILE: make sure the dataset file exists. Files that fpt makes
# without a download (fashion-mnist from Debian's dataset-fashion-mnist, pfam
# from hmmer-examples, the ListOps generator) are made on first use; for the
# others the error says which download and conversion make them.
fpt_data() {
  local task=$1 file=$2
  [ -e "$file" ] && return 0
  case $task in
  fashion-mnist | pfam | listops)
    fpt_log "making $file: $FPT data $task -o $file"
    mkdir -p "$(dirname "$file")"
    "$FPT" data "$task" -o "$file" || fpt_die "fpt data $task -o $file failed"
    ;;
  mnist | cifar10 | cifar10-lra)
    fpt_need "$file" "data/download_datasets.sh ${task%-lra}, then the '$FPT data $task ...' command it prints" ;;
  homology)
    fpt_need "$file" "data/download_datasets.sh tape, then data/tape_homology_to_h5.py data/raw/tape/remote_homology -o $file" ;;
  *) fpt_need "$file" "see '$FPT data --help'" ;;
  esac
}

# fpt_task_args TASK: sets the array FPT_TASK_ARGS to the options that select
# TASK: --task T for the generated bit tasks, else --data $DATA_DIR/T.h5.
# shellcheck disable=SC2034 # FPT_TASK_ARGS is for the script that sources this
fpt_task_args() {
  case $1 in
  bit-xor | bit-memory) FPT_TASK_ARGS=(--task "$1") ;;
  listops | mnist | fashion-mnist | cifar10 | cifar10-lra | homology | pfam)
    fpt_data "$1" "${DATA_DIR:-data}/$1.h5"
    FPT_TASK_ARGS=(--data "${DATA_DIR:-data}/$1.h5")
    ;;
  *) fpt_die "unknown task '$1' (bit-xor bit-memory listops mnist fashion-mnist cifar10 cifar10-lra homology pfam)" ;;
  esac
}

# fpt_sweep_line FILE INDEX: line INDEX (0-based, after the header line) of a
# tab-separated file with the columns task, lr, seed.
fpt_sweep_line() {
  local file=$1 index=$2 n
  fpt_need "$file" "the sweep's parameter file: a header line, then 'task<TAB>lr<TAB>seed' per array index"
  [[ $index =~ ^[0-9]+$ ]] || fpt_die "array index '$index' is not a number (submit with --array)"
  n=$(($(awk 'END { print NR }' "$file") - 1))
  [ "$index" -lt "$n" ] || fpt_die "$file has $n parameter lines (array indices 0-$((n - 1))), not index $index"
  IFS=$'\t' read -r SWEEP_TASK SWEEP_LR SWEEP_SEED _ < <(sed -n "$((index + 2))p" "$file" | tr -d '\r') || true
  if [ -z "${SWEEP_TASK:-}" ] || [ -z "${SWEEP_LR:-}" ] || [ -z "${SWEEP_SEED:-}" ]; then
    fpt_die "$file line $((index + 2)): expected 'task<TAB>lr<TAB>seed'"
  fi
  local dup
  dup=$(tail -n +2 "$file" | tr -d '\r' | awk -F'\t' -v t="$SWEEP_TASK" -v l="$SWEEP_LR" -v s="$SWEEP_SEED" \
    '$1 == t && $2 == l && $3 == s' | wc -l)
  [ "$dup" -eq 1 ] || fpt_die "$file: '$SWEEP_TASK $SWEEP_LR $SWEEP_SEED' appears $dup times (the runs would share a run directory)"
}

# --- launching and signals ---------------------------------------------------
FPT_CHILD=""
FPT_INTERRUPTED=0
FPT_SIGNALLED="" # the last signal the batch shell got while fpt ran

fpt__on_signal() { # the batch shell got SIG$1 (Slurm's --signal=B:..., scancel --batch, preemption)
  FPT_INTERRUPTED=1
  FPT_SIGNALLED=$1
  if [ -n "$FPT_CHILD" ] && kill -0 "$FPT_CHILD" 2>/dev/null; then
    # Always SIGUSR1: mpirun forwards it to every rank, while SIGTERM makes mpirun
    # kill its ranks (SIGTERM, then SIGKILL a few seconds later) before they can
    # write a checkpoint. The trainer treats both signals the same way.
    fpt_log "got SIG$1: sending SIGUSR1 to $FPT_LAUNCHER (pid $FPT_CHILD): the trainer checkpoints at the next step boundary and exits 75"
    kill -USR1 "$FPT_CHILD" 2>/dev/null || true
  else
    fpt_log "got SIG$1 while no trainer is running: ignored"
  fi
}

# fpt__unconfined: Slurm gave this job fewer CPUs here than the shell may run
# on (no cpuset: TaskPlugin=task/none, no cgroup). mpirun would then bind the
# first rank of every such job to the node's first core: two jobs, one core.
fpt_cpus() { env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc; } # the CPUs this shell may run on
fpt__unconfined() {
  [ -n "${SLURM_CPUS_ON_NODE:-}" ] && [ "$(fpt_cpus)" -gt "$SLURM_CPUS_ON_NODE" ]
}

fpt_run() { # fpt_run SUBCOMMAND ARGS...
  local ntasks=${SLURM_NTASKS:-1} cmd
  FPT_LAUNCHER=${FPT_LAUNCHER:-mpirun}
  case $FPT_LAUNCHER in
  mpirun)
    # One thread per rank in a job that owns its cores: Open MPI's default
    # binding (a core per rank) is right. More threads: do not bind, or every
    # thread of a rank would share its one core. A job Slurm did not confine:
    # do not bind either, and leave the spreading to the kernel.
    local extra=${FPT_MPIRUN_ARGS-}
    if [ -z "${FPT_MPIRUN_ARGS+set}" ] && { [ "$OMP_NUM_THREADS" -gt 1 ] || fpt__unconfined; }; then
      extra="--bind-to none"
      fpt__unconfined && fpt_log "this job may run on $(fpt_cpus) CPUs of which Slurm gave it $SLURM_CPUS_ON_NODE (no cpuset): mpirun --bind-to none, or every job's rank 0 would share the first core"
    fi
    # shellcheck disable=SC2206 # FPT_MPIRUN_ARGS is a list of words
    cmd=(mpirun -np "$ntasks" -x OMP_NUM_THREADS $extra "$FPT" "$@")
    ;;
  srun)
    # srun does not take --cpus-per-task from the batch job (Slurm 22.05+): pass it.
    # shellcheck disable=SC2206
    cmd=(srun --mpi=pmix --ntasks="$ntasks" --cpus-per-task="$OMP_NUM_THREADS" ${FPT_SRUN_ARGS:-} "$FPT" "$@")
    ;;
  *) fpt_die "FPT_LAUNCHER must be mpirun or srun, not '$FPT_LAUNCHER'" ;;
  esac

  fpt_log "start: restart ${SLURM_RESTART_COUNT:-0}, $ntasks task(s) x $OMP_NUM_THREADS thread(s) on ${SLURM_JOB_NODELIST:-$(hostname)}: ${cmd[*]}"
  trap 'fpt__on_signal USR1' USR1
  trap 'fpt__on_signal TERM' TERM
  "${cmd[@]}" &
  FPT_CHILD=$!
  # The launcher runs in the background so that the traps run as soon as a signal
  # comes: `wait` then returns early (status > 128) and we wait again, for the
  # trainer to write its checkpoint and exit.
  local rc prev=""
  while :; do
    FPT_INTERRUPTED=0
    rc=0
    wait "$FPT_CHILD" || rc=$?
    if [ "$rc" -eq 127 ] && [ -n "$prev" ]; then rc=$prev && break; fi # already reaped
    [ "$FPT_INTERRUPTED" -eq 1 ] || break
    prev=$rc
  done
  FPT_CHILD=""
  # From here on a signal (e.g. the SIGTERM of our own requeue) must not cut the
  # script short.
  trap '' USR1 TERM

  case $rc in
  0)
    fpt_log "done: fpt $1 finished (exit 0)"
    if declare -F fpt_on_done >/dev/null; then
      fpt_on_done || fpt_die "the step after fpt $1 (fpt_on_done) failed"
    fi
    exit 0
    ;;
  75)
    if [ -z "${SLURM_JOB_ID:-}" ]; then
      fpt_log "checkpointed (exit 75); not under Slurm: rerun the same command to resume"
      exit 75
    fi
    local restarts=${SLURM_RESTART_COUNT:-0} max=${FPT_MAX_RESTARTS:-50}
    if [ "$restarts" -ge "$max" ]; then
      fpt_log "checkpointed (exit 75), but the job has been restarted $restarts times (FPT_MAX_RESTARTS=$max): not requeueing; resubmit to resume"
      exit 75
    fi
    fpt_log "checkpointed (exit 75): requeueing job $SLURM_JOB_ID (restart $((restarts + 1)))"
    if scontrol requeue "$SLURM_JOB_ID"; then
      fpt_log "requeued: the job reruns this script, and --resume auto continues from the checkpoint"
      exit 0
    fi
    fpt_log "scontrol requeue $SLURM_JOB_ID failed (was the job submitted with --no-requeue, or cancelled?): resubmit to resume"
    exit 75
    ;;
  *)
    if [ -n "$FPT_SIGNALLED" ]; then
      # Most likely the signal reached mpirun too (Slurm signals every process
      # of a job it cancels, requeues or preempts): mpirun ends its ranks itself.
      fpt_log "failed: fpt $1 exited with $rc after the job got SIG$FPT_SIGNALLED; not requeueing (if the signal reached every process of the job, as scancel, scontrol requeue and preemption send it, mpirun ended its ranks itself: the last checkpoint stands, and a requeued job resumes from it)"
    else
      fpt_log "failed: fpt $1 exited with $rc; not requeueing"
    fi
    exit "$rc"
    ;;
  esac
}

# --- experiment lines (jobs/experiments.tsv) ----------------------------------
# A tab-separated file, one run per line after a header line that names the
# columns (any order; extra columns are ignored):
#   task arm seed steps batch lr eval_every     required
#   patience                                    optional: --early-stop (evaluations
#                                               without a better val accuracy, or val
#                                               loss with EARLY_STOP_ON=loss; 0 or absent: off)
#   backbone                                    optional: default, bit, image, mlm, or a
#                                               path with a '/'; absent or '-': the arm's own
# steps is the step cap. An arm may carry a label, ARM@LABEL (fpt@lr3e-4): the
# same arm in its own run directory (its own table cell); the LR sweep uses it.
# Run directory: $EXP_DIR/TASK/ARM/seedSEED (ARM with its label).
FPT_EXP_ARMS="fpt random stats full head probe lstm-full lstm-frozen bit image mlm"
FPT_EXP_TASKS="bit-xor bit-memory bit-memory-100 fashion-mnist listops listops-x2 pfam"
FPT_BACKBONES="bit image mlm" # made by jobs/backbone.sbatch into $BACKBONE_DIR/NAME.h5

fpt__in() { # fpt__in WORD LIST...: WORD is one of LIST (pass lists unquoted: one word each)
  local w=$1 x
  shift
  for x in "$@"; do [ "$x" = "$w" ] && return 0; done
  return 1
}

# fpt_exp_count FILE: the number of run lines (lines after the header).
fpt_exp_count() { echo $(($(awk 'END { print NR }' "$1") - 1)); }

# fpt_exp_line FILE INDEX: parse and check line INDEX (0-based, after the
# header) of an experiments file. Sets EXP_TASK EXP_ARM (with its label)
# EXP_KIND (without) EXP_SEED EXP_STEPS EXP_BATCH EXP_LR EXP_EVAL_EVERY
# EXP_PATIENCE EXP_BACKBONE and EXP_WHERE ("FILE line N"). Any problem:
# fpt_die with the line and what is wrong (nothing is written).
# shellcheck disable=SC2034 # the EXP_* variables are for the caller
fpt_exp_line() {
  local file=$1 index=$2 n c i
  fpt_need "$file" "an experiments file: a header line (task arm seed steps batch lr eval_every [patience] [backbone]), then one run per line"
  [[ $index =~ ^[0-9]+$ ]] || fpt_die "array index '$index' is not a number (submit with --array)"
  n=$(fpt_exp_count "$file")
  [ "$index" -lt "$n" ] || fpt_die "$file has $n run lines (array indices 0-$((n - 1))), not index $index"
  EXP_WHERE="$file line $((index + 2))"
  local -a head vals
  IFS=$'\t' read -r -a head < <(sed -n 1p "$file" | tr -d '\r')
  IFS=$'\t' read -r -a vals < <(sed -n "$((index + 2))p" "$file" | tr -d '\r')
  local -A col=()
  for i in "${!head[@]}"; do col[${head[$i]}]=${vals[$i]:-}; done
  for c in task arm seed steps batch lr eval_every; do
    [ -n "${col[$c]+set}" ] || fpt_die "$file: the header has no '$c' column (need task arm seed steps batch lr eval_every [patience] [backbone], tab-separated)"
    [ -n "${col[$c]}" ] || fpt_die "$EXP_WHERE: no value in column '$c'"
  done
  EXP_TASK=${col[task]} EXP_ARM=${col[arm]} EXP_SEED=${col[seed]} EXP_STEPS=${col[steps]}
  EXP_BATCH=${col[batch]} EXP_LR=${col[lr]} EXP_EVAL_EVERY=${col[eval_every]}
  EXP_PATIENCE=${col[patience]:-0} EXP_BACKBONE=${col[backbone]:--}
  EXP_KIND=${EXP_ARM%%@*}
  # shellcheck disable=SC2086 # the lists are words
  fpt__in "$EXP_KIND" $FPT_EXP_ARMS ||
    fpt_die "$EXP_WHERE: unknown arm '$EXP_KIND' (jobs/experiment.sbatch knows: $FPT_EXP_ARMS)"
  if [ "$EXP_ARM" != "$EXP_KIND" ] && ! [[ ${EXP_ARM#*@} =~ ^[A-Za-z0-9._+-]+$ ]]; then
    fpt_die "$EXP_WHERE: arm '$EXP_ARM': a label after '@' is letters, digits and . _ + - only"
  fi
  # shellcheck disable=SC2086
  fpt__in "$EXP_TASK" $FPT_EXP_TASKS || fpt_die "$EXP_WHERE: unknown task '$EXP_TASK' (known: $FPT_EXP_TASKS)"
  for c in seed steps batch eval_every patience; do
    local v=${col[$c]:-0}
    [[ $v =~ ^[0-9]+$ ]] || fpt_die "$EXP_WHERE: $c '$v' is not a whole number"
  done
  if [ "$EXP_STEPS" -eq 0 ] || [ "$EXP_BATCH" -eq 0 ]; then fpt_die "$EXP_WHERE: steps and batch must be > 0"; fi
  [[ $EXP_LR =~ ^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$ ]] || fpt_die "$EXP_WHERE: lr '$EXP_LR' is not a number"
  if [ "$EXP_BACKBONE" = - ]; then
    case $EXP_KIND in bit | image | mlm) EXP_BACKBONE=$EXP_KIND ;; *) EXP_BACKBONE=default ;; esac
  fi
  # shellcheck disable=SC2086
  if [[ $EXP_BACKBONE != */* ]] && ! fpt__in "$EXP_BACKBONE" default $FPT_BACKBONES; then
    fpt_die "$EXP_WHERE: unknown backbone '$EXP_BACKBONE' (default, $FPT_BACKBONES, or a file path with a '/')"
  fi
  local dup
  dup=$(tail -n +2 "$file" | tr -d '\r' | awk -F'\t' -v h="$(sed -n 1p "$file" | tr -d '\r')" \
    -v t="$EXP_TASK" -v a="$EXP_ARM" -v s="$EXP_SEED" '
      BEGIN { n = split(h, H, "\t"); for (i = 1; i <= n; i++) C[H[i]] = i }
      $C["task"] == t && $C["arm"] == a && $C["seed"] == s' | wc -l)
  [ "$dup" -eq 1 ] || fpt_die "$file: '$EXP_TASK $EXP_ARM seed $EXP_SEED' appears on $dup lines (the runs would share a run directory)"
}

# fpt_backbone_file NAME: the model file of a backbone name of an experiments
# line: default -> $MODEL; bit, image, mlm -> $BACKBONE_DIR/NAME.h5; a path as is.
fpt_backbone_file() {
  case $1 in
  default) echo "${MODEL:-$FPT_MODELS/default.h5}" ;;
  */*) echo "$1" ;;
  *) echo "${BACKBONE_DIR:-runs/backbones}/$1.h5" ;;
  esac
}

# fpt_finished RUN_DIR: the run has its final test line (what the runners skip on).
fpt_finished() { grep -q '"split":"test".*"final":1' "$1/metrics.jsonl" 2>/dev/null; }

# A campaign outlives the machine it ran on only through its archive
# (docs/results/campaign, committed): a finished run's small files
# (FPT_ARCHIVED: what analysis/ reads) and each built backbone with its run's.
# An unfinished run with a checkpoint keeps those files, its latest
# checkpoint (one file, about 4 MB at the shipped shape) and its best.h5 (as
# large: the weights --eval-test-at end scores the test split on; fpt refuses
# to resume a run whose best.json has lost them) in ARCHIVE/inflight,
# so that a campaign on the next machine resumes it there instead of starting
# it over (runs of ListOps take longer than one working session).
FPT_ARCHIVED="metrics.jsonl config.yaml checkpoints/best.json"
# A backbone's run (jobs/backbone.sbatch) also needs, to resume where it was,
# shape.h5, the random-init model its checkpoints name by checksum (made again
# by fpt init, it would not be the same file unless the fpt that made it wrote
# no clock into it); its best.h5 is what it exports at the end. Some 40 MB at
# the 12 x 128 shape.
FPT_INFLIGHT_BACKBONE="shape.h5"
fpt__copy() { # fpt__copy FROM TO: a file, whole or not at all (a .tmp renamed)
  mkdir -p "$(dirname "$2")" && cp "$1" "$2.tmp" && mv "$2.tmp" "$2"
}
fpt__copy_run() { # fpt__copy_run FROM TO: the FPT_ARCHIVED files that exist
  local f
  for f in $FPT_ARCHIVED; do
    [ -e "$1/$f" ] || continue
    fpt__copy "$1/$f" "$2/$f" || return 1
  done
}
# fpt_archive CAMPAIGN_DIR ARCHIVE: EXP_DIR's finished runs (CAMPAIGN_DIR/exp/TASK/ARM/seedN)
# into ARCHIVE/exp, backbones (CAMPAIGN_DIR/backbones/NAME.h5) into ARCHIVE/backbones;
# unfinished ones into ARCHIVE/inflight (fpt__keep_inflight). Prints
# "archived N runs, M backbones" and "kept ... unfinished ...".
fpt_archive() {
  local src=$1 dst=$2 d rel n=0 nb=0 ni=0 nbi=0 b
  [ -d "$src/exp" ] || [ -d "$src/backbones" ] ||
    fpt_die "fpt_archive: $src has neither exp/ nor backbones/ (is it a campaign directory?)"
  while IFS= read -r d; do
    d=${d%/metrics.jsonl}
    rel=${d#"$src"/exp/}
    [[ $rel =~ ^[^/]+/[^/]+/seed[0-9]+$ ]] || continue
    if ! fpt_finished "$d"; then
      fpt__keep_inflight "$d" "$dst/inflight/$rel" && ni=$((ni + 1))
      continue
    fi
    fpt__copy_run "$d" "$dst/exp/$rel" || fpt_die "fpt_archive: cannot copy $d to $dst/exp/$rel"
    rm -rf "$dst/inflight/$rel" # its unfinished state is history now
    n=$((n + 1))
  done < <([ ! -d "$src/exp" ] || find "$src/exp" -mindepth 4 -maxdepth 4 -name metrics.jsonl | sort)
  for b in $FPT_BACKBONES; do
    if [ ! -e "$src/backbones/$b.h5" ]; then # a backbone being made: its run, to resume
      # shellcheck disable=SC2086 # a list of file names
      fpt__keep_inflight "$src/backbones/$b-run" "$dst/inflight/backbones/$b-run" $FPT_INFLIGHT_BACKBONE &&
        nbi=$((nbi + 1))
      continue
    fi
    cmp -s "$src/backbones/$b.h5" "$dst/backbones/$b.h5" ||
      fpt__copy "$src/backbones/$b.h5" "$dst/backbones/$b.h5" ||
      fpt_die "fpt_archive: cannot copy $src/backbones/$b.h5"
    [ -d "$src/backbones/$b-run" ] && fpt__copy_run "$src/backbones/$b-run" "$dst/backbones/$b-run"
    rm -rf "$dst/inflight/backbones/$b-run"
    nb=$((nb + 1))
  done
  echo "archived $n runs, $nb backbones into $dst"
  echo "kept $ni unfinished runs' and $nbi unfinished backbones' latest checkpoints in $dst/inflight"
}
# fpt__keep_inflight RUN_DIR TO: an unfinished run's small files, the
# checkpoint its checkpoints/latest names and its checkpoints/best.h5,
# replacing an older state in TO (checkpoints/latest written last: a copy cut
# short names the older file or none, never a partial one), and the FILEs
# given that exist (a backbone's run: FPT_INFLIGHT_BACKBONE). Status 1,
# copying nothing, without a checkpoint.
#   fpt__keep_inflight RUN_DIR TO [FILE...]
fpt__keep_inflight() {
  local ck f
  ck=$(cat "$1/checkpoints/latest" 2>/dev/null) && [[ $ck =~ ^ckpt-[0-9]+\.h5$ ]] &&
    [ -s "$1/checkpoints/$ck" ] || return 1
  for f in checkpoints/best.h5 "${@:3}"; do
    [ -s "$1/$f" ] || continue
    cmp -s "$1/$f" "$2/$f" || fpt__copy "$1/$f" "$2/$f" || fpt_die "cannot copy $1/$f"
  done
  fpt__copy "$1/checkpoints/$ck" "$2/checkpoints/$ck" && fpt__copy_run "$1" "$2" &&
    fpt__copy "$1/checkpoints/latest" "$2/checkpoints/latest" ||
    fpt_die "cannot copy the unfinished run $1 to $2"
  find "$2/checkpoints" -name 'ckpt-*.h5' ! -name "$ck" -delete
}
# fpt__protocol_differs RUN_DIR: empty when RUN_DIR/config.yaml has the
# protocol of the line fpt_exp_line parsed last (steps, batch, lr, patience,
# eval_every; for probe, which fits steps x batch training samples once, its
# train_limit), else the first difference ("steps 20 (line: 40)").
fpt__protocol_differs() {
  awk -v steps="$EXP_STEPS" -v batch_size="$EXP_BATCH" -v lr="$EXP_LR" -v early_stop="$EXP_PATIENCE" \
    -v eval_every="$EXP_EVAL_EVERY" -v probe="$([ "${EXP_KIND:-}" = probe ] && echo 1)" '
    BEGIN { if (probe) want["train_limit"] = steps * batch_size
            else { want["steps"] = steps; want["batch_size"] = batch_size; want["lr"] = lr
                   want["early_stop"] = early_stop; want["eval_every"] = eval_every } }
    { k = $1; sub(/:$/, "", k); v = $2; gsub(/"/, "", v); if (k in want) got[k] = v }
    END { for (k in want) if (!(k in got) || got[k] + 0 != want[k] + 0) { print k " " (k in got ? got[k] : "none") " (line: " want[k] ")"; exit } }' \
    "$1/config.yaml" 2>/dev/null || echo "no config.yaml"
}
# fpt_finished_as_line RUN_DIR: for a finished run, what the line fpt_exp_line
# parsed last makes of it (prints one word):
#   done     the run has the line's protocol: nothing to do
#   extend   it differs only in a lower step cap, and it ended on that cap
#            (not early): resuming with the line's cap continues it, and
#            fpt train's resume makes that the run an uninterrupted one would be
#   other    anything else (the caller says what differs)
fpt_finished_as_line() {
  local diff last cap
  diff=$(fpt__protocol_differs "$1")
  [ -n "$diff" ] || { echo done; return; }
  cap=$(awk '$1 == "steps:" { print $2 }' "$1/config.yaml")
  last=$(grep '"split":"test".*"final":1' "$1/metrics.jsonl" | tail -1 | sed -E 's/.*"step":([0-9]+).*/\1/')
  [[ $cap =~ ^[0-9]+$ ]] && [ "$cap" -lt "$EXP_STEPS" ] && [ "$last" = "$cap" ] || { echo other; return; }
  diff=$(EXP_STEPS=$cap fpt__protocol_differs "$1")
  if [ -z "$diff" ]; then echo extend; else echo other; fi
}

# fpt_restore ARCHIVE EXP_DIR BACKBONE_DIR PARAMS: the archive's runs that
# PARAMS names, with that line's protocol, and its backbones, where a campaign
# looks for them: a finished run (ARCHIVE/exp), or else an unfinished one
# with its latest checkpoint (ARCHIVE/inflight), which the runner resumes. A
# run directory that exists is left alone (it may hold a newer state); an
# archived run of another protocol is named and not restored.
# A backbone being made (ARCHIVE/inflight/backbones/NAME-run) goes into
# BACKBONE_DIR/NAME-run when neither NAME.h5 nor that directory is there.
# Prints "restored N runs (K of them unfinished), M backbones (J of them
# unfinished) from ARCHIVE".
fpt_restore() {
  local src=$1 exp=$2 bbd=$3 params=$4 i rel from diff n=0 ni=0 nb=0 nbi=0 b lines
  [ -d "$src" ] || { echo "restored 0 runs (0 of them unfinished), 0 backbones (0 of them unfinished) (no archive $src)"; return 0; }
  lines=$(fpt_exp_count "$params")
  for ((i = 0; i < lines; i++)); do
    fpt_exp_line "$params" "$i"
    rel=$EXP_TASK/$EXP_ARM/seed$EXP_SEED
    [ ! -e "$exp/$rel" ] || continue
    from=$src/exp/$rel
    [ -e "$from/metrics.jsonl" ] || from=$src/inflight/$rel
    [ -e "$from/metrics.jsonl" ] || continue
    diff=$(fpt__protocol_differs "$from")
    if [ -n "$diff" ]; then
      echo "not restored: $from (protocol differs: $diff)"
      continue
    fi
    if [ "$from" = "$src/exp/$rel" ]; then
      fpt__copy_run "$from" "$exp/$rel" || fpt_die "fpt_restore: cannot copy $from to $exp/$rel"
    else
      fpt__keep_inflight "$from" "$exp/$rel" || continue
      ni=$((ni + 1))
    fi
    n=$((n + 1))
  done
  for b in $FPT_BACKBONES; do
    [ ! -e "$bbd/$b.h5" ] || continue
    if [ -e "$src/backbones/$b.h5" ]; then
      fpt__copy "$src/backbones/$b.h5" "$bbd/$b.h5" || fpt_die "fpt_restore: cannot copy $src/backbones/$b.h5"
    # shellcheck disable=SC2086 # a list of file names
    elif [ ! -e "$bbd/$b-run" ] &&
      fpt__keep_inflight "$src/inflight/backbones/$b-run" "$bbd/$b-run" $FPT_INFLIGHT_BACKBONE; then
      nbi=$((nbi + 1)) # jobs/backbone.sbatch resumes it (--resume auto)
    else
      continue
    fi
    nb=$((nb + 1))
  done
  echo "restored $n runs ($ni of them unfinished), $nb backbones ($nbi of them unfinished) from $src"
}
