#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2317 # check "..." eval '...' expands later; functions run via check
# The job scripts in jobs/ on a real Slurm cluster on localhost
# (shared/slurm/local-slurm.sh: munged + slurmctld + slurmd; needs root).
#
#   tests/slurm/test_slurm.sh FPT SCRATCH
#
# FPT is the fpt binary (copied into SCRATCH first, so a rebuild during the
# test does not change it), SCRATCH a directory this test may wipe. shared/ is
# $FPT_SHARED, else $(git rev-parse --show-toplevel)/../shared. The cluster
# keeps its state in a fresh /tmp/fpt-slurm.XXXXXX (short: munge's socket path
# must fit in 108 bytes) on a free port, and is stopped on exit.
#
# Checks (one line each, then "N passed, M failed"; exit 1 if any failed):
#   (a) jobs/train-bit-xor.sbatch, short: COMPLETED, exit 0, not requeued, final
#       val/test metrics and a checkpoint written.
#   (b) the same job interrupted with `scancel --signal=USR1 --batch` once it
#       has made progress: the batch script forwards the signal, fpt checkpoints
#       and exits 75, the job requeues itself (SLURM_RESTART_COUNT=1), resumes
#       from the checkpoint and finishes; its last val and test lines equal (a)'s.
#   (d) the same with SIGTERM to the batch shell (mpirun must get SIGUSR1,
#       since SIGTERM makes it kill its ranks).
#   (e) a real failure (a batch size the ranks cannot split) ends FAILED with
#       fpt's exit code and is not requeued.
#   (c) jobs/sweep.sbatch as a 3-task array over a test parameter file: each
#       task its own run dir with its lr and seed; an index past the file fails.
#   (f)-(i) jobs/campaign.sh (phase 3, below): a bad file submits nothing; a tiny
#       campaign of every new arm with its data, backbone and array jobs
#       (afterok, %2); a failed backbone job keeps the array from starting;
#       array lines naming a missing backbone or an unknown arm fail with a
#       message. TEST_CAMPAIGN_ONLY=1 runs phase 3 alone.
# Every wait is bounded (TIMEOUT_* below, and TEST_DEADLINE, 1000 s, for all
# of them together); nothing waits forever. Exit 77 (skip) when not root.
set -uo pipefail
[ $# -eq 2 ] || { echo "usage: $0 FPT SCRATCH" >&2; exit 2; }
FPT_SRC=$(realpath "$1")
W=$(mkdir -p "$2" && realpath "$2")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=/usr/bin/python3
STEPS=${TEST_STEPS:-4000}          # (a), (b), (d): ~10 s of training on 2 ranks
SIGNAL_AFTER=${TEST_SIGNAL_AFTER:-500} # interrupt once this step is logged
TIMEOUT_SHORT=${TIMEOUT_SHORT:-180}
TIMEOUT_REQUEUE=${TIMEOUT_REQUEUE:-360} # a requeued job waits ~12-15 s before it restarts
# All waits together stay below this, so that the test ends (and stops its
# cluster) before ctest's TIMEOUT (1200 s) would kill it without cleanup.
DEADLINE=$((SECONDS + ${TEST_DEADLINE:-1000}))
until_() { # until_ SECONDS: the end time of a wait, capped by DEADLINE
  local e=$((SECONDS + $1))
  [ "$e" -le "$DEADLINE" ] || e=$DEADLINE
  echo "$e"
}

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok: $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }
check() { # check "what" cmd...
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
finish() {
  echo "$PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ] && exit 0
  exit 1
}
log() { echo "# $(date +%T) $*"; }

# --- preconditions ----------------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
  echo "skip: needs root (munged and slurmd run as root here)"
  exit 77
fi
SHARED=${FPT_SHARED:-$(git -C "$ROOT" rev-parse --show-toplevel 2>/dev/null || echo "$ROOT")/../shared}
LOCAL_SLURM=$SHARED/slurm/local-slurm.sh
if [ ! -f "$LOCAL_SLURM" ]; then
  bad "no $LOCAL_SLURM (set FPT_SHARED to the shared/ directory)"
  finish
fi
rm -rf "$W" && mkdir -p "$W"
if ! cp "$FPT_SRC" "$W/fpt" || ! chmod 755 "$W/fpt"; then bad "copy $FPT_SRC"; finish; fi
export FPT=$W/fpt
if ! help=$("$FPT" train --help 2>&1); then
  bad "$FPT_SRC runs ('fpt train --help' failed: was it being rebuilt?): $(head -c 300 <<<"$help")"
  finish
fi

missing=""
for o in --config --checkpoint-every --keep-checkpoints --resume --time-limit; do
  grep -q -- "^ *$o " <<<"$help" || missing="$missing $o"
done
check "fpt train has the job contract's options (--config --checkpoint-every --keep-checkpoints --resume --time-limit)${missing:+: missing$missing}" \
  test -z "$missing"

# --- the cluster --------------------------------------------------------------------
# Jobs inherit our environment: drop any Slurm variables of an enclosing job.
while read -r v; do [ "$v" = SLURM_CONF ] || unset "$v"; done < <(compgen -e | grep '^SLURM_')
export LOCAL_SLURM_DIR
LOCAL_SLURM_DIR=$(mktemp -d /tmp/fpt-slurm.XXXXXX)
export LOCAL_SLURM_CPUS=${LOCAL_SLURM_CPUS:-8} # oversubscribed: jobs run side by side
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -z "${LOCAL_SLURM_PORT:-}" ]; then
  for p in $(seq 6817 10 7807); do
    if port_free "$p" && port_free $((p + 1)); then LOCAL_SLURM_PORT=$p && break; fi
  done
