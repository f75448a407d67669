#!/bin/bash
# Download OpenAI's GPT-2 checkpoints from the Hugging Face hub and convert them
# into fpt model files:
#
#   data/download_gpt2.sh [--force] [NAME ...]
#
# NAME is gpt2, gpt2-medium, gpt2-large or gpt2-xl (default: all four). For each,
# model.safetensors and config.json go to data/hf/NAME/ (config.json must sit
# beside the weights: `fpt import` takes n_head and layer_norm_epsilon from it),
# and the converted model to data/models/NAME.h5. Finished downloads and models
# are kept and skipped on a rerun; --force converts again.
#
# Sizes of model.safetensors: gpt2 0.55 GB, medium 1.5 GB, large 3.2 GB,
# xl 6.4 GB; the .h5 is about as large again.
#
# Environment: FPT (the fpt binary; default build/fpt), HF_ENDPOINT (default
# https://huggingface.co), HF_TOKEN (sent as a bearer token if set).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
FPT=${FPT:-$ROOT/build/fpt}
HF=${HF_ENDPOINT:-https://huggingface.co}
ALL=(gpt2 gpt2-medium gpt2-large gpt2-xl)

die() {
  echo "download_gpt2.sh: $*" >&2
  exit 1
}

force=0
names=()
for a in "$@"; do
  case $a in
  --force) force=1 ;;
  -h | --help)
    sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  gpt2 | gpt2-medium | gpt2-large | gpt2-xl) names+=("$a") ;;
  *) die "unknown model '$a' (expected one of: ${ALL[*]})" ;;
  esac
done
[ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")

[ -x "$FPT" ] || die "no fpt binary at $FPT (build it first, or set FPT=/path/to/fpt)"
if command -v curl >/dev/null; then
  fetcher=curl
elif command -v wget >/dev/null; then
  fetcher=wget
else
  die "neither curl nor wget is installed"
fi

# fetch URL FILE: download to FILE.part (resuming a previous attempt), then
# rename, so that FILE exists only once complete.
fetch() {
  local url=$1 out=$2
  local auth=()
  if [ -n "${HF_TOKEN:-}" ]; then
    auth=(--header "Authorization: Bearer $HF_TOKEN")
  fi
  echo "  $url"
  if [ "$fetcher" = curl ]; then
    # -f: an HTTP error is a failure, not an HTML page saved as the model.
    # (Explicit returns: set -e does not apply inside `fetch ... || die`.)
    curl -fL --retry 5 --retry-delay 5 -C - ${auth[@]+"${auth[@]}"} -o "$out.part" "$url" ||
      return 1
  else
    wget -c --tries=5 ${auth[@]+"${auth[@]}"} -O "$out.part" "$url" || return 1
  fi
  mv -f "$out.part" "$out"
}

mkdir -p "$HERE/models"
for name in "${names[@]}"; do
  echo "== $name"
  src=$HERE/hf/$name
  out=$HERE/models/$name.h5
  mkdir -p "$src"
  # The original short names (gpt2, ...) redirect to the openai-community organisation.
  base="$HF/openai-community/$name/resolve/main"
  for f in config.json model.safetensors; do
    if [ -s "$src/$f" ]; then
      echo "  $src/$f already downloaded"
    else
      fetch "$base/$f" "$src/$f" || die "downloading $base/$f failed"
    fi
  done
  if [ -s "$out" ] && [ "$force" -eq 0 ]; then
    echo "  $out exists (use --force to convert again)"
    continue
  fi
  "$FPT" import "$src/model.safetensors" -o "$out" || die "fpt import failed for $name"
  echo "  wrote $out"
done
