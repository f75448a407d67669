#!/usr/bin/env bash
# analysis/results_table.py, steps_to_converge.py, learning_curves.py on synthetic
# run directories whose answers are worked out by hand below (ties, the final
# evaluation as a candidate, a missing seed, an unfinished run, a run with no
# metrics yet, a line cut by a crash, even and odd seed counts, "> budget"); the
# campaign's arms (LSTMs, bit, image, mlm, in-domain marks), early stop vs cap,
# the LR sweep chosen on val, best.json checks, a directory mixing two protocols
# (refused, nothing written) and a campaign not started (the skeleton); then
# jobs/run-experiments.sh end to end on a tiny model: four bit-xor arms finish,
# a second invocation skips them, and the table reports them.
#   bash tests/analysis/test_analysis.sh FPT WORKDIR     (SKIP_E2E=1: synthetic part only)
set -uo pipefail
FPT=$1
W=$2
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/cli/lib.sh
source "$ROOT/tests/cli/lib.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
PY=/usr/bin/python3
A=$ROOT/analysis
rm -rf "$W" && mkdir -p "$W"

# --- synthetic runs ------------------------------------------------------------
S=$W/syn
CUR=""
mkrun() { # mkrun TASK ARM SEED BUDGET [LR [PATIENCE]]: a run directory under $S; later tl/ev lines go to it
  local d=$S/$1/$2/seed$3
  mkdir -p "$d"
  printf 'task: "%s"\nsteps: %s\nseed: %s\nlr: %s\nearly_stop: %s\nbatch_size: 16\n' "$1" "$4" "$3" \
    "${5:-0.001}" "${6:-0}" >"$d/config.yaml"
  RUN=$d
  CUR=$d/metrics.jsonl
  : >"$CUR"
}
tl() { # tl STEP LOSS: a train line
  printf '{"step":%s,"split":"train","loss":%s,"accuracy":0.5,"tokens_per_s":100,"lr":0.001}\n' "$1" "$2" >>"$CUR"
}
ev() { # ev STEP VAL_ACC TEST_ACC [final]: a val and a test line
  local fin=""
  [ -n "${4:-}" ] && fin=',"final":1'
  printf '{"step":%s,"split":"val","loss":1,"accuracy":%s,"tokens_per_s":0%s}\n' "$1" "$2" "$fin" >>"$CUR"
  printf '{"step":%s,"split":"test","loss":1,"accuracy":%s,"tokens_per_s":0%s}\n' "$1" "$3" "$fin" >>"$CUR"
}
# bit-xor, budget 40. fpt: selected (best val, ties -> earliest) test 0.80, 0.85, 0.90
# -> 85.0 ± 5.0; convergence (>= 0.99 best, a later evaluation must exist): 20, 20, > 40 -> median 20.
mkrun bit-xor fpt 1 40
tl 10 0.7; ev 10 0.5 0.4; tl 20 0.5; ev 20 0.9 0.8; tl 30 0.4; ev 30 0.9 0.7; tl 40 0.3; ev 40 0.85 0.95 f
mkrun bit-xor fpt 2 40 # best val 0.95 at 20 and at the final 40: the earliest (test 0.85) wins
tl 10 0.6; ev 10 0.6 0.55; tl 20 0.4; ev 20 0.95 0.85; tl 40 0.2; ev 40 0.95 0.99 f
mkrun bit-xor fpt 3 40 # the final evaluation is the best: test 0.90; converges only there: > 40
tl 10 0.8; ev 10 0.7 0.6; ev 20 0.8 0.7; tl 40 0.1; ev 40 1.0 0.9 f
# random: seed 1 finished (tie at 0.5 -> step 10, test 0.50; converged at 10), seed 2 missing,
# seed 3 unfinished with a better val (0.95) that must not count -> "50.0 (n=1)", steps "10 (n=1)".
mkrun bit-xor random 1 40
tl 10 0.7; ev 10 0.5 0.5; tl 40 0.69; ev 40 0.5 0.52 f
mkrun bit-xor random 3 40
tl 10 0.7; ev 10 0.9 0.9; tl 20 0.6; ev 20 0.95 0.95; tl 25 0.5
# stats: test 0.60 (final selected), 0.70 (step 10) -> 65.0 ± 7.1 (n=2); seed 3 missing.
mkrun bit-xor stats 1 40
ev 10 0.6 0.6; ev 40 0.7 0.6 f
mkrun bit-xor stats 2 40
ev 10 0.8 0.7; ev 40 0.75 0.9 f
# fashion-mnist, budget 1000. fpt: every selected test is 1.0 -> 100.0 ± 0.0 (n=3: seed 4 is missing);
# converged at 100, 200, 300 -> 200. random: 0.91, 0.92, 0.93 -> 92.0 ± 1.0; 400, 800, > 1000 -> 800;
# speed-up 800 / 200 = 4.0x.
mkrun fashion-mnist fpt 1 1000
tl 100 2.0; ev 100 0.95 1.0; ev 200 0.95 0.98; tl 1000 0.5; ev 1000 0.95 0.97 f
mkrun fashion-mnist fpt 2 1000
tl 100 2.1; ev 100 0.5 0.5; ev 200 0.95 1.0; tl 1000 0.6; ev 1000 0.95 0.9 f
mkrun fashion-mnist fpt 3 1000
ev 100 0.5 0.5; ev 200 0.6 0.6; ev 300 0.95 1.0; ev 1000 0.95 0.9 f
mkrun fashion-mnist random 1 1000
ev 100 0.5 0.5; ev 400 0.91 0.91; ev 1000 0.91 0.5 f
mkrun fashion-mnist random 2 1000
ev 100 0.5 0.5; ev 800 0.92 0.92; ev 1000 0.92 0.5 f
mkrun fashion-mnist random 3 1000
ev 100 0.5 0.5; ev 800 0.6 0.6; ev 1000 0.93 0.93 f
# A fourth seed exists (full, just started): three finished seeds of four show "(n=3)".
mkrun fashion-mnist full 4 1000
rm -f "$CUR"
# bit-memory, budget 100. fpt: 0.90 (step 50), 0.85 (step 75) -> 87.5 ± 3.5 (n=2); converged 50, 75
# -> median of an even count 62.5; random seed 1: 0.60, never converged -> "> 100 (n=1)"; speed-up
# > 100 / 62.5 = 1.6x; random seed 2 missing.
mkrun bit-memory fpt 1 100
echo 'bit_length: 100' >>"$RUN/config.yaml"
ev 50 0.9 0.9; ev 100 0.9 0.8 f
mkrun bit-memory fpt 2 100
ev 50 0.5 0.5; ev 75 0.9 0.85; ev 100 0.9 0.95 f
mkrun bit-memory random 1 100
ev 50 0.5 0.5; ev 100 0.6 0.6 f
# listops, budget 1000: fpt 40.0, > 1000; random 35.0, 500 -> speed-up < 500 / 1000 = 0.5x.
mkrun listops fpt 1 1000
ev 500 0.3 0.3; ev 1000 0.4 0.4 f
mkrun listops random 1 1000
ev 500 0.35 0.35; ev 1000 0.35 0.3 f
# listops, output layer only (Table 10): SGD ("head") 0.25 at the best val (step 500); the exact
# probe's lines (fpt probe: a val line per lambda and solver, then the final train/val/test of
# the chosen lambda, all at step 0) -> its final test 0.31.
mkrun listops head 1 1000
ev 500 0.22 0.25; ev 1000 0.2 0.21 f
mkrun listops probe 1 1000
printf '{"step":0,"split":"val","loss":2,"accuracy":0.30,"tokens_per_s":0,"lambda":1,"sweep":1}\n' >>"$CUR"
printf '{"step":0,"split":"val","loss":2,"accuracy":0.33,"tokens_per_s":0,"lambda":10,"sweep":1}\n' >>"$CUR"
printf '{"step":0,"split":"%s","loss":2,"accuracy":%s,"tokens_per_s":0,"lambda":10,"final":1}\n' train 0.4 val 0.33 test 0.31 >>"$CUR"
# pfam: fpt unfinished (step 250 of 500, the last line cut by a crash), random has no metrics yet.
mkrun pfam fpt 1 500
tl 250 3.0; ev 250 0.3 0.3; printf '{"step":260,"spl' >>"$CUR"
mkrun pfam random 1 500
rm -f "$CUR"

