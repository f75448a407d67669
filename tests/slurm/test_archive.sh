#!/usr/bin/env bash
# A campaign outlives its machine through its archive (jobs/archive-runs.sh,
# fpt_restore in jobs/campaign.sh), tested without Slurm:
#   - a finished run and a built backbone are archived (the small files only:
#     no checkpoint); an unfinished run (killed at step 13 of 20) keeps its
#     small files, its latest checkpoint and its best.h5 in ARCHIVE/inflight
#     (without best.h5 fpt would refuse to resume it), one without a
#     checkpoint is not archived;
#   - restored into an empty campaign directory, the unfinished run resumes
#     from that checkpoint to the metrics of an uninterrupted run, and the
#     next archive drops its in-flight state;
#   - restored into an empty campaign directory, the runners skip the finished
#     run (experiment.sbatch: "is finished ... nothing to do") and
#     analysis/results_table.py reads its test accuracy from there;
#   - a run directory that already exists is not overwritten by the archive;
#   - only runs the campaign file names, with its protocol, are restored;
#   - a backbone being made (jobs/backbone.sbatch, killed at step 23 of 30)
#     keeps its latest and best checkpoints and its shape.h5 in
#     ARCHIVE/inflight/backbones;
#     restored, it resumes to the backbone an uninterrupted build exports;
#   - a finished run that ended on a lower step cap is continued to the line's
#     cap, to the same metrics as an uninterrupted run at that cap; a finished
#     run of any other protocol is an error naming the difference.
set -uo pipefail
FPT=$1
W=$2
source "$(dirname "$0")/../cli/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$W" && mkdir -p "$W"
export FPT OMP_NUM_THREADS=1
"$FPT" init --layers 2 --d-model 32 --heads 4 --positions 64 --seed 3 -o "$W/m.h5" > /dev/null || exit 1
printf 'task\tarm\tseed\tsteps\tbatch\tlr\teval_every\tpatience\n' > "$W/p.tsv"
printf 'bit-xor\tfpt\t%s\t20\t8\t1e-3\t10\t2\n' 1 2 >> "$W/p.tsv"
C=$W/camp
exp_run() { # exp_run INDEX: one line of p.tsv as an array task would run it
  (cd "$ROOT" && PARAMS=$W/p.tsv EXP_DIR=$C/exp MODEL=$W/m.h5 SLURM_ARRAY_TASK_ID=$1 \
    bash jobs/experiment.sbatch) > "$W/run$1.log" 2>&1
}
exp_run 0
check "line 0 ran to its final test line" grep -q '"split":"test".*"final":1' "$C/exp/bit-xor/fpt/seed1/metrics.jsonl"
# Line 1 is a run the machine did not finish: killed at step 13 (checkpoints
# every 10 steps). Its uninterrupted twin runs in another directory.
FPT_FAULT=step FPT_FAULT_AT=13 exp_run 1
check "line 1 was killed: a checkpoint, no final line" eval \
  '[ -s "$C/exp/bit-xor/fpt/seed2/checkpoints/latest" ] && ! grep -q "\"final\":1" "$C/exp/bit-xor/fpt/seed2/metrics.jsonl"'
(cd "$ROOT" && PARAMS=$W/p.tsv EXP_DIR=$W/twin MODEL=$W/m.h5 SLURM_ARRAY_TASK_ID=1 bash jobs/experiment.sbatch) > "$W/twin.log" 2>&1
# A directory with no checkpoint (a run killed before its first) is not kept.
mkdir -p "$C/exp/bit-xor/fpt/seed7/checkpoints" "$C/backbones"
echo '{"step":1}' > "$C/exp/bit-xor/fpt/seed7/metrics.jsonl"
cp "$W/m.h5" "$C/backbones/bit.h5"
A=$W/archive
(cd "$ROOT" && bash jobs/archive-runs.sh "$C" "$A") > "$W/archive.log" 2>&1
check "archive-runs: 1 run, 1 backbone ($(head -1 "$W/archive.log"))" grep -qx "archived 1 runs, 1 backbones into $A" "$W/archive.log"
check "archive-runs: 1 unfinished run kept ($(tail -1 "$W/archive.log"))" grep -qx "kept 1 unfinished runs' and 0 unfinished backbones' latest checkpoints in $A/inflight" "$W/archive.log"
check "the archive holds the finished run's small files, no checkpoint" eval \
  '[ -s "$A/exp/bit-xor/fpt/seed1/metrics.jsonl" ] && [ -s "$A/exp/bit-xor/fpt/seed1/config.yaml" ] &&
   [ -s "$A/exp/bit-xor/fpt/seed1/checkpoints/best.json" ] && [ -z "$(find "$A/exp" -name "ckpt-*")" ]'
