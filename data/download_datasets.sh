#!/bin/bash
# Download the paper's public datasets into data/raw/NAME/ and print the
# commands that convert them into fpt dataset files:
#
#   data/download_datasets.sh [--lra-archive] [NAME ...]
#
# NAME (default: all four):
#   mnist    the four IDX .gz files (kept gzipped; fpt reads .gz)      ~11 MB
#   cifar10  cifar-10-binary.tar.gz, unpacked to cifar-10-batches-bin/ 162 MB
#   tape     TAPE's remote_homology.tar.gz (LMDB), unpacked            ~100s of MB
#   lra      LRA ListOps: lra_release/listops-1000/basic_{train,val,test}.tsv
#
# For lra the three public ListOps files are fetched directly; --lra-archive
# (or a failure of the direct files) downloads the whole LRA release instead,
# lra_release.gz (a gzipped tar of 8.2 GB), and unpacks only ListOps from it.
#
# Downloads go to FILE.part and resume after an interruption (curl -C - or
# wget -c); FILE appears only when complete and, where the checksum is
# published (MNIST, CIFAR-10), after its MD5 matched; archives are unpacked
# into a temporary directory and moved into place only if tar (and gzip's
# CRC) succeeded. A rerun skips finished steps; delete data/raw/NAME to start
# that dataset over.
#
# Environment: FPT (the fpt binary named in the printed commands; default
# build/fpt).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
RAW=$HERE/raw
FPT=${FPT:-$ROOT/build/fpt}
ALL=(mnist cifar10 tape lra)

die() {
  echo "download_datasets.sh: $*" >&2
  exit 1
}

lra_archive=0
names=()
for a in "$@"; do
  case $a in
  --lra-archive) lra_archive=1 ;;
  -h | --help)
    sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  mnist | cifar10 | tape | lra) names+=("$a") ;;
  *) die "unknown dataset '$a' (expected one of: ${ALL[*]})" ;;
  esac