# cell FILE N ROW COLUMN: a cell of the N-th Markdown table of FILE (COLUMN: the
# header's first word), or "<none>".
cell() {
  awk -v n="$2" -v row="$3" -v col="$4" '
    /^\|/ {
      if (!intable) { t++; intable = 1; header = 1 } else header = 0
      if ($0 ~ /^[|-]+$/) next
      nf = split(substr($0, 2, length($0) - 2), c, "|")
      for (i = 1; i <= nf; i++) gsub(/^ +| +$/, "", c[i])
      if (t != n) next
      if (header) { for (i = 1; i <= nf; i++) { split(c[i], w, " "); if (w[1] == col) ci = i }; next }
      if (c[1] == row && ci) out = c[ci]
      next
    }
    { intable = 0 }
    END { print (out == "" ? "<none>" : out) }' "$1"
}
expect_cell() { # expect_cell FILE N ROW COLUMN EXPECTED
  local got
  got=$(cell "$1" "$2" "$3" "$4")
  if [ "$got" = "$5" ]; then ok "table $2, $3, $4: '$got'"; else bad "table $2, $3, $4: '$got', expected '$5'"; fi
}
expect_line() { # expect_line FILE LINE: FILE has exactly this line
  if grep -qxF -- "$2" "$1"; then ok "$(basename "$1"): $2"; else bad "$(basename "$1") has no line '$2'" "$1"; fi
}
expect_grep() { # expect_grep FILE TEXT
  if grep -qF -- "$2" "$1"; then ok "$(basename "$1") says: $2"; else bad "$(basename "$1") does not say '$2'" "$1"; fi
}

T=$W/table.md
if $PY "$A/results_table.py" "$S" -o "$T" --csv "$W/runs.csv" 2>"$W/table.err"; then
  ok "results_table.py ran"
else
  bad "results_table.py failed" "$W/table.err"