check "the unfinished run is in inflight/ with its latest checkpoint and best.h5 only" eval \
  '[ ! -e "$A/exp/bit-xor/fpt/seed2" ] && [ "$(ls "$A/inflight/bit-xor/fpt/seed2/checkpoints")" = "$(printf "best.h5\nbest.json\nckpt-000000010.h5\nlatest")" ] &&
   cmp -s "$C/exp/bit-xor/fpt/seed2/checkpoints/ckpt-000000010.h5" "$A/inflight/bit-xor/fpt/seed2/checkpoints/ckpt-000000010.h5" &&
   cmp -s "$C/exp/bit-xor/fpt/seed2/checkpoints/best.h5" "$A/inflight/bit-xor/fpt/seed2/checkpoints/best.h5"'
check "the run without a checkpoint is not archived" test ! -e "$A/inflight/bit-xor/fpt/seed7" -a ! -e "$A/exp/bit-xor/fpt/seed7"
check "the backbone is archived byte for byte" cmp -s "$W/m.h5" "$A/backbones/bit.h5"

# A new machine: an empty campaign directory, restored from the archive.
rm -rf "$C"
(cd "$ROOT" && source jobs/lib/fpt-job.sh && fpt_restore "$A" "$C/exp" "$C/backbones" "$W/p.tsv") > "$W/restore.log" 2>&1
check "restore: 2 runs (1 unfinished), 1 backbone ($(cat "$W/restore.log"))" grep -qx "restored 2 runs (1 of them unfinished), 1 backbones (0 of them unfinished) from $A" "$W/restore.log"
exp_run 0
check "the restored run is skipped, not run again" grep -q "is finished (its final test line is there): nothing to do" "$W/run0.log"
exp_run 1
check "the unfinished run resumed from its step-10 checkpoint" grep -q 'resume: .*ckpt-000000010.h5 (step 10)' "$W/run1.log"
check "... to the metrics of the uninterrupted run" /usr/bin/python3 - "$C/exp/bit-xor/fpt/seed2/metrics.jsonl" "$W/twin/bit-xor/fpt/seed2/metrics.jsonl" <<'PY'
import json, sys
a, b = ([(r["step"], r["split"], r["loss"], r["accuracy"]) for r in map(json.loads, open(p))
         if r["split"] != "run"] for p in sys.argv[1:3])
sys.exit(0 if a == b and any(x[1] == "test" for x in a) else 1)
PY
(cd "$ROOT" && bash jobs/archive-runs.sh "$C" "$A") > "$W/archive2.log" 2>&1
check "archived again: 2 finished runs, the in-flight state dropped" eval \
  'grep -qx "archived 2 runs, 1 backbones into $A" "$W/archive2.log" && [ ! -e "$A/inflight/bit-xor/fpt/seed2" ]'