fi
export LOCAL_SLURM_PORT
cleanup() {
  log "stopping the local Slurm ($LOCAL_SLURM_DIR)"
  bash "$LOCAL_SLURM" stop >/dev/null 2>&1
  rm -rf "$LOCAL_SLURM_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting the local Slurm in $LOCAL_SLURM_DIR, port $LOCAL_SLURM_PORT"
if ! timeout 600 bash "$LOCAL_SLURM" start --install >"$W/local-slurm.log" 2>&1; then
  bad "local Slurm started (see $W/local-slurm.log): $(tail -n 5 "$W/local-slurm.log")"
  finish
fi
export SLURM_CONF=$LOCAL_SLURM_DIR/etc/slurm.conf
ok "local Slurm up: $(sinfo -h -o '%P %D node(s) %c CPUs %t' | head -1)"

"$FPT" init --layers 2 --d-model 32 --heads 4 --positions 64 --seed 1 -o "$W/m.h5" >/dev/null ||
  { bad "fpt init"; finish; }

# --- helpers -------------------------------------------------------------------------
# submit NAME SCRIPT [VAR=VALUE ...] [-- SBATCH-OPTIONS ...]: submit from the
# repository root (as users do: FPT_ROOT = the submit directory), output in $W.
submit() {
  local name=$1 script=$2; shift 2
  local vars=() opts=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do vars+=("$1"); shift; done
  [ $# -gt 0 ] && shift && opts=("$@")
  (cd "$ROOT" && env MODEL="$W/m.h5" "${vars[@]}" \
    sbatch --parsable --time=20 --job-name="$name" --output="$W/$name-%j.out" "${opts[@]}" "$script") 2>"$W/$name.sbatch.err"
}
field() { # field ID KEY: KEY=value from `scontrol show job` (first line)
  scontrol show job -o "$1" 2>/dev/null | head -1 | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}
terminal() { [[ $1 =~ ^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)$ ]]; }
wait_job() { # wait_job ID TIMEOUT: until the job reaches a final state; 1 on timeout
  local id=$1 end s
  end=$(until_ "$2")
  while [ "$SECONDS" -lt "$end" ]; do
    s=$(field "$id" JobState)
    terminal "$s" && return 0
    sleep 1
  done
  log "job $id still '$(field "$id" JobState)' after $2 s"
  scancel "$id" 2>/dev/null
  return 1
}
wait_array() { # wait_array "ARRAY_ID..." N TIMEOUT: until N tasks of these arrays are in final states
  local id=$1 n=$2 end states a
  end=$(until_ "$3")
  while [ "$SECONDS" -lt "$end" ]; do
    states=$(for a in $id; do scontrol show job -o "$a" 2>/dev/null; done | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
    if [ "$(grep -cE '^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY)$' <<<"$states")" -eq "$n" ]; then
      return 0
    fi
    sleep 1
  done
  log "array(s) $id not finished after $3 s: $(tr "\n" " " <<<"$states")"
  # shellcheck disable=SC2086 # a list of ids
  scancel $id 2>/dev/null
  return 1
}
job_is() { # job_is ID STATE EXITCODE RESTARTS
  local s e r
  s=$(field "$1" JobState) e=$(field "$1" ExitCode) r=$(field "$1" Restarts)
  [ "$s" = "$2" ] && [ "$e" = "$3" ] && [ "$r" = "$4" ] && return 0
  echo "  job $1: JobState=$s ExitCode=$e Restarts=$r, expected $2 $3 $4"
  return 1
}
has_line() { # has_line FILE ERE: the job output has a matching line
  grep -qE "$2" "$1" 2>/dev/null && return 0
  echo "  no line matching /$2/ in $1"
  return 1
}
last_step() { # the step of the last train line of a metrics file (0 if none)
  local s
  s=$(grep '"split":"train"' "$1" 2>/dev/null | tail -1 | sed 's/.*"step":\([0-9]*\).*/\1/')
  echo "${s:-0}"
}
final_metrics() { # final_metrics FILE: "split loss accuracy" of the last val and test lines
  "$PY" - "$1" <<'PY'
import json, sys
last = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("split") in ("val", "test"):
        last[r["split"]] = r
for s in ("val", "test"):
    r = last.get(s)
    print(s, "step", r["step"], "loss", repr(r["loss"]), "accuracy", repr(r["accuracy"]) if r else s + " none")
PY
}
resumed_not_restarted() { # resumed_not_restarted LOG_EVERY METRICS: the first train
  local n last # line is in the file once, and the run reached its last step
  n=$(grep '"split":"train"' "$2" | grep -c "\"step\":$1[,}]")
  last=$(last_step "$2")
  [ "$n" -eq 1 ] && [ "$last" -eq "$STEPS" ] && return 0
  echo "  $n train lines for step $1 (2: the job started over instead of resuming), last train step $last of $STEPS, in $2"
  return 1
}

XOR=(STEPS="$STEPS" BATCH_SIZE=8 SEED=3 LOG_EVERY=50 EVAL_EVERY=1000 CHECKPOINT_EVERY=1000 KEEP_CHECKPOINTS=2)

# --- phase 3: the campaign (jobs/campaign.sh) ------------------------------------
# (f) a campaign file with an unknown arm, and one naming a backbone file that
#     is not there: campaign.sh refuses each, submits nothing.
# (g) a campaign of every new arm on bit-xor (fpt, lstm-full, lstm-frozen, bit,
#     image, mlm; 20 steps, patience 2) with tiny backbones: the data job, three
#     backbone jobs and four arrays (one per backbone the lines wait for); its
#     arrays cancelled, campaign.sh again while the backbone jobs are queued
#     submits no data or backbone job, and its arrays wait for those jobs
#     (%2, one rank, afterok on the line's own backbone only); every run
#     finishes; a third campaign.sh submits no backbone job and its one array
#     skips the finished runs.
# (h) a backbone job that fails (FPT_ARGS="--lr -1"): the array never starts
#     (DependencyNeverSatisfied) and makes no run directory; a second
#     campaign.sh meanwhile refuses (campaign jobs still queued).
# (i) array tasks submitted without the campaign: a line naming a backbone that
#     is not there, and an arm jobs/experiment.sbatch does not know: each FAILED
#     with a message naming it, no run directory.
campaign_phase() {
  log "phase 3: the campaign (jobs/campaign.sh): bad file, tiny campaign, failed backbone, bad lines"
  local CW=$W/campaign H out rc jobs_before arr n id k
  mkdir -p "$CW/corpus"
  # A tiny text corpus for the mlm backbone: 3.4 MB (fpt data text keeps 1 block in 50 of 64 KiB for val
  # and test), 64-byte windows.
  for _ in $(seq 40); do cat "$ROOT"/docs/*.md; done | head -c 3400000 >"$CW/corpus/c.txt"
  "$FPT" data text --input "$CW/corpus/c.txt" --seq 64 -o "$CW/corpus/text.h5" >/dev/null ||
    { bad "(g) fpt data text for the tiny corpus"; return; }
  H='task\tarm\tseed\tsteps\tbatch\tlr\teval_every\tpatience\tbackbone\n'
  # Tiny backbones: 2 x 32 with 128 positions (bit-memory has 120 tokens), 10 steps of 4.
  local -a ENVS=(ARCHIVE=none MODEL="$W/m.h5" DATA_DIR="$CW/data" CORPUS_DIR="$CW/corpus" POSITIONS=128 STEPS=10 BATCH_SIZE=4
    EVAL_EVERY=5 EVAL_SAMPLES=50 LOG_EVERY=5 CHECKPOINT_EVERY=5 THROTTLE=2
    SBATCH_ARGS="--time=20")
  campaign() { # campaign OUT PARAMS VAR=VALUE...: run jobs/campaign.sh; its stdout in OUT
    local o=$1 p=$2
    shift 2
    env "${ENVS[@]}" PARAMS="$p" "$@" bash "$ROOT/jobs/campaign.sh" >"$o" 2>"$o.err"
  }
  njobs() { scontrol show job -o 2>/dev/null | grep -c JobId; }

  # (f)
  printf '%b' "$H" >"$CW/bad.tsv"
  printf 'bit-xor\tfpt\t1\t20\t16\t1e-3\t10\t2\tdefault\nbit-xor\tvit\t1\t20\t16\t1e-3\t10\t2\tdefault\n' >>"$CW/bad.tsv"
  # shellcheck disable=SC2034 # used in the eval below
  jobs_before=$(njobs)
  rc=0
  campaign "$CW/f.out" "$CW/bad.tsv" CAMPAIGN_DIR="$CW/f" || rc=$?
  check "(f) campaign.sh refuses a file with an unknown arm (exit $rc), naming the line and the arm" \
    eval '[ "$rc" -ne 0 ] && grep -q "line 3: unknown arm .vit." "$CW/f.out.err"'
  check "(f) nothing submitted, no campaign directory" eval '[ "$(njobs)" -eq "$jobs_before" ] && [ ! -e "$CW/f" ] && [ ! -s "$CW/f.out" ]'
  printf '%b' "$H" >"$CW/bad2.tsv"
  printf 'bit-xor\tfpt\t1\t20\t16\t1e-3\t10\t2\t%s\n' "$CW/nowhere/bert.h5" >>"$CW/bad2.tsv"
  rc=0
  campaign "$CW/f2.out" "$CW/bad2.tsv" CAMPAIGN_DIR="$CW/f" || rc=$?
  check "(f) a line naming a backbone file that is not there: refused (exit $rc), naming it; nothing submitted" \
    eval '[ "$rc" -ne 0 ] && grep -q "backbone file $CW/nowhere/bert.h5 (line 2) not found" "$CW/f2.out.err" && [ "$(njobs)" -eq "$jobs_before" ] && [ ! -e "$CW/f" ]'

  # (g)
  printf '%b' "$H" >"$CW/good.tsv"
  for k in fpt lstm-full lstm-frozen bit image mlm; do
    printf 'bit-xor\t%s\t1\t20\t16\t%s\t10\t2\t-\n' "$k" "$([ "${k#lstm}" != "$k" ] && echo 3e-4 || echo 1e-3)" >>"$CW/good.tsv"
  done
  # Submitted held (--hold), so that the arrays are cancelled before any task
  # starts and the backbone jobs are still queued when campaign.sh runs again.
  rc=0
  campaign "$CW/g.out" "$CW/good.tsv" CAMPAIGN_DIR="$CW/g" SBATCH_ARGS="--time=20 --hold" || rc=$?
  local data bbs arrs
  data=$(awk '$1 == "data" { print $2 }' "$CW/g.out")
  bbs=$(awk '$1 == "backbone" { print $3 }' "$CW/g.out" | tr '\n' ' ')
  arrs=$(awk '$1 == "array" { print $2 }' "$CW/g.out" | tr '\n' ' ')
  check "(g) campaign.sh: exit $rc; printed data, backbone bit, image, mlm and 4 array job ids (lines of the shipped backbone, of bit, of image, of mlm): $(tr '\n' ' ' <"$CW/g.out")" \
    eval '[ "$rc" -eq 0 ] && [ "$(grep -cE "^(data [0-9]+|backbone (bit|image|mlm) [0-9]+)$" "$CW/g.out")" -eq 4 ] && [ "$(grep -cE "^array [0-9]+$" "$CW/g.out")" -eq 4 ]'
  data_deps_ok() { # every array, that of the lines without a dataset too, waits for the data job
    local a
    for a in $arrs; do
      scontrol show job -o "$a" 2>/dev/null | grep -qE "afterok:$data(\(|_| |$)" ||
        { echo "  array $a does not wait for the data job $data"; return 1; }
    done
  }
  check "(g) every array waits for the data job, the lines that need no dataset too (so that Slurm runs them in the file's order)" data_deps_ok
  # shellcheck disable=SC2086 # lists of ids
  scancel $arrs 2>/dev/null
  [ -z "$data" ] || scontrol release "$data"
  if [ -z "$data" ] || ! wait_job "$data" "$TIMEOUT_SHORT"; then bad "(g) the data job ${data:-?} ended"; fi
  # A campaign.sh while the backbone jobs are still queued: it waits for them.
  rc=0
  campaign "$CW/g1.out" "$CW/good.tsv" CAMPAIGN_DIR="$CW/g" || rc=$?
  arrs=$(awk '$1 == "array" { print $2 }' "$CW/g1.out" | tr '\n' ' ')
  check "(g) campaign.sh again while the backbone jobs are queued: no data or backbone job, 4 arrays, the 3 backbone jobs named as in the making ($(tr '\n' ' ' <"$CW/g1.out"))" \
    eval '[ "$rc" -eq 0 ] && [ "$(grep -c . "$CW/g1.out")" -eq 4 ] && [ "$(grep -cE "^array [0-9]+$" "$CW/g1.out")" -eq 4 ] && [ "$(grep -c "is making it already" "$CW/g1.out.err")" -eq 3 ]'
  if [ -z "$arrs" ]; then
    bad "(g) no array job (stderr: $(cat "$CW/g1.out.err"))"
  else
    deps_ok() { # the array of line 3 waits for the bit job, 4 for image, 5 for mlm; lines 0-2 wait for nothing
      local a rec want
      for a in $arrs; do
        rec=$(scontrol show job -o "$a" 2>/dev/null)
        grep -q "ArrayTaskThrottle=2" <<<"$rec" || { echo "  no ArrayTaskThrottle=2 in: $rec"; return 1; }
        case $(grep -o 'ArrayTaskId=[0-9,-]*' <<<"$rec" | head -1 | cut -d= -f2) in
        3) want=$(awk '$2 == "bit" { print $3 }' "$CW/g.out") ;;
        4) want=$(awk '$2 == "image" { print $3 }' "$CW/g.out") ;;
        5) want=$(awk '$2 == "mlm" { print $3 }' "$CW/g.out") ;;
        *) want="" ;;
        esac
        if [ -n "$want" ]; then
          grep -qE "afterok:$want(\(|_| |$)" <<<"$rec" || { echo "  array $a: no afterok:$want in: $rec"; return 1; }
        elif grep -q afterok <<<"$rec"; then
          echo "  array $a (lines of the shipped backbone) waits: $rec"
          return 1
        fi
      done
    }
    check "(g) each array waits for the backbone job its lines need (afterok), that of the shipped backbone for nothing; each runs at most 2 tasks at once" deps_ok
    # shellcheck disable=SC2086
    scontrol release $bbs
    arr=$arrs
    if wait_array "$arr" 6 "$TIMEOUT_REQUEUE"; then
      check "(g) 6 array tasks COMPLETED" eval '[ "$(for a in $arr; do scontrol show job -o "$a"; done | grep -c "JobState=COMPLETED.*ExitCode=0:0")" -eq 6 ]'
      n=0
      for k in fpt lstm-full lstm-frozen bit image mlm; do
        grep -q '"split":"test".*"final":1' "$CW/g/exp/bit-xor/$k/seed1/metrics.jsonl" 2>/dev/null && n=$((n + 1))
      done
      check "(g) every arm's run finished ($n of 6), each with checkpoints/best.h5" \
        eval '[ "$n" -eq 6 ] && [ "$(ls "$CW"/g/exp/bit-xor/*/seed1/checkpoints/best.h5 | wc -l)" -eq 6 ]'
      check "(g) the backbones were written: bit.h5 image.h5 mlm.h5" \
        eval '[ -s "$CW/g/backbones/bit.h5" ] && [ -s "$CW/g/backbones/image.h5" ] && [ -s "$CW/g/backbones/mlm.h5" ]'
      check "(g) the image and mlm backbones are bidirectional, bit causal" \
        "$PY" -c 'import h5py, sys
d = sys.argv[1]
c = {b: int(h5py.File(f"{d}/{b}.h5", "r").attrs.get("causal", 1)) for b in ("bit", "image", "mlm")}
sys.exit(0 if c == {"bit": 1, "image": 0, "mlm": 0} else print(c) or 1)' "$CW/g/backbones"
      # Again: no backbone job, and the array skips the finished runs.
      rc=0
      campaign "$CW/g2.out" "$CW/good.tsv" CAMPAIGN_DIR="$CW/g" || rc=$?
      arr=$(awk '$1 == "array" { print $2 }' "$CW/g2.out")
      check "(g) a second campaign.sh submits the array only ($(tr '\n' ' ' <"$CW/g2.out"))" \
        eval '[ "$rc" -eq 0 ] && [ -n "$arr" ] && [ "$(wc -l <"$CW/g2.out")" -eq 1 ]'
      if [ -n "$arr" ] && wait_array "$arr" 6 "$TIMEOUT_SHORT"; then
        check "(g) its tasks skip the finished runs" \
          eval '[ "$(grep -l "is finished (its final test line is there): nothing to do" "$CW"/g/logs/fpt-exp-"${arr}"_*.out | wc -l)" -eq 6 ]'
      else
        bad "(g) the second array ${arr:-?} finished"
      fi
    else
      bad "(g) campaign array $arr finished within $TIMEOUT_REQUEUE s (logs: $CW/g/logs)"
    fi
  fi

  # (h)
  printf '%b' "$H" >"$CW/h.tsv"
  printf 'bit-xor\tbit\t1\t20\t16\t1e-3\t10\t2\tbit\n' >>"$CW/h.tsv"
  rc=0
  campaign "$CW/h.out" "$CW/h.tsv" CAMPAIGN_DIR="$CW/h" FPT_ARGS="--lr -1" || rc=$?
  id=$(awk '$1 == "backbone" { print $3 }' "$CW/h.out")
  arr=$(awk '$1 == "array" { print $2 }' "$CW/h.out")
  if [ -n "$id" ] && [ -n "$arr" ] && wait_job "$id" "$TIMEOUT_SHORT"; then
    check "(h) the failing backbone job $id: FAILED" eval '[ "$(field "$id" JobState)" = FAILED ]'
    local end reason=""
    end=$(until_ 30)
    while [ "$SECONDS" -lt "$end" ]; do
      reason=$(field "$arr" Reason)
      [ "$reason" = DependencyNeverSatisfied ] && break
      sleep 1
    done
    check "(h) the array $arr never starts: PENDING ($reason), no run directory" \
      eval '[ "$(field "$arr" JobState)" = PENDING ] && [ "$reason" = DependencyNeverSatisfied ] && [ ! -e "$CW/h/exp/bit-xor" ]'
    rc=0
    campaign "$CW/h2.out" "$CW/h.tsv" CAMPAIGN_DIR="$CW/h" || rc=$?
    check "(h) while it is queued, a second campaign.sh refuses (exit $rc) and submits nothing" \
      eval '[ "$rc" -ne 0 ] && [ ! -s "$CW/h2.out" ] && grep -q "campaign jobs are still queued or running" "$CW/h2.out.err"'
    scancel "$arr" 2>/dev/null
  else
    bad "(h) campaign with a failing backbone: backbone job ${id:-?}, array ${arr:-?} (exit $rc; $(cat "$CW/h.out.err"))"
  fi

  # (i)
  printf '%b' "$H" >"$CW/i.tsv"
  printf 'bit-xor\timage\t1\t20\t16\t1e-3\t10\t2\timage\nbit-xor\tvit\t1\t20\t16\t1e-3\t10\t2\tdefault\n' >>"$CW/i.tsv"
  arr=$(submit i jobs/experiment.sbatch PARAMS="$CW/i.tsv" EXP_DIR="$CW/i/exp" BACKBONE_DIR="$CW/i/backbones" -- \
    --array=0-1 --output="$W/i-%A_%a.out")
  if [ -n "$arr" ] && wait_array "$arr" 2 "$TIMEOUT_SHORT"; then
    check "(i) a line naming a backbone that is not there: FAILED, naming it" \
      eval '[ "$(field "${arr}_0" JobState)" = FAILED ] && has_line "$W/i-${arr}_0.out" "backbone .image. \($CW/i/backbones/image.h5\) not found"'
    check "(i) an unknown arm: FAILED, naming it" \
      eval '[ "$(field "${arr}_1" JobState)" = FAILED ] && has_line "$W/i-${arr}_1.out" "unknown arm .vit."'
    check "(i) no run directory" test ! -e "$CW/i/exp"
  else
    bad "(i) array ${arr:-?} of bad lines ended within $TIMEOUT_SHORT s"
  fi
}
if [ -n "${TEST_CAMPAIGN_ONLY:-}" ]; then
  campaign_phase
  finish
fi

# --- phase 1: (a) the uninterrupted run, (e) a failing run, (c) the array -------
log "phase 1: (a) plain run, (e) failing run, (c) job array"
A=$(submit a jobs/train-bit-xor.sbatch "${XOR[@]}" RUN_DIR="$W/a")
E=$(submit e jobs/train-bit-xor.sbatch "${XOR[@]}" RUN_DIR="$W/e" BATCH_SIZE=7)
printf 'task\tlr\tseed\nbit-xor\t1e-3\t1\nbit-xor\t3e-4\t2\nbit-xor\t1e-2\t3\n' >"$W/sweep.tsv"
C=$(submit c jobs/sweep.sbatch PARAMS="$W/sweep.tsv" SWEEP_DIR="$W/sweep" STEPS=200 LOG_EVERY=50 EVAL_EVERY=100 \
  CHECKPOINT_EVERY=100 -- --array=0-2 --ntasks=1 --output="$W/c-%A_%a.out")
C_BAD=$(submit cbad jobs/sweep.sbatch PARAMS="$W/sweep.tsv" SWEEP_DIR="$W/sweep" -- --array=3 --ntasks=1 \
  --output="$W/cbad-%A_%a.out")
for v in a:A e:E c:C cbad:C_BAD; do
  id_var=${v#*:}
  [ -n "${!id_var}" ] || bad "sbatch (${v%%:*}): $(cat "$W/${v%%:*}.sbatch.err")"
done

if [ -n "$A" ] && wait_job "$A" "$TIMEOUT_SHORT"; then
  out=$W/a-$A.out
  check "(a) plain job $A: COMPLETED, exit 0:0, not requeued" job_is "$A" COMPLETED 0:0 0
  check "(a) the job log says start (restart 0) and done" \
    eval 'has_line "$out" "fpt-job\[$A\]: start: restart 0, 2 task" && has_line "$out" "fpt-job\[$A\]: done: fpt train finished"'
  check "(a) metrics.jsonl ends with val and test at step $STEPS" \
    eval '[ "$(final_metrics "$W/a/metrics.jsonl" | grep -c " step $STEPS ")" -eq 2 ]'
  check "(a) checkpoint written: checkpoints/latest -> $(cat "$W/a/checkpoints/latest" 2>/dev/null)" \
    eval '[ -s "$W/a/checkpoints/latest" ] && [ -e "$W/a/checkpoints/$(cat "$W/a/checkpoints/latest")" ]'
else
  bad "(a) plain job ${A:-?} finished within $TIMEOUT_SHORT s (or TEST_DEADLINE) (log: $W/a-$A.out)"
fi

if [ -n "$E" ] && wait_job "$E" "$TIMEOUT_SHORT"; then
  ecode=$(field "$E" ExitCode)
  check "(e) failing job $E: FAILED with fpt's exit code ($ecode), not 75, not requeued" \
    eval '[ "$(field "$E" JobState)" = FAILED ] && [ "$(field "$E" Restarts)" = 0 ] && [ "${ecode%%:*}" != 0 ] && [ "${ecode%%:*}" != 75 ]'
  check "(e) the job log says failed, not requeueing" has_line "$W/e-$E.out" "failed: fpt train exited with [0-9]+; not requeueing"
else
  bad "(e) failing job ${E:-?} ended within $TIMEOUT_SHORT s (or TEST_DEADLINE)"
fi

if [ -n "$C" ] && wait_array "$C" 3 "$TIMEOUT_SHORT"; then
  states=$(scontrol show job -o "$C" | grep -o 'JobState=[A-Z_]*' | sort | uniq -c | tr -s ' ')
  check "(c) array $C: 3 tasks COMPLETED ($states)" \
    eval '[ "$(scontrol show job -o "$C" | grep -c "JobState=COMPLETED.*ExitCode=0:0")" -eq 3 ]'
  check "(c) each array task trained its own line: run dirs TASK-lrLR-seedSEED with that lr and seed, final val/test" \
    "$PY" - "$W/sweep.tsv" "$W/sweep" 200 <<'PY'
import json, os, sys
tsv, sweep, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
good = True
for line in open(tsv).read().splitlines()[1:]:
    task, lr, seed = line.split("\t")
    d = os.path.join(sweep, f"{task}-lr{lr}-seed{seed}")
    try:
        conf = dict(l.split(": ", 1) for l in open(os.path.join(d, "config.yaml")).read().splitlines() if ": " in l)
        rows = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl"))]
    except OSError as e:
        print(f"  {d}: {e}")
        good = False
        continue
    finals = {r["split"] for r in rows if r["step"] == steps and r["split"] in ("val", "test")}
    if abs(float(conf.get("lr", "nan")) - float(lr)) > 1e-9 * float(lr) or int(conf.get("seed", -1)) != int(seed) \
            or finals != {"val", "test"}:
        print(f"  {d}: lr {conf.get('lr')} seed {conf.get('seed')} final splits {sorted(finals)}; expected {lr} {seed} val+test at {steps}")
        good = False
sys.exit(0 if good else 1)
PY
else
  bad "(c) array ${C:-?} finished within $TIMEOUT_SHORT s (or TEST_DEADLINE)"
fi
if [ -n "$C_BAD" ] && wait_array "$C_BAD" 1 "$TIMEOUT_SHORT"; then
  check "(c) array index past the parameter file: FAILED with a message" \
    eval '[ "$(field "$C_BAD" JobState)" = FAILED ] && has_line "$(ls "$W"/cbad-*.out | head -1)" "has 3 parameter lines \(array indices 0-2\), not index 3"'
else
  bad "(c) bad-index array ${C_BAD:-?} ended within $TIMEOUT_SHORT s (or TEST_DEADLINE)"
fi

# --- phase 2: (b) USR1 and (d) TERM to the batch shell, side by side ----------
log "phase 2: (b) SIGUSR1 and (d) SIGTERM to the batch shell after step $SIGNAL_AFTER"
B=$(submit b jobs/train-bit-xor.sbatch "${XOR[@]}" RUN_DIR="$W/b")
D=$(submit d jobs/train-bit-xor.sbatch "${XOR[@]}" RUN_DIR="$W/d")
declare -A SIG=([b]=USR1 [d]=TERM) JOB=([b]=$B [d]=$D) SENT=()
end=$(until_ "$TIMEOUT_SHORT")
while [ "$SECONDS" -lt "$end" ] && [ ${#SENT[@]} -lt 2 ]; do
  for k in b d; do
    [ -n "${SENT[$k]:-}" ] || [ -z "${JOB[$k]}" ] && continue
    st=$(last_step "$W/$k/metrics.jsonl")
    if [ "$st" -ge "$SIGNAL_AFTER" ]; then
      scancel --signal="${SIG[$k]}" --batch "${JOB[$k]}" && SENT[$k]=$st
      log "($k) sent SIG${SIG[$k]} to the batch shell of job ${JOB[$k]} at step $st"
    elif terminal "$(field "${JOB[$k]}" JobState)"; then
      SENT[$k]=none
    fi
  done
  sleep 0.2
done
ref=$(final_metrics "$W/a/metrics.jsonl" 2>/dev/null)
for k in b d; do
  id=${JOB[$k]} sig=${SIG[$k]} out=$W/$k-${JOB[$k]}.out
  if [ -z "$id" ] || [ -z "${SENT[$k]:-}" ] || [ "${SENT[$k]}" = none ]; then
    bad "($k) job ${id:-?} reached step $SIGNAL_AFTER and got SIG$sig within $TIMEOUT_SHORT s (or TEST_DEADLINE) (state $(field "$id" JobState))"
    continue
  fi
  if ! wait_job "$id" "$TIMEOUT_REQUEUE"; then
    bad "($k) job $id finished within $TIMEOUT_REQUEUE s (or TEST_DEADLINE) after SIG$sig (log: $out)"
    continue
  fi
  check "($k) SIG$sig at step ${SENT[$k]} of $STEPS: the batch shell forwarded SIGUSR1 to mpirun" \
    has_line "$out" "got SIG$sig: sending SIGUSR1 to mpirun"
  check "($k) fpt checkpointed and exited 75; the job requeued itself" \
    has_line "$out" "checkpointed \(exit 75\): requeueing job $id"
  check "($k) job $id: COMPLETED, exit 0:0, restarted once" job_is "$id" COMPLETED 0:0 1
  check "($k) the second run saw SLURM_RESTART_COUNT=1 and finished" \
    eval 'has_line "$out" "start: restart 1, " && has_line "$out" "done: fpt train finished"'
  check "($k) it resumed from a checkpoint instead of starting over" resumed_not_restarted 50 "$W/$k/metrics.jsonl"
  got=$(final_metrics "$W/$k/metrics.jsonl" 2>/dev/null)
  if [ -n "$ref" ] && [ "$got" = "$ref" ]; then
    ok "($k) last val and test lines equal the uninterrupted run's: $(tr '\n' ';' <<<"$got")"
  else
    bad "($k) last val and test lines equal the uninterrupted run's: got [$(tr '\n' ';' <<<"$got")], (a) has [$(tr '\n' ';' <<<"$ref")]"
  fi
done
campaign_phase
finish
