#!/usr/bin/env bash
# Write failures (issue 16 §2). A write that fails on one rank must end every
# rank together, within seconds, with one 'fpt: error' line naming the file;
# nothing temporary is left, the previous checkpoint and `latest` stay intact
# and loadable, and nothing crashes at exit (HDF5 1.10's exit handler used to
# segfault on the ID of a file whose H5Fclose had failed).
#  (a) The fault switch (FPT_FAIL_WRITE / FPT_FAIL_RANK / FPT_FAIL_NTH,
#      include/fpt/check.h) on every write path: checkpoints (attributes, a
#      dataset, flush, close, rename, `latest`), the probe's feature cache,
#      model files (init, import, export, train --export), dataset files,
#      probe.h5; 1 and 2 ranks, and on rank 1 alone (the deadlock: rank 0
#      used to wait in the next collective call for ever).
#  (b) A real full filesystem: a small tmpfs that this test mounts (as root;
#      otherwise it says "skipped" and counts nothing), filled but for a few
#      KB: a checkpoint (1 and 2 ranks), init, import, export, data, the
#      feature cache.
# Every mpirun runs under `timeout`: a hang is a failure, not a stuck test.
set -uo pipefail
FPT=$(realpath "$1")
W=$2
HERE=$(dirname "$(realpath "$0")")
source "$HERE/lib.sh"
export OMP_NUM_THREADS=1
unset FPT_FAULT FPT_FAULT_AT FPT_FAULT_RANK FPT_FAULT_NTH FPT_FAIL_WRITE FPT_FAIL_RANK FPT_FAIL_NTH
PY=/usr/bin/python3
TO=60
rm -rf "$W" && mkdir -p "$W"
W=$(realpath "$W")

mpi() { # mpi NP ARGS...: fpt under mpirun, killed after $TO s
  local np=$1; shift
  timeout -k 5 "$TO" "$MPIRUN" -np "$np" --oversubscribe "$FPT" "$@"
}
run() { # run NP ARGS...: 1 rank without mpirun (a crash shows as exit 139), else mpi
  local np=$1; shift
  if [ "$np" -eq 1 ]; then timeout -k 5 "$TO" "$FPT" "$@"; else mpi "$np" "$@"; fi
}
# fails WHAT PATTERN LOG NP ARGS...: the command fails within $TO s, exits
# nonzero without a crash, and prints exactly one 'fpt: error' line, which
# matches PATTERN. Environment variables set for the call pass through.
fails() {
  local what=$1 pat=$2 log=$3 np=$4; shift 4
  local t0=$SECONDS rc=0
  run "$np" "$@" > "$log.out" 2> "$log" || rc=$?
  local dt=$((SECONDS - t0)) n
  n=$(grep -c 'fpt: error' "$log")
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    bad "$what: hung, killed after $TO s" "$log"
  elif [ "$rc" -ge 128 ] || grep -q 'signal 11\|Segmentation\|core dumped' "$log"; then
    bad "$what: crashed (exit $rc)" "$log"
  elif [ "$rc" -ne 0 ] && [ "$n" -eq 1 ] && grep 'fpt: error' "$log" | grep -q -- "$pat"; then
    ok "$what (exit $rc in ${dt}s: $(grep 'fpt: error' "$log"))"
  else
    bad "$what: exit $rc, $n error lines (want 1 matching '$pat')" "$log"
  fi
}
no_tmp() { # no_tmp DIR...: nothing temporary left
  local left
  left=$(find "$@" -name '*.tmp*' 2>/dev/null)
  [ -z "$left" ] || { echo "    left behind: $left"; return 1; }
}

# Inputs: a backbone whose checkpoints hold ~200 KB (the positional table is
# trainable), a bit-xor dataset, a safetensors file.
"$FPT" init --layers 2 --d-model 64 --heads 4 --positions 256 --seed 3 -o "$W/m.h5" > /dev/null || exit 1
"$FPT" data bit-xor --n-train 64 --n-val 16 --n-test 16 -o "$W/d.h5" > /dev/null || exit 1
mkdir -p "$W/st"
$PY "$HERE/make_safetensors.py" "$W/st/model.safetensors" --layers 2 --d-model 64 --heads 4 \
  --positions 64 --vocab 50 > /dev/null || exit 1
TRAIN=(train --model "$W/m.h5" --data "$W/d.h5" --batch-size 8 --micro-batches 2 --log-every 2
  --eval-every 4 --checkpoint-every 4 --resume auto)