/usr/bin/python3 "$ROOT/analysis/results_table.py" "$C/exp" --params "$W/p.tsv" --csv "$W/t.csv" > "$W/t.md" 2> "$W/t.err"
check "results_table reads the restored run (seed 1 listed in the csv)" grep -q '^bit-xor,fpt,1,' "$W/t.csv"
# A run directory that exists (a newer state) is left alone.
echo '{"step":5}' > "$C/exp/bit-xor/fpt/seed1/metrics.jsonl"
(cd "$ROOT" && source jobs/lib/fpt-job.sh && fpt_restore "$A" "$C/exp" "$C/backbones" "$W/p.tsv") > "$W/restore2.log" 2>&1
check "a second restore copies nothing over existing directories" grep -qx "restored 0 runs (0 of them unfinished), 0 backbones (0 of them unfinished) from $A" "$W/restore2.log"
check "the existing run directory is unchanged" grep -qx '{"step":5}' "$C/exp/bit-xor/fpt/seed1/metrics.jsonl"
# A campaign file whose line has another protocol (a longer cap) restores nothing, and says why.
rm -rf "$C"
sed 's/\t20\t8\t/\t40\t8\t/' "$W/p.tsv" > "$W/p40.tsv"
(cd "$ROOT" && source jobs/lib/fpt-job.sh && fpt_restore "$A" "$C/exp" "$C/backbones" "$W/p40.tsv") > "$W/restore3.log" 2>&1
check "a line with another step cap: the archived runs are not restored" grep -qx "restored 0 runs (0 of them unfinished), 1 backbones (0 of them unfinished) from $A" "$W/restore3.log"
check "... and the reason is named" grep -qF "not restored: $A/exp/bit-xor/fpt/seed1 (protocol differs: steps 20 (line: 40))" "$W/restore3.log"
check "... and no run directory was made" test ! -e "$C/exp/bit-xor/fpt/seed1"

# The cap of a finished cell is raised: the run goes on from its checkpoint.
exp_run40() { # exp_run40 PARAMS EXP_DIR LOG
  (cd "$ROOT" && PARAMS=$1 EXP_DIR=$2 MODEL=$W/m.h5 SLURM_ARRAY_TASK_ID=0 bash jobs/experiment.sbatch) > "$3" 2>&1
}
rm -rf "$C"
exp_run 0
R=$C/exp/bit-xor/fpt/seed1
check "at cap 20 the run ends on its cap" grep -q '"step":20,"split":"test".*"final":1' "$R/metrics.jsonl"
exp_run40 "$W/p40.tsv" "$C/exp" "$W/ext.log"
check "the cap raised to 40: the runner continues the run ($(tail -1 "$W/ext.log"))" \
  grep -q "ended on a lower step cap: continuing it to 40 steps" "$W/ext.log"
check "... to its final line at step 40" grep -q '"step":40,"split":"test".*"final":1' "$R/metrics.jsonl"
check "... and the step-20 final lines are gone" eval '! grep -q "\"step\":20,.*\"final\":1" "$R/metrics.jsonl"'
exp_run40 "$W/p40.tsv" "$W/straight" "$W/straight.log"
norm() { grep -v '"split":"run"' "$1" | sed -E 's/"(tokens_per_s|step_s|compute_s|p2p_wait_s|allreduce_s|io_s)":[0-9.e+-]*,?//g'; }
check "the continued run's metrics equal an uninterrupted 40-step run's" \
  cmp -s <(norm "$R/metrics.jsonl") <(norm "$W/straight/bit-xor/fpt/seed1/metrics.jsonl")
# Lowered back to 20, or another learning rate: not this line's result, and said so.
exp_run40 "$W/p.tsv" "$C/exp" "$W/lower.log"
rc=$?
check "a finished run with a higher cap than the line's: exit $rc, not 0" test "$rc" -ne 0
check "... naming the difference" grep -q "holds a finished run of another protocol (steps 40 (line: 20))" "$W/lower.log"
sed 's/\t1e-3\t/\t3e-3\t/' "$W/p40.tsv" > "$W/p40lr.tsv"
exp_run40 "$W/p40lr.tsv" "$C/exp" "$W/lr.log"
rc=$?
check "a finished run with another lr: exit $rc, not 0" test "$rc" -ne 0
check "... naming the difference" grep -q "another protocol (lr 0.001 (line: 3e-3))" "$W/lr.log"

