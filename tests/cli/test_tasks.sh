#!/usr/bin/env bash
# The task table (src/tasks/registry.c, issue 17 §1) as `fpt data` shows and
# enforces it: --help lists every task of the table with its summary; an
# option a task does not take is refused with one error line naming the
# option and the task (issue 16 §5); --n-val 0, and any build whose
# validation split comes out empty, are refused and write nothing; an
# unknown task lists the known ones; `fpt train --task` takes the generated
# tasks of the table only.
set -uo pipefail
FPT=$1
W=$2
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"
rm -rf "$W" && mkdir -p "$W"
REGISTRY="$HERE/../../src/tasks/registry.c"

# The table's task names, in table order, read from the source.
mapfile -t TASKS < <(sed -n 's/^ *{\.name = "\([^"]*\)",.*/\1/p' "$REGISTRY")
# ... and those generated on the fly (rows with a sampler).
mapfile -t GENERATED < <(awk -F'"' '/\{\.name = "/ {name = $2} /\.gen_sample = / {print name}' "$REGISTRY")
check "the table has tasks (${#TASKS[@]}: ${TASKS[*]})" test "${#TASKS[@]}" -ge 9
check "generated tasks: ${GENERATED[*]}" test "${#GENERATED[@]}" -ge 2

# --- --help: every task of the table, in its order, with a summary ---------
"$FPT" data --help > "$W/help" 2>&1
check "fpt data --help exits 0" test $? -eq 0
listed=$(sed -n '/^tasks/,/^$/p' "$W/help" | awk '/^  [^ ]/ {print $1}' | tr '\n' ' ')
check "--help lists exactly the table's tasks, in order ($listed)" test "$listed" = "${TASKS[*]} "
for t in "${TASKS[@]}"; do
  check "--help: $t has a one-line summary" grep -Eq "^  $t +[^ ].{10,}" "$W/help"
done
check "--help: --n-val says which tasks take it" grep -Eq -- "--n-val .*bit-xor 1000.*mnist 5000" "$W/help"

# --- options a task does not take: one error naming the option and the task -
refused() { # TASK OPTION VALUE
  local task=$1 opt=$2 val=$3
  expect_error "$task $opt $val refused" "option $opt: does not apply to task $task" \
    "$W/e.$task$opt" -- "$FPT" data "$task" "$opt" "$val" -o "$W/out.h5"
  check "$task $opt: no output" test ! -e "$W/out.h5"
}
refused fashion-mnist --n-train 5
refused fashion-mnist --n-test 5
refused bit-xor --pad32 true
refused bit-xor --patterns 2
refused bit-xor --input "$W"
refused bit-memory --max-len 64
refused mnist --seq 16
refused cifar10 --tsv-dir "$W/tsv"
refused pfam --n-val 3
refused text --seed 3
refused listops --bit-length 8
# listops: the generator's options do not apply to TSV files.
"$FPT" data listops --n-train 30 --n-val 5 --n-test 5 --seed 2 --tsv-dir "$W/tsv" -o "$W/lo.h5" > /dev/null 2>&1
check "listops: generates 30/5/5" test -s "$W/lo.h5"
expect_error "listops --input with --n-train refused" "option --n-train: does not apply to task listops with --input" \
  "$W/e.lo" -- "$FPT" data listops --input "$W/tsv" --n-train 10 -o "$W/out.h5"
# The options a task takes are accepted.
"$FPT" data bit-memory --patterns 3 --bit-length 16 --patch 4 --n-train 5 --n-val 2 --n-test 2 \
  -o "$W/bm.h5" > "$W/bm.log" 2>&1
check "bit-memory takes --patterns --bit-length --patch" test -s "$W/bm.h5"

# --- empty validation splits are never written ------------------------------
for t in bit-xor bit-memory listops mnist cifar10; do
  expect_error "$t --n-val 0 refused" "option --n-val: must be >= 1" "$W/e.nval.$t" -- \
    "$FPT" data "$t" --n-val 0 -o "$W/out.h5"
  check "$t --n-val 0: no output" test ! -e "$W/out.h5"
done
# A source whose own split leaves val empty: pfam families of <= 2 sequences
# go to train entirely.
printf '# STOCKHOLM 1.0\n#=GF ID tiny\nseq1 ACDEFG\nseq2 ACDEFH\n//\n' > "$W/tiny.sto"
expect_error "pfam with an empty validation split refused" "validation split is empty" "$W/e.pfam" -- \
  "$FPT" data pfam --input "$W/tiny.sto" -o "$W/out.h5"
check "pfam, empty val: no output" test ! -e "$W/out.h5"

# --- unknown tasks -------------------------------------------------------------
known=$(IFS=,; echo "${TASKS[*]}" | sed 's/,/, /g')
expect_error "unknown task lists the known ones" "unknown task 'nope' (known: $known)" "$W/e.nope" -- \
  "$FPT" data nope -o "$W/out.h5"

# --- fpt train --task: the generated tasks of the table ----------------------
"$FPT" init --layers 1 --d-model 8 --heads 2 --positions 16 -o "$W/m.h5" > /dev/null 2>&1
expect_error "train --task mnist: not generated" "option --task: mnist is not generated on the fly" "$W/e.tr1" -- \
  "$FPT" train --model "$W/m.h5" --task mnist --steps 1 --run-dir "$W/run1"
generated=$(IFS=,; echo "${GENERATED[*]}" | sed 's/,/, /g')
expect_error "train --task nope: lists the generated tasks" "option --task: unknown task 'nope' ($generated)" \
  "$W/e.tr2" -- "$FPT" train --model "$W/m.h5" --task nope --steps 1 --run-dir "$W/run2"
finish