fi
expect_cell "$T" 1 "FPT (ours)" bit-xor "85.0 ± 5.0"
expect_cell "$T" 1 "Full (ours)" bit-xor "—"
expect_cell "$T" 1 "FPT (paper)" bit-xor "100"
expect_cell "$T" 1 "Full (paper)" fashion-mnist "99.1"
expect_cell "$T" 1 "Full (paper)" listops-x2 "<none>" # no listops-x2 run: no column
expect_cell "$T" 1 "LSTM, full (paper)" bit-memory "60.9"
expect_cell "$T" 2 "FPT (ours)" bit-xor "85.0 ± 5.0"
expect_cell "$T" 2 "Random (ours)" bit-xor "50.0 (n=1)"
expect_cell "$T" 2 "Bit (paper)" listops "35.4"
expect_cell "$T" 2 "Image (paper)" fashion-mnist "97.8"
expect_cell "$T" 3 "Random (ours)" bit-xor "50.0 (n=1)"
expect_cell "$T" 3 "LSTM, frozen (paper)" listops "16.8"
expect_cell "$T" 4 "Stats (ours)" bit-xor "65.0 ± 7.1 (n=2)"
expect_cell "$T" 2 "FPT (ours)" fashion-mnist "100.0 ± 0.0 (n=3)"
expect_cell "$T" 2 "Random (ours)" fashion-mnist "92.0 ± 1.0 (n=3)"
expect_cell "$T" 2 "FPT (ours)" bit-memory "87.5 ± 3.5 (n=2)"
expect_cell "$T" 2 "Random (ours)" bit-memory "60.0 (n=1)"
expect_cell "$T" 2 "FPT (ours)" listops "40.0 (n=1)"
expect_cell "$T" 2 "FPT (ours)" pfam "—"
expect_cell "$T" 2 "Random (paper)" bit-memory "75.8"
expect_cell "$T" 4 "Stats (paper)" listops "37.4"
expect_cell "$T" 2 "Random (paper)" fashion-mnist "91.7"
expect_cell "$T" 4 "Stats (paper)" pfam "11.0"
expect_cell "$T" 5 "FPT (ours)" listops "40.0 (n=1)"
expect_cell "$T" 5 "Output only, SGD (ours)" listops "25.0 (n=1)"
expect_cell "$T" 5 "Output only, SGD (paper)" listops "32.8"
expect_cell "$T" 5 "Output only, exact (ours)" listops "31.0 (n=1)"
expect_cell "$T" 5 "Full (paper)" listops "38"
expect_cell "$T" 5 "FPT (paper)" fashion-mnist "—"
expect_cell "$T" 2 "Output only, exact (ours)" listops "<none>"
expect_cell "$T" 6 "MLM (paper)" listops "38.3"
expect_cell "$T" 6 "FPT (paper)" bit-xor "—"
expect_grep "$T" "- bit-xor/random/seed3: unfinished (step 25 of 40, no final evaluation yet)"
expect_grep "$T" "- pfam/fpt/seed1: unfinished (step 250 of 500, no final evaluation yet)"
expect_grep "$T" "- pfam/random/seed1: unfinished (no metrics.jsonl yet)"
expect_grep "$T" "- bit-xor/random/seed2: missing (no run directory)"
expect_grep "$T" "- bit-xor/stats/seed3: missing (no run directory)"
expect_grep "$T" "- bit-memory/random/seed2: missing (no run directory)"
expect_grep "$T" "- fashion-mnist/fpt/seed4: missing (no run directory)"
expect_grep "$T" "- fashion-mnist/full/seed4: unfinished (no metrics.jsonl yet)"
expect_grep "$T" "the paper's MNIST column"
expect_grep "$T" "Remote Homology column"
expect_grep "$T" "our runs use patterns of 100 bits"
check "no LR sweep without labelled arms" bash -c "! grep -q 'LR sweep' '$T'"
check "no NaN or inf in the table" bash -c "! grep -qiw -e nan -e inf '$T'"
check "no warnings (the cut last line is silently dropped)" test ! -s "$W/table.err"
# With --params the lines are what is expected: an arm may run fewer seeds.
printf 'task\tarm\tseed\tsteps\tbatch\tlr\teval_every\n' >"$W/p.tsv"
printf 'listops\t%s\t%s\t1000\t16\t1e-3\t500\n' fpt 1 head 1 probe 1 probe 2 >>"$W/p.tsv"
$PY "$A/results_table.py" "$S" --params "$W/p.tsv" -o "$W/tp.md" 2>"$W/tp.err"
expect_grep "$W/tp.md" "- listops/probe/seed2: missing (no run directory)"
check "--params: no missing seed that the file does not list" bash -c "! grep -q -e 'listops/head/seed2' -e 'bit-xor/stats/seed3' '$W/tp.md'"
# --into: the tables replace the block between the markers; the rest stays.
printf 'before\n<!-- tables:begin -->\nold\n<!-- tables:end -->\nafter\n' >"$W/into.md"
$PY "$A/results_table.py" "$S" --into "$W/into.md" >/dev/null 2>&1
expect_line "$W/into.md" "### Table 10: output layer only (SGD, and exact) vs FPT and the full transformer"
check "--into keeps the text around the block and drops the old one" bash -c "head -1 '$W/into.md' | grep -qx before && tail -1 '$W/into.md' | grep -qx after && ! grep -qx old '$W/into.md'"
# --eval-test-at best: test lines only at a new best val (and the final). Seed 1:
# val 0.5, 0.9 (tested), 0.9 (a tie: val only), 0.85 at 40 (val only), final 0.85
# -> selected step 20, test 0.8; converged at 20 (step 30 is a later evaluation).
# Seed 2 (damaged): its best val (step 20) has no test line -> warned, not counted.
S=$W/best
vo() { printf '{"step":%s,"split":"val","loss":1,"accuracy":%s,"tokens_per_s":0}\n' "$1" "$2" >>"$CUR"; }
mkrun bit-xor fpt 1 50
ev 10 0.5 0.4; ev 20 0.9 0.8; vo 30 0.9; vo 40 0.85; ev 50 0.85 0.95 f
mkrun bit-xor fpt 2 50
ev 10 0.5 0.4; vo 20 0.9; ev 50 0.6 0.6 f
$PY "$A/results_table.py" "$S" -o "$W/best.md" --csv "$W/best.csv" 2>"$W/best.err"
expect_cell "$W/best.md" 2 "FPT (ours)" bit-xor "80.0 (n=1)"
expect_grep "$W/best.err" "bit-xor/fpt/seed2: its selected evaluation (val, step 20) has no test line: not counted"
expect_line "$W/best.csv" "bit-xor,fpt,1,0.001,50,0,20,0.9,0.8,0.95,50,cap,,yes"
expect_line "$W/best.csv" "bit-xor,fpt,2,0.001,50,0,20,0.9,,0.6,50,cap,,yes"
$PY "$A/steps_to_converge.py" "$S" -o "$W/best-steps.md" 2>/dev/null
expect_cell "$W/best-steps.md" 1 "FPT (ours)" bit-xor "20 (n=2)"
S=$W/syn
C=$W/runs.csv
expect_line "$C" "task,arm,seed,lr,steps,patience,selected_step,val_acc,test_acc,final_test_acc,steps_done,ended,best_ckpt_step,finished"
expect_line "$C" "bit-xor,fpt,1,0.001,40,0,20,0.9,0.8,0.95,40,cap,,yes"
expect_line "$C" "bit-xor,fpt,2,0.001,40,0,20,0.95,0.85,0.99,40,cap,,yes"
expect_line "$C" "bit-xor,fpt,3,0.001,40,0,40,1.0,0.9,0.9,40,cap,,yes"
expect_line "$C" "bit-xor,random,1,0.001,40,0,10,0.5,0.5,0.52,40,cap,,yes"
expect_line "$C" "bit-xor,random,3,0.001,40,0,20,0.95,0.95,,25,,,no"
expect_line "$C" "bit-xor,stats,2,0.001,40,0,10,0.8,0.7,0.9,40,cap,,yes"
expect_line "$C" "bit-memory,fpt,2,0.001,100,0,75,0.9,0.85,0.95,100,cap,,yes"
expect_line "$C" "pfam,fpt,1,0.001,500,0,250,0.3,0.3,,250,,,no"
expect_line "$C" "pfam,random,1,0.001,500,0,,,,,0,,,no"
expect_line "$C" "listops,probe,1,0.001,1000,0,0,0.33,0.31,0.31,0,fit,,yes"
check "runs.csv: one line per run directory (23) plus the header" test "$(wc -l <"$C")" -eq 24