# A backbone being made when the machine goes: bit at a tiny shape (m.h5 with
# 128 positions: the task's 120 tokens), checkpoints every 10 steps.
bb_run() { # bb_run BACKBONE_DIR LOG: jobs/backbone.sbatch, as the campaign's job runs it
  (cd "$ROOT" && BACKBONE=bit BACKBONE_DIR=$1 MODEL=$W/m.h5 POSITIONS=128 STEPS=30 EVAL_EVERY=10 \
    PATIENCE=5 EVAL_SAMPLES=64 BATCH_SIZE=8 bash jobs/backbone.sbatch) > "$2" 2>&1
}
C2=$W/camp2 A2=$W/archive2
FPT_FAULT=step FPT_FAULT_AT=23 bb_run "$C2/backbones" "$W/bb-killed.log"
B=$C2/backbones/bit-run
check "the backbone run was killed: a step-20 checkpoint, best.h5, no bit.h5" eval \
  '[ "$(cat "$B/checkpoints/latest")" = ckpt-000000020.h5 ] && [ -s "$B/checkpoints/best.h5" ] && [ ! -e "$C2/backbones/bit.h5" ]'
bb_run "$W/bbtwin" "$W/bb-twin.log"
check "the uninterrupted twin exported bit.h5" test -s "$W/bbtwin/bit.h5"
(cd "$ROOT" && bash jobs/archive-runs.sh "$C2" "$A2") > "$W/bb-archive.log" 2>&1
check "archive: 1 unfinished backbone ($(tail -1 "$W/bb-archive.log"))" \
  grep -qx "kept 0 unfinished runs' and 1 unfinished backbones' latest checkpoints in $A2/inflight" "$W/bb-archive.log"
check "... its latest and best checkpoints, its shape.h5 and small files" eval \
  '[ "$(ls "$A2/inflight/backbones/bit-run/checkpoints")" = "$(printf "best.h5\nbest.json\nckpt-000000020.h5\nlatest")" ] &&
   cmp -s "$B/shape.h5" "$A2/inflight/backbones/bit-run/shape.h5" &&
   [ -s "$A2/inflight/backbones/bit-run/metrics.jsonl" ] && [ ! -e "$A2/backbones/bit.h5" ]'
rm -rf "$C2"
(cd "$ROOT" && source jobs/lib/fpt-job.sh && fpt_restore "$A2" "$C2/exp" "$C2/backbones" "$W/p.tsv") > "$W/bb-restore.log" 2>&1
check "restore: 1 backbone, unfinished ($(cat "$W/bb-restore.log"))" \
  grep -qx "restored 0 runs (0 of them unfinished), 1 backbones (1 of them unfinished) from $A2" "$W/bb-restore.log"
bb_run "$C2/backbones" "$W/bb-resumed.log"
check "the backbone run resumed from its step-20 checkpoint" grep -q 'resume: .*ckpt-000000020.h5 (step 20)' "$W/bb-resumed.log"
check "... and exported the same backbone as the uninterrupted build" /usr/bin/python3 - "$C2/backbones/bit.h5" "$W/bbtwin/bit.h5" <<'PY'
import sys, h5py, numpy as np
def flat(p):
    out = {}
    with h5py.File(p, "r") as f:
        out.update({"@" + k: np.asarray(v).tolist() for k, v in f.attrs.items() if not k.startswith("source_")})
        f.visititems(lambda n, o: out.__setitem__(n, o[()].tobytes()) if isinstance(o, h5py.Dataset) else None)
    return out
a, b = flat(sys.argv[1]), flat(sys.argv[2])
sys.exit(0 if a == b and len(a) > 10 else 1)
PY
(cd "$ROOT" && bash jobs/archive-runs.sh "$C2" "$A2") > "$W/bb-archive2.log" 2>&1
check "archived again: the backbone, its in-flight state dropped" eval \
  'grep -qx "archived 0 runs, 1 backbones into $A2" "$W/bb-archive2.log" && [ ! -e "$A2/inflight/backbones/bit-run" ] && [ -s "$A2/backbones/bit.h5" ]'

