#!/usr/bin/env bash
# The OpenBLAS kernel fix (src/cli/cpu.c) on whatever machine this runs on:
# the kernel in use is never below the CPU's vector level unless the user
# asked for it; a user's OPENBLAS_CORETYPE is kept; --blas-kernel re-executes
# (under mpirun too) and training results agree across kernels up to rounding.
set -uo pipefail
FPT=$1
W=$2
source "$(dirname "$0")/lib.sh"
rm -rf "$W" && mkdir -p "$W"
unset OPENBLAS_CORETYPE FPT_BLAS_REEXEC
field() { sed -n "s/^$1=//p"; }
level() { # the vector level a kernel name needs, as /proc/cpuinfo would say
  case "$1" in SkylakeX | Cooperlake) echo 4 ;; Haswell | Zen) echo 3 ;;
  Sandybridge | Bulldozer | Piledriver | Steamroller | Excavator) echo 2 ;; *) echo 1 ;; esac
}
flags=$(grep -m1 '^flags' /proc/cpuinfo)
cpu=1
has() { [[ " $flags " == *" $1 "* ]]; }
if has avx512f && has avx512bw && has avx512vl && has avx512dq; then cpu=4
elif has avx2 && has fma; then cpu=3
elif has avx; then cpu=2; fi

"$FPT" --version > "$W/v" 2>&1
k=$(field blas_kernel < "$W/v")
echo "this machine: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), vector level $cpu; fpt runs on $k ($(field blas_kernel_origin < "$W/v"))"
check "the kernel in use ($k, level $(level "$k")) is not below the CPU's level $cpu" \
  test "$(level "$k")" -ge "$cpu"
[ "$cpu" -ge 3 ] && check "never Prescott on a CPU with AVX2" test "$k" != Prescott

# A user's setting is kept, even a slow one.
OPENBLAS_CORETYPE=Prescott "$FPT" --version > "$W/u" 2>&1
check "OPENBLAS_CORETYPE=Prescott from the user is kept" \
  test "$(field blas_kernel < "$W/u")/$(field blas_kernel_origin < "$W/u")" = "Prescott/OPENBLAS_CORETYPE from the environment"
OPENBLAS_CORETYPE=Haswell "$FPT" --version > "$W/h" 2>&1
check "OPENBLAS_CORETYPE=Haswell from the user is kept" test "$(field blas_kernel < "$W/h")" = Haswell

# --blas-kernel re-executes the program with the kernel set, over the environment.
best=$(field blas_kernel_best < "$W/v")
OPENBLAS_CORETYPE=Prescott "$FPT" --version --blas-kernel auto > "$W/a" 2>&1
check "--blas-kernel auto over OPENBLAS_CORETYPE=Prescott runs $best" \
  test "$(field blas_kernel < "$W/a")/$(field blas_kernel_origin < "$W/a")" = "$best/--blas-kernel"
"$FPT" --blas-kernel=Haswell --version > "$W/b" 2>&1
check "--blas-kernel=Haswell before the command" test "$(field blas_kernel < "$W/b")" = Haswell
expect_error "an unknown kernel name" "blas-kernel: 'Skylake' is not a kernel" "$W/e1" -- \
  "$FPT" --version --blas-kernel Skylake
expect_error "--blas-kernel without a value" "needs a value" "$W/e2" -- "$FPT" init --blas-kernel

# Training on two kernels, 2 ranks under mpirun: the re-executed ranks run the
# asked kernel (metrics.jsonl's run line and the start-up table say so), and
# the results agree up to rounding.
"$FPT" init --layers 2 --d-model 32 --heads 4 --positions 64 --seed 3 -o "$W/m.h5" > /dev/null || exit 1
train() { # train NAME [ENV...] -- ARGS
  local name=$1; shift
  env "$@" OMP_NUM_THREADS=1 "$MPIRUN" -np 2 --oversubscribe -x OPENBLAS_CORETYPE "$FPT" train \
    --model "$W/m.h5" --task bit-xor --steps 12 --batch-size 8 --seed 4 --log-every 1 \
    --run-dir "$W/$name" --blas-kernel "${KERNEL:-auto}" > "$W/$name.log" 2>&1
}
KERNEL=Prescott train slow OPENBLAS_CORETYPE=Haswell
KERNEL=auto train fast OPENBLAS_CORETYPE=Prescott
check "the start-up table names the kernel (Prescott run)" grep -q "BLAS kernel Prescott (--blas-kernel)" "$W/slow.log"
check "the start-up table names the kernel ($best run)" grep -q "BLAS kernel $best (--blas-kernel)" "$W/fast.log"
/usr/bin/python3 - "$W" "$best" <<'PY'
import json, sys
from checks import expect, finish
w, best = sys.argv[1], sys.argv[2]
rows = {n: [json.loads(l) for l in open(f"{w}/{n}/metrics.jsonl")] for n in ("slow", "fast")}
for n, k in (("slow", "Prescott"), ("fast", best)):
    first = rows[n][0]
    expect(first["split"] == "run" and first["blas_kernel"] == k and first["cpu_features"]
           and first["blas_kernel_origin"] == "--blas-kernel",
           f"metrics.jsonl's first line names the CPU and the kernel {k}: {first}")
m = lambda n: [(r["step"], r["split"], r["loss"]) for r in rows[n] if r["split"] != "run"]
a, b = m("slow"), m("fast")
expect([x[:2] for x in a] == [x[:2] for x in b] and len(a) > 12, "same metrics lines on both kernels")
rel = max(abs(x[2] - y[2]) / max(abs(y[2]), 1e-12) for x, y in zip(a, b))
expect(rel < 1e-4, f"losses agree up to rounding across kernels: max relative difference {rel:.1e}")
finish()
PY
[ $? -eq 0 ] && ok "metrics across kernels" || bad "metrics across kernels"
finish