St=$W/steps.md
if $PY "$A/steps_to_converge.py" "$S" -o "$St" --csv "$W/steps.csv" 2>"$W/steps.err"; then
  ok "steps_to_converge.py ran"
else
  bad "steps_to_converge.py failed" "$W/steps.err"
fi
expect_cell "$St" 1 "FPT (ours)" bit-xor "20"
expect_cell "$St" 1 "Random (ours)" bit-xor "10 (n=1)"
expect_cell "$St" 1 "Speed-up (ours)" bit-xor "0.5×"
expect_cell "$St" 1 "FPT (ours)" fashion-mnist "200 (n=3)"
# --into (block "steps" by default): Table 6 replaces the block, the rest stays;
# a file without the block: one error line, exit nonzero, nothing written.
printf 'before\n<!-- steps:begin -->\nold\n<!-- steps:end -->\nafter\n' >"$W/into-steps.md"
$PY "$A/steps_to_converge.py" "$S" --into "$W/into-steps.md" >/dev/null 2>&1
expect_cell "$W/into-steps.md" 1 "Speed-up (ours)" bit-xor "0.5×"
check "steps --into keeps the text around the block, drops the old one and the first heading" bash -c "head -1 '$W/into-steps.md' | grep -qx before && tail -1 '$W/into-steps.md' | grep -qx after && ! grep -qx old '$W/into-steps.md' && ! grep -q '^# ' '$W/into-steps.md'"
printf 'no block here\n' >"$W/noblock.md"
cp "$W/noblock.md" "$W/noblock.orig"
rc=0
$PY "$A/steps_to_converge.py" "$S" -o "$W/noblock-steps.md" --into "$W/noblock.md" 2>"$W/noblock.err" || rc=$?
check "steps --into a file without the block: one error line naming it, nothing written" \
  bash -c "[ $rc -ne 0 ] && [ ! -e '$W/noblock-steps.md' ] && cmp -s '$W/noblock.md' '$W/noblock.orig' && [ \$(wc -l <'$W/noblock.err') -eq 1 ] && grep -q \"noblock.md: no '<!-- steps:begin -->'\" '$W/noblock.err'"