# The base run: 4 steps, one checkpoint (ckpt-4). Each case copies it and
# resumes to step 8, where its checkpoint fails.
run 1 "${TRAIN[@]}" --steps 4 --run-dir "$W/base" > "$W/base.log" 2>&1 || { cat "$W/base.log"; exit 1; }
CK4=ckpt-000000004.h5
SUM4=$(md5sum < "$W/base/checkpoints/$CK4")
# intact RUN: `latest` names ckpt-4, whose bytes are unchanged; no ckpt-8, nothing temporary.
intact() {
  [ "$(cat "$1/checkpoints/latest")" = "$CK4" ] && [ "$(md5sum < "$1/checkpoints/$CK4")" = "$SUM4" ] &&
    [ ! -e "$1/checkpoints/ckpt-000000008.h5" ] && no_tmp "$1"
}
# resumes NP RUN: the run continues from ckpt-4 on a disk with room and writes ckpt-8.
resumes() {
  local np=$1 dir=$2
  if run "$np" "${TRAIN[@]}" --steps 8 --stages "$np" --run-dir "$dir" > "$dir.resume.log" 2>&1 &&
    grep -q "resume: .*$CK4 (step 4)" "$dir.resume.log" &&
    [ "$(cat "$dir/checkpoints/latest")" = ckpt-000000008.h5 ]; then
    ok "$(basename "$dir"): resumed from ckpt-4 and wrote ckpt-8"
  else
    bad "$(basename "$dir"): resume from ckpt-4" "$dir.resume.log"
  fi
}
# ckpt_case NAME NP POINT RANK NTH: the step-8 checkpoint fails at POINT
# (on RANK, or every rank if empty; the NTH matching write).
ckpt_case() {
  local name=$1 np=$2 point=$3 rank=$4 nth=$5 d="$W/ck-$1"
  cp -r "$W/base" "$d"
  FPT_FAIL_WRITE=$point FPT_FAIL_RANK=$rank FPT_FAIL_NTH=$nth \
    fails "checkpoint, $np rank(s), $point on rank ${rank:-all} (#$nth)" "ckpt-000000008.h5" "$d.err" \
    "$np" "${TRAIN[@]}" --steps 8 --stages "$np" --run-dir "$d"
  check "checkpoint $name: previous checkpoint and latest intact, nothing temporary" intact "$d"
}

echo "== (a) the fault switch"
ckpt_case attrs-1 1 checkpoint-attrs "" 1
ckpt_case dataset-1 1 checkpoint-dataset "" 5
ckpt_case reserve-1 1 checkpoint-reserve "" 1
ckpt_case close-1 1 checkpoint-close "" 1
ckpt_case rename-1 1 checkpoint-rename "" 1
ckpt_case latest-1 1 checkpoint-latest "" 1
resumes 1 "$W/ck-dataset-1"
# 2 ranks (2 stages): rank 1 writes stage 1's tensors alone.
ckpt_case dataset-r1 2 checkpoint-dataset 1 2
ckpt_case dataset-r0 2 checkpoint-dataset 0 7
ckpt_case full-r1 2 checkpoint-dataset 1 1+
ckpt_case attrs-r1 2 checkpoint-attrs 1 1
ckpt_case reserve-r0 2 checkpoint-reserve 0 1
ckpt_case close-r1 2 checkpoint-close 1 1
ckpt_case latest-2 2 checkpoint-latest 0 1
resumes 2 "$W/ck-dataset-r1"

