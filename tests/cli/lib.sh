# Shared by the CLI tests: counters and checks. Source it; call `finish` last.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
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
finish() {
  echo "$PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ]
}