expect_cell "$St" 1 "Random (ours)" fashion-mnist "800 (n=3)"
expect_cell "$St" 1 "Speed-up (ours)" fashion-mnist "4.0×"
expect_cell "$St" 1 "FPT (ours)" bit-memory "62.5 (n=2)"
expect_cell "$St" 1 "Random (ours)" bit-memory "> 100 (n=1)"
expect_cell "$St" 1 "Speed-up (ours)" bit-memory "> 1.6×"
expect_cell "$St" 1 "FPT (ours)" listops "> 1000 (n=1)"
expect_cell "$St" 1 "Speed-up (ours)" listops "< 0.5×"
expect_cell "$St" 1 "FPT (ours)" pfam "—"
expect_cell "$St" 1 "FPT (paper)" bit-xor "5×10²"
expect_cell "$St" 1 "Random (paper)" fashion-mnist "2×10⁴"
expect_cell "$St" 1 "Speed-up (paper)" bit-xor "40×"
expect_cell "$St" 1 "Speed-up (paper)" listops-x2 "<none>"
expect_cell "$St" 2 "FPT: median best val acc (%)" fashion-mnist "95.0"
expect_cell "$St" 2 "Random: median best val acc (%)" bit-xor "50.0"
# Common target = Random's median best val. fashion-mnist: 0.92; fpt reaches it at 100, 200, 300 -> 200;
# random: never (> 1000), 800, 1000 (final) -> 1000; speed-up 5.0x. bit-xor: target 0.5, reached at 10.
expect_cell "$St" 3 "target: Random's median best val acc (%)" fashion-mnist "92.0"
expect_cell "$St" 3 "FPT (ours)" fashion-mnist "200 (n=3)"
expect_cell "$St" 3 "Random (ours)" fashion-mnist "1000 (n=3)"
expect_cell "$St" 3 "Speed-up (ours)" fashion-mnist "5.0×"
expect_cell "$St" 3 "FPT (ours)" bit-xor "10"
expect_cell "$St" 3 "Random (ours)" bit-xor "10 (n=1)"
expect_grep "$St" "at least 99 % of the run's own best val accuracy"
expect_grep "$St" "- fashion-mnist/random/seed4: missing (no run directory)"
check "no NaN in the steps table" bash -c "! grep -qiw nan '$St'"
# task,arm,seed,converged_step,converged,budget,finished (threshold columns left out: float repr)
cut -d, -f1-3,6- "$W/steps.csv" >"$W/steps.cut"
expect_line "$W/steps.cut" "bit-xor,fpt,1,20,yes,40,yes,cap"
expect_line "$W/steps.cut" "bit-xor,fpt,3,,no,40,yes,cap"
expect_line "$W/steps.cut" "bit-xor,random,3,,,40,no,"
expect_line "$W/steps.cut" "fashion-mnist,random,2,800,yes,1000,yes,cap"
expect_line "$W/steps.cut" "bit-memory,random,1,,no,100,yes,cap"
check "steps.csv: stats runs left out (fpt and random only: 18 runs)" test "$(wc -l <"$W/steps.csv")" -eq 19
expect_line "$W/steps.csv" "bit-xor,fpt,2,0.95,$($PY -c 'print(repr(0.99 * 0.95))'),20,yes,40,yes,cap"
# How the runs ended (table 4): every synthetic run above ran to its cap.
expect_cell "$St" 4 "FPT" bit-xor "3 cap"
expect_cell "$St" 4 "Random" bit-xor "1 cap, 1 unfinished"
expect_cell "$St" 4 "Output only, exact" listops "1 exact fit"
# --fraction 0.5: every fpt fashion-mnist seed reaches 0.475 at step 100 -> 100
$PY "$A/steps_to_converge.py" "$S" --fraction 0.5 -o "$W/steps50.md" 2>/dev/null
expect_cell "$W/steps50.md" 1 "FPT (ours)" fashion-mnist "100 (n=3)"

