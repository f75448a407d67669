# Shared by the CLI tests: counters and checks. Source it; call `finish` last.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
# The heredoc checks import expect/finish from tests/cli/checks.py.
PYTHONPATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
# ctest passes the MPIEXEC_EXECUTABLE that CMake found.
MPIRUN=${MPIEXEC:-mpirun}
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok: $*"; }
bad() { # bad "what" [LOG]: LOG's lines are shown under the failure
  FAIL=$((FAIL + 1))
  echo "FAIL: $1"
  if [ -n "${2:-}" ] && [ -s "$2" ]; then sed 's/^/    | /' "$2"; fi
}
check() { # check "what" cmd...
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
# expect_error "what" PATTERN LOG -- cmd...: nonzero exit, exactly one
# 'fpt: error' line on stderr, and it matches PATTERN.
expect_error() {
  local what=$1 pattern=$2 log=$3; shift 4
  local rc=0
  "$@" >"$log.out" 2>"$log" || rc=$?
  local n
  n=$(grep -c 'fpt: error' "$log" || true)
  if [ "$rc" -ne 0 ] && [ "$n" -eq 1 ] && grep -q -- "$pattern" "$log"; then
    ok "$what (exit $rc: $(grep 'fpt: error' "$log"))"
  else
    bad "$what: exit $rc, $n error lines, stderr: $(head -c 600 "$log")"
  fi
}
# torch_cases RUNNER WORKDIR TORCH_DIR "name|make_case args"...: each case
# through tests/torch (make_case, torch_ref), the C case_runner, and compare.py.
torch_cases() {
  local runner=$1 w=$2 t=$3 c name args d wte
  shift 3
  for c in "$@"; do
    name=${c%%|*}
    args=${c#*|}
    d="$w/$name"
    mkdir -p "$d"
    # shellcheck disable=SC2086
    if "$t/make_case.py" --out "$d/case.h5" --model "$d/model.h5" $args >"$d/log" 2>&1 &&
      "$t/torch_ref.py" "$d/case.h5" "$d/model.h5" -o "$d/ref.h5" >>"$d/log" 2>&1 &&
      "$runner" "$d/case.h5" "$d/model.h5" "$d/c.h5" >>"$d/log" 2>&1 &&
      "$t/compare.py" "$d/ref.h5" "$d/c.h5" >"$d/compare" 2>&1; then
      wte=$(awk '$2 == "grads/wte/weight" {print "; wte grad " $4}' "$d/compare")
      ok "$name: $(tail -1 "$d/compare"); worst $(awk '/^ok/{print $4, $2}' "$d/compare" | sort -g -r | head -1)$wte"
    else
      bad "$name"
      cat "$d/log" "$d/compare" 2>/dev/null | grep -v '^ok' | tail -20
    fi
  done
}
finish() {
  echo "$PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ]
}
