"""expect() for the Python checks inside the CLI tests' heredocs: one "ok:" or
"FAIL:" line per check, like `check` in tests/cli/lib.sh (which puts this
directory on PYTHONPATH); finish() exits 1 if any check failed."""
import sys

failed = False


def expect(cond, what):
    global failed
    print(("ok: " if cond else "FAIL: ") + what)
    failed |= not cond
    return bool(cond)


def finish():
    sys.exit(1 if failed else 0)