# --- the campaign's arms, early stopping, the LR sweep, best.json ------------------
# A second synthetic directory (its own expected seeds). Hand-computed:
#   bit-xor seeds 1, 2 are expected (n=2 cells have no "(n=...)" shortfall beyond K < 3).
#   lstm-full: s1 tie at val 0.6 (steps 10, 20) -> earliest, test 0.55; s2 test 0.65 -> 60.0 ± 7.1 (n=2); cap 20.
#   lstm-frozen s1: stopped early at 20 of 100 (patience 2); best val at 10 -> 50.0 (n=1), "1 plateau", lr 0.0003.
#   bit on bit-memory s1: best val at 50 -> test 95.0, in-domain: "95.0 (n=1) †"; best.json says 100 -> a check.
#   image: fashion-mnist 60.0 (n=1) † (in-domain), bit-xor 65.0 (n=1) (no mark).
#   mlm bit-xor s1: 75.0 (n=1); mlm bit-memory s1 unfinished.
#   LR sweep, bit-xor FPT: fpt (lr 1e-3) val 0.9, 0.8 -> 85.0 ± 7.1, test 0.85, 0.8 -> 82.5 ± 3.5;
#   fpt@lr3e-4 val 0.95, 0.85 -> 90.0 ± 7.1 (best: chosen), test 0.9, 0.8 -> 85.0 ± 7.1;
#   fpt@lr1e-4 val 0.88 (n=1; seed 2 unfinished, with a val of 0.99 that must not count) -> "provisional";
#   its test (99.0) is the best but takes no part in the choice.
S=$W/syn2
mkrun bit-xor lstm-full 1 20 0.0003
ev 10 0.6 0.55; ev 20 0.6 0.5 f
mkrun bit-xor lstm-full 2 20 0.0003
ev 20 0.7 0.65 f
mkrun bit-xor lstm-frozen 1 100 0.0003 2
ev 10 0.55 0.5; ev 20 0.52 0.51; ev 20 0.52 0.51 f
mkrun bit-memory bit 1 100
echo 'bit_length: 1000' >>"$RUN/config.yaml"
ev 50 0.9 0.95; ev 100 0.8 0.7 f
mkdir -p "$RUN/checkpoints" && echo '{"step": 100, "val_accuracy": 0.8, "val_loss": 1}' >"$RUN/checkpoints/best.json"
mkrun fashion-mnist image 1 10
ev 10 0.5 0.6 f
mkrun bit-xor image 1 10
ev 10 0.7 0.65 f
mkrun bit-xor mlm 1 20
ev 20 0.8 0.75 f
mkrun bit-memory mlm 1 100
ev 50 0.5 0.5
mkrun bit-xor fpt 1 20
ev 20 0.9 0.85 f
mkdir -p "$RUN/checkpoints" && echo '{"step": 20, "val_accuracy": 0.9, "val_loss": 1}' >"$RUN/checkpoints/best.json"
mkrun bit-xor fpt 2 20
ev 20 0.8 0.8 f
mkrun bit-xor fpt@lr3e-4 1 20 0.0003
ev 20 0.95 0.9 f
mkrun bit-xor fpt@lr3e-4 2 20 0.0003
ev 20 0.85 0.8 f
mkrun bit-xor fpt@lr1e-4 1 20 0.0001
ev 20 0.88 0.99 f
mkrun bit-xor fpt@lr1e-4 2 20 0.0001
ev 10 0.99 0.99
# Early stopping on val accuracy, patience 2 (protocol_stop): bit-memory lstm-frozen
#   s1: 0.55 (10, best), 0.5, 0.5 -> stops at 30, but ran to 40 (a new best 0.6 there): "late stop",
#       its selection (step 40) past the stop; s2: the same val lines to 30 and its final at 30: "early stop".
mkrun bit-memory lstm-frozen 1 100 0.0003 2
echo 'early_stop_on: "accuracy"' >>"$RUN/config.yaml"
ev 10 0.55 0.5; ev 20 0.5 0.5; ev 30 0.5 0.5; ev 40 0.6 0.58; ev 40 0.6 0.58 f
mkrun bit-memory lstm-frozen 2 100 0.0003 2
echo 'early_stop_on: "accuracy"' >>"$RUN/config.yaml"
ev 10 0.55 0.5; ev 20 0.5 0.5; ev 30 0.5 0.5; ev 30 0.5 0.5 f
T2=$W/table2.md
if $PY "$A/results_table.py" "$S" -o "$T2" --csv "$W/runs2.csv" 2>"$W/table2.err"; then
  ok "results_table.py ran (campaign arms)"
else
  bad "results_table.py failed (campaign arms)" "$W/table2.err"
fi
expect_cell "$T2" 1 "LSTM, full (ours)" bit-xor "60.0 ± 7.1 (n=2)"
expect_cell "$T2" 1 "FPT (ours)" bit-xor "82.5 ± 3.5 (n=2)"
expect_cell "$T2" 2 "Bit (ours)" bit-memory "95.0 (n=1) †"
expect_cell "$T2" 2 "Image (ours)" fashion-mnist "60.0 (n=1) †"
expect_cell "$T2" 2 "Image (ours)" bit-xor "65.0 (n=1)"
expect_cell "$T2" 3 "LSTM, frozen (ours)" bit-xor "50.0 (n=1)"
expect_cell "$T2" 6 "MLM (ours)" bit-xor "75.0 (n=1)"
expect_cell "$T2" 6 "MLM (ours)" bit-memory "—"
# Table 7: the sweep, one row per run directory; table 8: the choice per task.
expect_line "$T2" "| bit-xor | FPT | fpt@lr1e-4 | 1e-4 | 88.0 (n=1) | 99.0 (n=1) |  |"
expect_line "$T2" "| bit-xor | FPT | fpt@lr3e-4 | 3e-4 | 90.0 ± 7.1 (n=2) | 85.0 ± 7.1 (n=2) | chosen (provisional) |"
expect_line "$T2" "| bit-xor | FPT | fpt | 1e-3 | 85.0 ± 7.1 (n=2) | 82.5 ± 3.5 (n=2) |  |"
expect_line "$T2" "| bit-xor | 3e-4 (provisional) | 85.0 ± 7.1 (n=2) |"
expect_grep "$T2" "- bit-xor/fpt@lr1e-4/seed2: unfinished (step 10 of 20, no final evaluation yet)"
expect_grep "$T2" "- bit-memory/mlm/seed1: unfinished (step 50 of 100, no final evaluation yet)"
expect_grep "$T2" "- bit-memory/bit/seed1: best val in metrics.jsonl at step 50, best.json step 100"
check "best.json agreeing with the selection is not a check" bash -c "! grep -q 'bit-xor/fpt/seed1: best val' '$T2'"
expect_grep "$T2" "the paper's size: 5 patterns of 1000 bits"
expect_grep "$T2" "† in-domain"
check "sweep arms are not rows of the paper's tables" bash -c "! grep -q '^| fpt@' '$T2'"
expect_line "$W/runs2.csv" "bit-xor,lstm-frozen,1,0.0003,100,2,10,0.55,0.5,0.51,20,early stop,,yes"
expect_line "$W/runs2.csv" "bit-memory,bit,1,0.001,100,0,50,0.9,0.95,0.7,100,cap,100,yes"
expect_line "$W/runs2.csv" "bit-memory,lstm-frozen,1,0.0003,100,2,40,0.6,0.58,0.58,40,late stop,,yes"
expect_line "$W/runs2.csv" "bit-memory,lstm-frozen,2,0.0003,100,2,10,0.55,0.5,0.5,30,early stop,,yes"
expect_grep "$T2" "- bit-memory/lstm-frozen/seed1: early stop at step 30, ran to 40; the selected evaluation (step 40) is PAST IT"
check "a run that stopped where its patience ran out is not listed as late" bash -c "! grep -q 'lstm-frozen/seed2: early stop at' '$T2'"
St2=$W/steps2.md
$PY "$A/steps_to_converge.py" "$S" -o "$St2" --csv "$W/steps2.csv" 2>"$W/steps2.err" || bad "steps_to_converge.py (campaign arms)" "$W/steps2.err"
expect_cell "$St2" 4 "LSTM, full" bit-xor "2 cap"
expect_cell "$St2" 4 "LSTM, frozen" bit-xor "1 plateau"
expect_cell "$St2" 4 "LSTM, frozen" bit-memory "1 plateau, 1 past its early stop"
expect_cell "$St2" 4 "MLM" bit-memory "1 unfinished"
expect_cell "$St2" 4 "fpt@lr1e-4" bit-xor "1 cap, 1 unfinished"

