#!/bin/bash
# Assemble the English pretraining corpus from Debian packages and turn it
# into an fpt text dataset (byte level, 256-byte windows; held-out blocks as
# val/test, see include/fpt/text.h).
#   bash data/make_corpus.sh [OUT_DIR]      # default data/corpus
# Writes OUT_DIR/{kjv,web,austen,fortunes,jargon,devil}.txt, OUT_DIR/corpus.txt
# (all of them, in that order) and OUT_DIR/text.h5. Installs the packages it
# needs when they are missing (root and apt-get required then).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/data/corpus}
FPT=${FPT:-$ROOT/build/fpt}
SEQ=${SEQ:-256}
mkdir -p "$OUT"

pkgs="bible-kjv bible-kjv-text sword-text-web diatheke r-cran-janeaustenr r-base-core fortunes fortunes-min jargon-text dict-devil"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "make_corpus: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086 # a list of package names
  apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Bibles: verse text only (drop the "Ge1:1 " / "Genesis 1:1: " references).
bible -f Gen1:1-Rev22:21 | sed -E 's/^[0-9]?[A-Za-z]+[0-9]+:[0-9]+ //' >"$OUT/kjv.txt"
diatheke -b engWEB2015eb -f plain -k "Genesis 1:1-Revelation 22:21" |
  grep -v '^(engWEB2015eb)$' | sed -E 's/^([1-3] )?[A-Za-z ]+ [0-9]+:[0-9]+: //' >"$OUT/web.txt"
Rscript -e 'library(janeaustenr); writeLines(c(sensesensibility, prideprejudice, mansfieldpark, emma, northangerabbey, persuasion))' >"$OUT/austen.txt"
# Fortunes: the prose files (not the ASCII-art ones), '%' separators dropped.
: >"$OUT/fortunes.txt"
for f in /usr/share/games/fortunes/*; do
  case "$f" in *.dat | *.u8 | */art | */ascii-art) continue ;; esac
  [ -f "$f" ] && grep -v '^%$' "$f" >>"$OUT/fortunes.txt"
done
zcat /usr/share/doc/jargon-text/jargon.txt.gz >"$OUT/jargon.txt"
zcat /usr/share/dictd/devil.dict.dz >"$OUT/devil.txt"

list=""
for s in kjv web austen fortunes jargon devil; do
  [ -s "$OUT/$s.txt" ] || { echo "make_corpus: $OUT/$s.txt is empty" >&2; exit 1; }
  printf 'make_corpus: %-9s %9d bytes\n' "$s" "$(stat -c %s "$OUT/$s.txt")"
  list="$list${list:+,}$OUT/$s.txt"
done
cat "$OUT"/{kjv,web,austen,fortunes,jargon,devil}.txt >"$OUT/corpus.txt"
"$FPT" data text --input "$list" --seq "$SEQ" -o "$OUT/text.h5"