# A job Slurm did not confine (it may run on more CPUs than it was given):
# mpirun must not bind, or every such job's rank would share the first core.
launch_log() { # launch_log CPUS_ON_NODE LOG: a finished line's run, as a job on that many CPUs
  (cd "$ROOT" && PARAMS=$W/p40.tsv EXP_DIR=$W/bind$1 MODEL=$W/m.h5 SLURM_ARRAY_TASK_ID=0 SLURM_CPUS_ON_NODE=$1 \
    bash jobs/experiment.sbatch) > "$2" 2>&1
}
fpt_cpus() { (source "$ROOT/jobs/lib/fpt-job.sh" && fpt_cpus); } # the library's, in a subshell
rm -rf "$W/bind"*
launch_log 1 "$W/bind1.log"
launch_log "$(fpt_cpus)" "$W/bind-all.log"
if [ "$(fpt_cpus)" -gt 1 ]; then
  check "1 CPU of $(fpt_cpus), no cpuset: mpirun --bind-to none, and the log says why" \
    eval 'grep -q "start: .*mpirun -np 1 -x OMP_NUM_THREADS --bind-to none" "$W/bind1.log" && grep -q "no cpuset" "$W/bind1.log"'
else
  check "a 1-CPU machine: a 1-CPU job is confined, mpirun binds as usual" eval '! grep -q -- "--bind-to none" "$W/bind1.log"'
fi
check "a job given every CPU it can see: mpirun binds as usual" eval 'grep -q "start: .*mpirun -np 1 -x OMP_NUM_THREADS /" "$W/bind-all.log" && ! grep -q -- "--bind-to none" "$W/bind-all.log"'

# SIGTERM to every process of a running job (what scontrol requeue and scancel
# send): the log names the signal and says the last checkpoint stands.
rm -rf "$W/term"
(cd "$ROOT" && PARAMS=$W/p40.tsv EXP_DIR=$W/term MODEL=$W/m.h5 SLURM_ARRAY_TASK_ID=0 FPT_ARGS="--steps 1000000" \
  setsid bash jobs/experiment.sbatch) > "$W/term.log" 2>&1 &
TJ=$!
for _ in $(seq 200); do grep -q '"step":10,' "$W/term/bit-xor/fpt/seed1/metrics.jsonl" 2>/dev/null && break; sleep 0.1; done
kill -TERM -- "-$(ps -o pgid= -p "$TJ" | tr -d ' ')" 2>/dev/null
wait "$TJ"
check "SIGTERM to the whole job: the log names it and that the last checkpoint stands ($(tail -1 "$W/term.log" | cut -c1-120))" \
  eval 'grep -q "fpt-job.*: got SIGTERM" "$W/term.log" && grep -Eq "checkpointed \(exit 75\)|after the job got SIGTERM; not requeueing \(.*the last checkpoint stands" "$W/term.log"'

# A probe line (fpt probe: one exact fit over steps x batch samples): its run
# directory says so in config.yaml, and a second task of the line skips it;
# a line asking for another number of samples is refused, naming both.
printf 'task\tarm\tseed\tsteps\tbatch\tlr\teval_every\tpatience\n' > "$W/pr.tsv"
cp "$W/pr.tsv" "$W/pr30.tsv"
printf 'bit-xor\tprobe\t1\t20\t8\t1e-3\t10\t2\n' >> "$W/pr.tsv"
printf 'bit-xor\tprobe\t1\t30\t8\t1e-3\t10\t2\n' >> "$W/pr30.tsv"
pr_run() { # pr_run PARAMS LOG
  (cd "$ROOT" && PARAMS=$1 EXP_DIR=$W/pr MODEL=$W/m.h5 SLURM_ARRAY_TASK_ID=0 bash jobs/experiment.sbatch) > "$2" 2>&1
}
pr_run "$W/pr.tsv" "$W/pr1.log"
check "a probe line: finished, its config.yaml names train_limit 160 (20 x 8)" \
  eval 'grep -q "\"split\":\"test\".*\"final\":1" "$W/pr/bit-xor/probe/seed1/metrics.jsonl" && grep -qx "train_limit: 160" "$W/pr/bit-xor/probe/seed1/config.yaml"'
pr_run "$W/pr.tsv" "$W/pr2.log"
check "the finished probe run is skipped ($(tail -1 "$W/pr2.log" | cut -c1-100))" grep -q "is finished (its final test line is there): nothing to do" "$W/pr2.log"
rc=0
pr_run "$W/pr30.tsv" "$W/pr3.log" || rc=$?
check "a probe line of another size is refused (exit $rc), naming train_limit" \
  eval '[ "$rc" -ne 0 ] && grep -q "train_limit 160 (line: 240)" "$W/pr3.log"'
finish
