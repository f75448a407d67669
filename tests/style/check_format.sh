#!/usr/bin/env bash
# Every C source and header of the project is as clang-format (.clang-format)
# writes it: lists the files that are not, and fails if there are any.
#   tests/style/check_format.sh [CLANG_FORMAT]
set -uo pipefail
CF=${1:-clang-format}
cd "$(dirname "$0")/../.."
bad=0 n=0
while IFS= read -r f; do
  n=$((n + 1))
  if ! "$CF" --dry-run --Werror "$f" > /dev/null 2>&1; then
    echo "not clang-formatted: $f (clang-format -i $f)"
    bad=$((bad + 1))
  fi
done < <(find src include tests -name '*.[ch]' | sort)
[ "$n" -gt 50 ] || { echo "found only $n C files under src include tests: wrong directory?"; exit 1; }
echo "$n files checked, $bad not formatted"
[ "$bad" -eq 0 ]