# Serial files: model files (init, import, export), dataset files.
# serial NAME NP POINT RANK NTH OUT CMD...: the write of OUT fails at POINT.
serial() {
  local name=$1 np=$2 point=$3 rank=$4 nth=$5 out=$6; shift 6
  rm -f "$out"
  FPT_FAIL_WRITE=$point FPT_FAIL_RANK=$rank FPT_FAIL_NTH=$nth \
    fails "$name, $np rank(s), $point on rank ${rank:-all} (#$nth)" "$(basename "$out")" \
    "$W/$(echo "$name" | tr -c 'a-z0-9\n' '_')-$point-$np.err" "$np" "$@"
  check "$name ($point, $np rank(s)): no output, nothing temporary" \
    eval "[ ! -e '$out' ] && no_tmp '$(dirname "$out")'"
}
mkdir -p "$W/out"
# POINT:NTH (the second attribute or dataset; the one reservation, close, rename)
for pn in h5-attr:2 h5-dataset:2 h5-reserve:1 h5-close:1 h5-rename:1; do
  p=${pn%:*} n=${pn#*:}
  serial init 1 "$p" "" "$n" "$W/out/init.h5" init --layers 2 --d-model 64 --heads 4 --positions 64 -o "$W/out/init.h5"
  serial import 1 "$p" "" "$n" "$W/out/imp.h5" import "$W/st/model.safetensors" -o "$W/out/imp.h5"
  serial export 1 "$p" "" "$n" "$W/out/exp.h5" export --checkpoint "$W/base/checkpoints/$CK4" -o "$W/out/exp.h5"
done
for pn in h5-attr:2 dataset-array:2 h5-reserve:1 h5-close:1 h5-rename:1; do
  p=${pn%:*} n=${pn#*:}
  serial data 1 "$p" "" "$n" "$W/out/data.h5" data bit-xor --n-train 64 --n-val 16 --n-test 16 -o "$W/out/data.h5"
done
# Under mpirun only rank 0 writes these; rank 1 must end too.
serial import 2 h5-dataset 0 3 "$W/out/imp.h5" import "$W/st/model.safetensors" -o "$W/out/imp.h5"
serial data 2 dataset-array 0 2 "$W/out/data.h5" data bit-xor --n-train 64 --n-val 16 --n-test 16 -o "$W/out/data.h5"
serial init 2 h5-dataset "" 3 "$W/out/init.h5" init --layers 2 --d-model 64 --heads 4 --positions 64 -o "$W/out/init.h5"
# fpt train --export: rank 0 exports after training.
cp -r "$W/base" "$W/ex"
serial "train --export" 2 h5-dataset 0 3 "$W/out/tex.h5" "${TRAIN[@]}" --steps 8 --stages 2 --run-dir "$W/ex" --export "$W/out/tex.h5"

# The probe: its feature cache (collective), its checkpoint and probe.h5.
PROBE=(probe --model "$W/m.h5" --data "$W/d.h5" --lambda 1 --block-size 8 --batch-size 8)
# probe_case NP POINT RANK NTH PATTERN GONE: fails; no file GONE (in the run
# directory), no checkpoint, nothing temporary.
probe_case() {
  local np=$1 point=$2 rank=$3 nth=$4 pat=$5 gone=$6 d="$W/pr-$2-$1-${3:-all}"
  FPT_FAIL_WRITE=$point FPT_FAIL_RANK=$rank FPT_FAIL_NTH=$nth \
    fails "probe, $np rank(s), $point on rank ${rank:-all} (#$nth)" "$pat" "$d.err" "$np" \
    "${PROBE[@]}" --run-dir "$d" --stages "$np"
  check "probe $point ($np rank(s)): no $gone, no checkpoint, nothing temporary" \
    eval "[ ! -e '$d/$gone' ] && [ ! -e '$d/checkpoints/latest' ] && no_tmp '$d'"
}
probe_case 1 features-attrs "" 1 features.h5 features.h5
probe_case 2 features-attrs 1 1 features.h5 features.h5
probe_case 2 features-write 1 2 features.h5 features.h5
probe_case 2 features-write 0 1 features.h5 features.h5
probe_case 2 features-reserve 0 1 features.h5 features.h5
probe_case 2 features-close 1 1 features.h5 features.h5
probe_case 2 features-rename 0 1 features.h5 features.h5
probe_case 2 checkpoint-dataset 1 1 ckpt-000000000.h5 checkpoints/ckpt-000000000.h5
probe_case 2 h5-dataset 0 1 probe.h5 probe.h5

echo "== (b) a real full filesystem"
FULL=$W/full
mkdir -p "$FULL"
if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: a full filesystem needs root to mount a tmpfs (running as $(id -un))"
elif ! mount -t tmpfs -o size=4m tmpfs "$FULL" 2> "$W/mount.err"; then
  echo "skipped: cannot mount a tmpfs on $FULL: $(cat "$W/mount.err")"
else
  unmount() { umount "$FULL" 2> /dev/null || { sleep 2; umount -l "$FULL"; }; }
  trap unmount EXIT
  fill() { # fill KB: take the free space of $FULL but KB
    rm -f "$FULL/filler"
    local avail
    avail=$(stat -f -c '%a * %S' "$FULL")
    head -c $((avail - $1 * 1024)) /dev/zero > "$FULL/filler" 2> /dev/null
  }
  # The checkpoint: ckpt-4 fits; the disk fills during ckpt-8.
  for np in 1 2; do
    for kb in 64 160; do
      d="$FULL/run-$np-$kb"
      rm -rf "$FULL"/run-*
      rm -f "$FULL/filler"
      cp -r "$W/base" "$d"
      fill "$kb"
      fails "full disk, checkpoint, $np rank(s), $kb KB free" "ckpt-000000008.h5.*No space left" \
        "$W/full-ck-$np-$kb.err" "$np" "${TRAIN[@]}" --steps 8 --stages "$np" --run-dir "$d"
      check "full disk, checkpoint, $np rank(s), $kb KB free: previous checkpoint and latest intact, nothing temporary" intact "$d"
      rm -f "$FULL/filler"
      resumes "$np" "$d"
    done
  done
  # With room for what a checkpoint may take (reserved while it is written,
  # ~1 MB here), it is written on the nearly full disk, and afterwards takes
  # no more than the previous one: the reservation was given back.
  for np in 1 2; do
    d="$FULL/run-$np-room"
    rm -rf "$FULL"/run-*
    rm -f "$FULL/filler"
    cp -r "$W/base" "$d"
    fill 1600
    if run "$np" "${TRAIN[@]}" --steps 8 --stages "$np" --run-dir "$d" > "$W/full-room-$np.log" 2>&1 &&
      [ "$(cat "$d/checkpoints/latest")" = ckpt-000000008.h5 ] && no_tmp "$d" &&
      [ "$(du -k "$d/checkpoints/ckpt-000000008.h5" | cut -f1)" -le "$(du -k "$d/checkpoints/$CK4" | cut -f1)" ]; then
      ok "nearly full disk (1.6 MB free), $np rank(s): ckpt-8 written, $(du -k "$d/checkpoints/ckpt-000000008.h5" | cut -f1) KB on disk like ckpt-4"
    else
      bad "nearly full disk (1.6 MB free), $np rank(s): ckpt-8" "$W/full-room-$np.log"
    fi
  done
  rm -rf "$FULL"/run-*
  # Serial files, 1 and 2 ranks (rank 0 writes).
  full_serial() { # full_serial NAME NP KB OUT CMD...: OUT written with KB free
    local name=$1 np=$2 kb=$3 out=$4; shift 4
    fill "$kb"
    fails "full disk, $name, $np rank(s), $kb KB free" "$(basename "$out").*\(No space left\|disk full\)" \
      "$W/full-$name-$np-$kb.err" "$np" "$@"
    check "full disk, $name, $np rank(s): no output, nothing temporary" eval "[ ! -e '$out' ] && no_tmp '$FULL'"
    rm -f "$FULL/filler"
  }
  full_serial init 1 16 "$FULL/init.h5" init --layers 2 --d-model 64 --heads 4 --positions 64 -o "$FULL/init.h5"
  full_serial init 1 200 "$FULL/init.h5" init --layers 2 --d-model 64 --heads 4 --positions 64 -o "$FULL/init.h5"
  # (fpt import words the cause "(disk full?)")
  full_serial import 1 16 "$FULL/imp.h5" import "$W/st/model.safetensors" -o "$FULL/imp.h5"
  full_serial import 2 16 "$FULL/imp.h5" import "$W/st/model.safetensors" -o "$FULL/imp.h5"
  full_serial export 1 16 "$FULL/exp.h5" export --checkpoint "$W/base/checkpoints/$CK4" -o "$FULL/exp.h5"
  # A 128 KB dataset file: the disk fills in its last arrays.
  full_serial data 1 100 "$FULL/data.h5" data bit-xor --n-train 2000 --n-val 16 --n-test 16 -o "$FULL/data.h5"
  full_serial data 2 112 "$FULL/data.h5" data bit-xor --n-train 2000 --n-val 16 --n-test 16 -o "$FULL/data.h5"
  # The feature cache (collective), 1 and 2 ranks.
  for np in 1 2; do
    fill 16
    fails "full disk, feature cache, $np rank(s)" "features.h5.*No space left" "$W/full-probe-$np.err" "$np" \
      "${PROBE[@]}" --run-dir "$W/pf-$np" --stages "$np" --cache "$FULL/features.h5"
    check "full disk, feature cache, $np rank(s): no cache, nothing temporary" \
      eval "[ ! -e '$FULL/features.h5' ] && no_tmp '$FULL' '$W/pf-$np'"
    rm -f "$FULL/filler"
  done
  unmount && trap - EXIT
fi
finish