done
[ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")

if command -v curl >/dev/null; then
  fetcher=curl
elif command -v wget >/dev/null; then
  fetcher=wget
else
  die "neither curl nor wget is installed"
fi
command -v md5sum >/dev/null || die "md5sum (coreutils) is missing"
command -v tar >/dev/null || die "tar is missing"

# fetch FILE MD5|- URL...: download FILE from the first URL that works,
# resuming FILE.part; check the MD5 if one is given. Returns 1 on failure.
fetch() {
  local out=$1 md5=$2
  shift 2
  if [ -s "$out" ]; then
    if [ "$md5" = - ] || [ "$(md5sum <"$out" | cut -d' ' -f1)" = "$md5" ]; then
      echo "  $out already downloaded"
      return 0
    fi
    echo "  $out: checksum mismatch, downloading again" >&2
    rm -f "$out"
  fi
  local url
  for url in "$@"; do
    echo "  $url"
    if [ "$fetcher" = curl ]; then
      # -f: an HTTP error is a failure, not an HTML page saved as data.
      curl -fL --retry 5 --retry-delay 5 -C - -o "$out.part" "$url" || continue
    else
      wget -c --tries=5 -O "$out.part" "$url" || continue
    fi
    if [ "$md5" != - ]; then
      local got
      got=$(md5sum <"$out.part" | cut -d' ' -f1)
      if [ "$got" != "$md5" ]; then
        # A corrupt partial download must not be resumed again.
        echo "  MD5 of $url is $got, expected $md5; discarded" >&2
        rm -f "$out.part"
        continue
      fi
    fi
    mv -f "$out.part" "$out"
    return 0
  done
  return 1
}

# unpack ARCHIVE DIR WANT [TAR ARGS...]: extract the gzipped tar into a
# temporary directory inside DIR, then move WANT (a path inside the archive)
# to DIR/WANT, only if tar succeeded: gzip's CRC catches a corrupt or cut
# archive, and an interrupted run never leaves a half-unpacked tree behind
# that a rerun would take for finished.
unpack() {
  local a=$1 d=$2 want=$3 tmp src
  shift 3
  tmp=$(mktemp -d "$d/.unpack.XXXXXX")
  if ! tar -xzf "$a" -C "$tmp" "$@"; then
    rm -rf "$tmp"
    echo "  unpacking $a failed (remove it to download it again)" >&2
    return 1
  fi
  src=$(find "$tmp" -path "*/$want" -prune -print -quit)
  if [ -z "$src" ]; then
    rm -rf "$tmp"
    echo "  $a has no $want" >&2
    return 1
  fi
  mkdir -p "$(dirname "$d/$want")"
  rm -rf "${d:?}/$want"
  mv "$src" "$d/$want"
  rm -rf "$tmp"
}

commands=()

get_mnist() {
  local d=$RAW/mnist f
  mkdir -p "$d"
  local -A md5=(
    [train-images-idx3-ubyte.gz]=f68b3c2dcbeaaa9fbdd348bbdeb94873
    [train-labels-idx1-ubyte.gz]=d53e105ee54ea40749a09fcbcd1e9432
    [t10k-images-idx3-ubyte.gz]=9fb629c4189551a2d022fa330f9573f3
    [t10k-labels-idx1-ubyte.gz]=ec29112dd5afa0611ce80d1b7f02629c
  )
  for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz \
    t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    fetch "$d/$f" "${md5[$f]}" \
      "https://ossci-datasets.s3.amazonaws.com/mnist/$f" \
      "https://storage.googleapis.com/cvdf-datasets/mnist/$f" \
      "http://yann.lecun.com/exdb/mnist/$f" || die "downloading MNIST $f failed"
  done
  commands+=("$FPT data mnist --input $d -o $HERE/mnist.h5")
}

get_cifar10() {
  local d=$RAW/cifar10 a=$RAW/cifar10/cifar-10-binary.tar.gz
  mkdir -p "$d"
  fetch "$a" c32a1d4ab5d03f1284b67883e8d87530 \
    https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz ||
    die "downloading CIFAR-10 failed"
  if [ -s "$d/cifar-10-batches-bin/test_batch.bin" ]; then
    echo "  $d/cifar-10-batches-bin already unpacked"
  else
    unpack "$a" "$d" cifar-10-batches-bin || die "CIFAR-10 not unpacked"
  fi
  commands+=("$FPT data cifar10 --input $d/cifar-10-batches-bin -o $HERE/cifar10.h5")
  commands+=("$FPT data cifar10-lra --input $d/cifar-10-batches-bin -o $HERE/cifar10-lra.h5")
}

get_tape() {
  local d=$RAW/tape a=$RAW/tape/remote_homology.tar.gz
  mkdir -p "$d"
  fetch "$a" - \
    https://s3.amazonaws.com/songlabdata/proteindata/data_pytorch/remote_homology.tar.gz \
    http://s3.amazonaws.com/songlabdata/proteindata/data_pytorch/remote_homology.tar.gz ||
    die "downloading TAPE remote homology failed"
  if [ -d "$d/remote_homology/remote_homology_train.lmdb" ]; then
    echo "  $d/remote_homology already unpacked"
  else
    unpack "$a" "$d" remote_homology || die "TAPE remote homology not unpacked"
    [ -d "$d/remote_homology/remote_homology_train.lmdb" ] ||
      die "$a has no remote_homology/remote_homology_train.lmdb"
  fi
  commands+=("/usr/bin/python3 $HERE/tape_homology_to_h5.py $d/remote_homology -o $HERE/homology.h5")
}

get_lra() {
  local d=$RAW/lra t=$RAW/lra/lra_release/listops-1000 s ok=1
  mkdir -p "$t"
  commands+=("$FPT data listops --input $t -o $HERE/listops.h5")
  if [ -s "$t/basic_train.tsv" ] && [ -s "$t/basic_val.tsv" ] && [ -s "$t/basic_test.tsv" ]; then
    echo "  $t already has basic_{train,val,test}.tsv"
    return 0
  fi
  if [ "$lra_archive" -eq 0 ]; then
    for s in train val test; do
      fetch "$t/basic_$s.tsv" - \
        "https://storage.googleapis.com/long-range-arena/lra_release/listops-1000/basic_$s.tsv" ||
        ok=0
    done
  fi
  if [ "$lra_archive" -eq 1 ] || [ "$ok" -eq 0 ]; then
    [ "$ok" -eq 1 ] || echo "  the ListOps files are not downloadable one by one; taking the 8.2 GB archive" >&2
    local a=$d/lra_release.gz
    fetch "$a" - https://storage.googleapis.com/long-range-arena/lra_release.gz ||
      die "downloading the LRA release failed"
    # Only ListOps: the archive also holds text, retrieval and pathfinder.
    unpack "$a" "$d" lra_release/listops-1000 --wildcards '*listops-1000/basic_*.tsv' ||
      die "ListOps not unpacked from $a"
  fi
}

for name in "${names[@]}"; do
  echo "== $name"
  "get_$name"
done

echo
echo "Convert with (check the task names and options with '$FPT data --help'):"
for c in "${commands[@]}"; do
  echo "  $c"
done