# --- a results directory mixing two protocols: refused, nothing written ------------
# fashion-mnist/fpt: seeds 1, 2 capped at 2000, seed 3 at 4000; bit-xor/random: lr 0.001 vs 0.0003;
# LR sweep bit-xor/fpt: fpt patience 5, fpt@lr3e-4 patience 3.
S=$W/mixed
mkrun fashion-mnist fpt 1 2000; ev 100 0.5 0.5 f
mkrun fashion-mnist fpt 2 2000; ev 100 0.5 0.5 f
mkrun fashion-mnist fpt 3 4000; ev 100 0.5 0.5 f
mkrun bit-xor random 1 20 0.001; ev 20 0.5 0.5 f
mkrun bit-xor random 2 20 0.0003; ev 20 0.5 0.5 f
mkrun bit-xor fpt 1 20 0.001 5; ev 20 0.5 0.5 f
mkrun bit-xor fpt@lr3e-4 1 20 0.0003 3; ev 20 0.5 0.5 f
printf 'keep\n<!-- tables:begin -->\nold\n<!-- tables:end -->\n' >"$W/into-mixed.md"
cp "$W/into-mixed.md" "$W/into-mixed.orig"
rc=0
$PY "$A/results_table.py" "$S" -o "$W/mixed.md" --csv "$W/mixed.csv" --into "$W/into-mixed.md" 2>"$W/mixed.err" || rc=$?
check "mixed protocols: results_table.py exits 2 (got $rc)" test "$rc" -eq 2
expect_grep "$W/mixed.err" "error: cell fashion-mnist/fpt mixes two protocols: step cap (steps) 2000 (fpt/seed1, fpt/seed2) vs 4000 (fpt/seed3)"
expect_grep "$W/mixed.err" "error: cell bit-xor/random mixes two protocols: lr 0.0003 (random/seed2) vs 0.001 (random/seed1)"
expect_grep "$W/mixed.err" "error: cell LR sweep bit-xor/fpt mixes two protocols: patience (early_stop) 3 (fpt@lr3e-4/seed1) vs 5 (fpt/seed1)"
check "mixed protocols: no table, no CSV written, the --into file untouched" \
  bash -c "[ ! -e '$W/mixed.md' ] && [ ! -e '$W/mixed.csv' ] && cmp -s '$W/into-mixed.md' '$W/into-mixed.orig'"
rc=0
printf 'keep\n<!-- steps:begin -->\nold\n<!-- steps:end -->\n' >"$W/into-mixed-steps.md"
cp "$W/into-mixed-steps.md" "$W/into-mixed-steps.orig"
$PY "$A/steps_to_converge.py" "$S" -o "$W/mixed-steps.md" --into "$W/into-mixed-steps.md" 2>"$W/mixed-steps.err" || rc=$?
check "mixed protocols: steps_to_converge.py exits 2 too, writes nothing, the --into file untouched" \
  bash -c "[ $rc -eq 2 ] && [ ! -e '$W/mixed-steps.md' ] && cmp -s '$W/into-mixed-steps.md' '$W/into-mixed-steps.orig' && grep -q 'cell fashion-mnist/fpt mixes two protocols' '$W/mixed-steps.err'"

# --- a campaign not started: the skeleton, every cell pending ------------------------
# The header names the columns in another order than jobs/experiments.tsv.
printf 'seed\tarm\ttask\tlr\tsteps\tbatch\teval_every\n1\tfpt\tbit-xor\t1e-3\t20\t16\t10\n1\tfpt@lr3e-4\tbit-xor\t3e-4\t20\t16\t10\n1\tmlm\tlistops\t1e-3\t20\t16\t10\n' >"$W/pending.tsv"
$PY "$A/results_table.py" "$W/not-started" --params "$W/pending.tsv" -o "$W/pending.md" 2>"$W/pending.err" ||
  bad "results_table.py on a campaign not started" "$W/pending.err"
expect_grep "$W/pending.md" "**Pending: no run has a directory yet** (3 runs expected by the parameter file)"
expect_cell "$W/pending.md" 1 "FPT (ours)" bit-xor "—"
expect_cell "$W/pending.md" 1 "FPT (paper)" listops "38.4"
expect_cell "$W/pending.md" 1 "FPT (ours)" pfam "<none>"
expect_line "$W/pending.md" "| bit-xor | FPT | fpt@lr3e-4 | 3e-4 | — | — |  |"
check "pending: no per-run missing list" bash -c "! grep -q 'missing (no run directory)' '$W/pending.md'"
S=$W/syn

P=$W/png
if $PY "$A/learning_curves.py" "$S" -o "$P" >"$W/curves.log" 2>&1; then ok "learning_curves.py ran"; else bad "learning_curves.py failed" "$W/curves.log"; fi
for t in bit-memory bit-xor fashion-mnist listops pfam; do
  check "$t.png is a PNG" bash -c "head -c 8 '$P/$t.png' | od -An -tx1 | tr -d ' \n' | grep -qx 89504e470d0a1a0a"
done
check "no PNG for a task without runs (listops-x2)" test ! -e "$P/listops-x2.png"
for s in results_table steps_to_converge learning_curves; do
  check "$s.py --help" bash -c "$PY '$A/$s.py' --help | grep -q usage"
done
check "a missing RUNS_DIR is an error" bash -c "! $PY '$A/results_table.py' '$W/nonexistent' 2>/dev/null"

# --- jobs/run-experiments.sh end to end -----------------------------------------
e2e() {
  local E=$W/e2e arm m rc want n label
  mkdir -p "$E"
  if ! "$FPT" init --layers 2 --d-model 32 --heads 2 --positions 64 -o "$E/m.h5" >"$E/init.log" 2>&1; then
    bad "fpt init of the tiny model" "$E/init.log"
    return
  fi
  # The campaign's format (patience, backbone); patience 5 never triggers in 2 evaluations.
  printf 'task\tarm\tseed\tsteps\tbatch\tlr\teval_every\tpatience\tbackbone\n' >"$E/params.tsv"
  for arm in fpt full stats lstm-frozen; do printf 'bit-xor\t%s\t1\t20\t16\t1e-3\t10\t5\tdefault\n' "$arm" >>"$E/params.tsv"; done
  runner() {
    FPT=$FPT MODEL=$E/m.h5 EXP_DIR=$E/exp PARAMS=$E/params.tsv LOG_EVERY=5 OMP_NUM_THREADS=1 \
      bash "$ROOT/jobs/run-experiments.sh"
  }
  rc=0
  runner >"$E/run1.log" 2>&1 || rc=$?
  check "run-experiments.sh: exit 0 (got $rc)" test "$rc" -eq 0
  for arm in fpt full stats lstm-frozen; do
    m=$E/exp/bit-xor/$arm/seed1/metrics.jsonl
    if ! grep -q '"split":"test".*"final":1' "$m" 2>/dev/null; then
      bad "bit-xor $arm did not finish" "$E/run1.log"
      return
    fi
    ok "bit-xor $arm finished"
    check "bit-xor $arm: val at step 10 and a final val at 20" \
      test "$(grep -c '"step":10,"split":"val"' "$m"),$(grep -c '"step":20,"split":"val".*"final":1' "$m")" = 1,1
  done
  cat "$E"/exp/bit-xor/*/seed1/metrics.jsonl | md5sum >"$E/sum1"
  rc=0
  runner >"$E/run2.log" 2>&1 || rc=$?
  cat "$E"/exp/bit-xor/*/seed1/metrics.jsonl | md5sum >"$E/sum2"
  check "second invocation: exit 0 (got $rc)" test "$rc" -eq 0
  if grep -q 'run-experiments: line' "$E/run2.log"; then bad "second invocation ran something" "$E/run2.log"; else ok "second invocation: skips all four"; fi
  check "second invocation: no new metrics lines" cmp -s "$E/sum1" "$E/sum2"
  if ! $PY "$A/results_table.py" "$E/exp" -o "$E/table.md" --csv "$E/runs.csv" 2>"$E/table.err"; then
    bad "results_table.py on the real runs" "$E/table.err"
    return
  fi
  # Expected cells from the metrics directly: the test accuracy at the best val (earliest on ties).
  for arm in fpt full stats lstm-frozen; do
    want=$($PY - "$E/exp/bit-xor/$arm/seed1/metrics.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
val = [(r["step"], r.get("final", 0), r["accuracy"]) for r in rows if r["split"] == "val"]
test = {(r["step"], r.get("final", 0)): r["accuracy"] for r in rows if r["split"] == "test"}
best = max(v for _, _, v in val)
s, f, _ = min(x for x in val if x[2] == best)
print(f"{100 * test[(s, f)]:.1f} (n=1)")
EOF
    )
    case $arm in fpt) n=1 label=FPT ;; full) n=1 label=Full ;; stats) n=4 label=Stats ;; lstm-frozen) n=3 label="LSTM, frozen" ;; esac
    expect_cell "$E/table.md" "$n" "$label (ours)" bit-xor "$want"
  done
  expect_cell "$E/table.md" 2 "Random (ours)" bit-xor "—"
  check "runs.csv: four finished runs of 20 steps, on the cap" test "$(grep -c ',20,cap,[0-9]*,yes$' "$E/runs.csv")" -eq 4
  check "--keep-best's best.json agrees with the selected evaluation (no Checks section)" \
    bash -c "! grep -q '^Checks' '$E/table.md' && [ -s '$E/exp/bit-xor/fpt/seed1/checkpoints/best.h5' ]"
  $PY "$A/learning_curves.py" "$E/exp" -o "$E/png" >"$E/curves.log" 2>&1
  check "learning curve of the real runs written" test -s "$E/png/bit-xor.png"
}
[ -n "${SKIP_E2E:-}" ] || e2e
finish
