#!/bin/bash
# fpt import: Hugging Face GPT-2 safetensors -> fpt model file.
#   test_import.sh FPT_BINARY SCRATCH_DIR
# Good files must convert exactly (F32 bit for bit, F16/BF16 to their rounding) and run
# through `fpt forward` like a float64 Hugging Face GPT-2 would; every broken file must fail
# with one 'fpt: error:' line naming the file, and leave no output (nor temporary) behind.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 FPT_BINARY SCRATCH_DIR" >&2
  exit 2
fi
FPT=$(realpath "$1")
mkdir -p "$2"
DIR=$(realpath "$2")
HERE=$(dirname "$(realpath "$0")")
GEN=$HERE/make_safetensors.py
PY=/usr/bin/python3
# One thread: these models are tiny.
export OMP_NUM_THREADS=1

source "$HERE/lib.sh"

# Independent reader of the safetensors file, and a float64 GPT-2 written from Hugging
# Face's modeling_gpt2 (Conv1D is x @ W + b, gelu_new, causal softmax), not from fpt.
cat >"$DIR/verify.py" <<'EOF'
import json, struct, sys
import h5py
import numpy as np

SKIP = (".attn.bias", ".attn.masked_bias")

def read_st(path):
    d = open(path, "rb").read()
    n = struct.unpack("<Q", d[:8])[0]
    base, out = 8 + n, {}
    for k, v in json.loads(d[8:base]).items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        raw, dt = d[base + b:base + e], v["dtype"]
        if dt == "F32":
            a = np.frombuffer(raw, "<f4").astype(np.float32)
        elif dt == "F16":
            a = np.frombuffer(raw, "<f2").astype(np.float32)
        elif dt == "BF16":
            a = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            a = None
        out[k] = (dt, None if a is None else a.reshape(v["shape"]))
    return out

def backbone(st):
    """Unprefixed name -> (dtype, float32 array) of the tensors fpt must import."""
    pre = "transformer." if "transformer.wpe.weight" in st else ""
    return {k[len(pre):]: v for k, v in st.items()
            if k.startswith(pre) and not k.endswith(SKIP) and not k.startswith("lm_head.")}

def check(st_path, h5_path, ref_path, want):
    want, errs = json.loads(want), []
    src, ref = backbone(read_st(st_path)), np.load(ref_path)
    with h5py.File(h5_path, "r") as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        expect = sorted(k.replace(".", "/") for k in src)
        if sorted(names) != expect:
            errs.append(f"datasets {sorted(set(names) ^ set(expect))} differ")
        for k, (dt, a) in src.items():
            n = k.replace(".", "/")
            if n not in f:
                continue
            h = f[n][()]
            if f[n].dtype != np.float32 or h.shape != a.shape:
                errs.append(f"{n}: {f[n].dtype} {h.shape}, expected float32 {a.shape}")
                continue
            if not np.array_equal(h.view(np.uint32), a.view(np.uint32)):
                errs.append(f"{n}: differs from the {dt} source bits")
            r = ref[k]
            tol = {"F32": 0, "F16": 2.0**-11, "BF16": 2.0**-8}[dt]
            # Half an ulp relative; plus half the F16 subnormal spacing.
            lim = tol * np.abs(r) + (2.0**-25 if dt == "F16" else 0)
            if dt == "F32" and not np.array_equal(h.view(np.uint32), r.view(np.uint32)):
                errs.append(f"{n}: not bit-identical to the original float32")
            elif np.any(np.abs(h.astype(np.float64) - r) > lim):
                errs.append(f"{n}: further from the float32 original than {dt} rounding")
        for key, v in want.items():
            if key not in f.attrs:
                errs.append(f"attribute {key} missing")
                continue
            a = f.attrs[key]
            kind = np.float64 if key == "layer_norm_epsilon" else np.int64
            if a.dtype != kind or a.shape != () or a != v:
                errs.append(f"attribute {key} = {a!r} ({a.dtype}), expected {v!r} ({kind.__name__})")
    for e in errs:
        print(e)
    return 1 if errs else 0

def make_inputs(path, N, T, C):
    x = np.random.default_rng(7).normal(0, 1, (N, T, C)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f.create_dataset("inputs_embeds", data=x)
    return 0

def ln(x, w, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b

def forward(st_path, x_path, y_path, n_head, eps):
    n_head, eps = int(n_head), float(eps)
    p = {k: a.astype(np.float64) for k, (dt, a) in backbone(read_st(st_path)).items()}
    with h5py.File(x_path, "r") as f:
        x = f["inputs_embeds"][()].astype(np.float64)
    with h5py.File(y_path, "r") as f:
        y = f["last_hidden_state"][()]
    N, T, C = x.shape
    D = C // n_head
    h = x + p["wpe.weight"][:T]
    causal = np.tril(np.ones((T, T), bool))
    L = 1 + max(int(k.split(".")[1]) for k in p if k.startswith("h."))
    for i in range(L):
        w = lambda n: p[f"h.{i}.{n}"]
        qkv = ln(h, w("ln_1.weight"), w("ln_1.bias"), eps) @ w("attn.c_attn.weight") + w("attn.c_attn.bias")
        q, k, v = (t.reshape(N, T, n_head, D).transpose(0, 2, 1, 3) for t in np.split(qkv, 3, axis=-1))
        s = np.where(causal, q @ k.transpose(0, 1, 3, 2) / np.sqrt(D), -np.inf)
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        h = h + a.transpose(0, 2, 1, 3).reshape(N, T, C) @ w("attn.c_proj.weight") + w("attn.c_proj.bias")
        u = ln(h, w("ln_2.weight"), w("ln_2.bias"), eps) @ w("mlp.c_fc.weight") + w("mlp.c_fc.bias")
        g = 0.5 * u * (1 + np.tanh(np.sqrt(2 / np.pi) * (u + 0.044715 * u ** 3)))
        h = h + g @ w("mlp.c_proj.weight") + w("mlp.c_proj.bias")
    ref = ln(h, p["ln_f.weight"], p["ln_f.bias"], eps)
    err = np.max(np.abs(y - ref)) if y.shape == ref.shape else np.inf
    if not err <= 1e-4:
        print(f"fpt forward differs from the float64 reference: max |diff| = {err:.3g}")
        return 1
    return 0

cmd, args = sys.argv[1], sys.argv[2:]
sys.exit({"check": check, "inputs": lambda p, n, t, c: make_inputs(p, int(n), int(t), int(c)),
          "forward": forward}[cmd](*args))
EOF

# good NAME "GEN ARGS" "IMPORT ARGS" EXPECTED_ATTRS_JSON [forward]
good() {
  local name=$1 gen=$2 imp=$3 want=$4 fwd=${5:-}
  local d=$DIR/$name
  rm -rf "$d" && mkdir -p "$d"
  # shellcheck disable=SC2086  # word splitting of the argument strings is intended
  if ! $PY "$GEN" "$d/model.safetensors" --ref "$d/ref.npz" $gen >"$d/log" 2>&1; then
    bad "$name: generator failed" "$d/log"
  elif ! "$FPT" import "$d/model.safetensors" -o "$d/M.h5" $imp >"$d/log" 2>&1; then
    bad "$name: fpt import failed" "$d/log"
  elif ! $PY "$DIR/verify.py" check "$d/model.safetensors" "$d/M.h5" "$d/ref.npz" "$want" >"$d/log" 2>&1; then
    bad "$name: imported tensors or attributes are wrong" "$d/log"
  else
    ok "$name: imported exactly, attributes $want"
  fi
  [ -n "$fwd" ] || return 0
  local nh eps
  nh=$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["n_head"])' "$want")
  eps=$($PY -c 'import json,sys; print(repr(json.loads(sys.argv[1])["layer_norm_epsilon"]))' "$want")
  if $PY "$DIR/verify.py" inputs "$d/X.h5" 3 "$fwd" 32 >"$d/log" 2>&1 &&
    "$FPT" forward --model "$d/M.h5" --input "$d/X.h5" -o "$d/Y.h5" >"$d/log" 2>&1 &&
    $PY "$DIR/verify.py" forward "$d/model.safetensors" "$d/X.h5" "$d/Y.h5" "$nh" "$eps" >"$d/log" 2>&1; then
    ok "$name: fpt forward on the import matches a float64 Hugging Face GPT-2 (T=$fwd)"
  else
    bad "$name: fpt forward on the import" "$d/log"
  fi
}

# broken NAME "GEN ARGS" "IMPORT ARGS" FILE_NAMED "PHRASE" -- the import must fail cleanly.
broken() {
  local name=$1 gen=$2 imp=$3 named=$4 phrase=$5
  local d=$DIR/$name
  rm -rf "$d" && mkdir -p "$d"
  named=${named//@/$d}
  # shellcheck disable=SC2086
  if ! $PY "$GEN" "$d/model.safetensors" $gen >"$d/log" 2>&1; then
    bad "$name: generator failed" "$d/log"
    return 0
  fi
  local rc=0
  # shellcheck disable=SC2086
  "$FPT" import "$d/model.safetensors" -o "$d/M.h5" $imp >"$d/out" 2>"$d/err" || rc=$?
  local why=""
  if [ "$rc" -eq 0 ]; then
    why="exit status 0"
  elif [ "$(wc -l <"$d/err")" -ne 1 ]; then
    why="$(wc -l <"$d/err") lines on stderr, expected 1"
  elif ! grep -q '^fpt: error: ' "$d/err"; then
    why="stderr is not an 'fpt: error:' line"
  elif ! grep -qF "$named" "$d/err"; then
    why="error does not name $named"
  elif ! grep -qF -- "$phrase" "$d/err"; then
    why="error does not mention '$phrase'"
  elif [ -e "$d/M.h5" ] || compgen -G "$d/*.tmp.*" >/dev/null; then
    why="an output or temporary file was left behind"
  fi
  if [ -z "$why" ]; then
    ok "$name: rejected: $(cut -c1-150 "$d/err")"
  else
    bad "$name: $why" "$d/err"
  fi
}

A='"n_layer": 2, "n_embd": 32, "n_positions": 16, "format_version": 1'

# --- files that must import
good f32 "--config" "" "{$A, \"n_head\": 4, \"layer_norm_epsilon\": 1e-05}" 16
good f32-lmhead-prefix "--prefix --lm-head --config --heads 2 --eps 1e-6" "" \
  "{$A, \"n_head\": 2, \"layer_norm_epsilon\": 1e-06}" 7
good f16 "--dtype F16 --config" "" "{$A, \"n_head\": 4, \"layer_norm_epsilon\": 1e-05}" 16
good bf16-boolmask "--dtype BF16 --mask-dtype BOOL --prefix --config" "" \
  "{$A, \"n_head\": 4, \"layer_norm_epsilon\": 1e-05}"
good default-heads-no-wte "--d-model 128 --mask-dtype U8 --no-wte" "" \
  '{"n_layer": 2, "n_embd": 128, "n_positions": 16, "n_head": 2, "layer_norm_epsilon": 1e-05}'
good heads-option "--mask-dtype none" "--heads 8" "{$A, \"n_head\": 8, \"layer_norm_epsilon\": 1e-05}"
good heads-option-beats-config "--config" "--heads 2" "{$A, \"n_head\": 2, \"layer_norm_epsilon\": 1e-05}"
good eleven-layers "--layers 11 --d-model 16 --heads 2 --positions 8 --config" "" \
  '{"n_layer": 11, "n_embd": 16, "n_positions": 8, "n_head": 2, "layer_norm_epsilon": 1e-05}'

# --- files that must be rejected (@ = the case's directory)
ST=@/model.safetensors
CF=@/config.json
broken truncated "--config --corrupt truncated" "" "$ST" "truncated"
broken header-length "--config --corrupt header-length" "" "$ST" "header length"
broken bad-json "--config --corrupt bad-json" "" "$ST" "not valid JSON"
broken trailing-json "--config --corrupt trailing" "" "$ST" "trailing bytes"
broken missing-tensor "--config --corrupt missing" "" "$ST" "h.1.mlp.c_fc.bias is missing"
broken missing-prefixed "--prefix --config --corrupt missing" "" "$ST" "transformer.h.1.mlp.c_fc.bias"
broken unknown-block-tensor "--config --corrupt extra" "" "$ST" "h.0.attn.c_attn.lora"
broken wrong-shape "--config --corrupt wrong-shape" "" "$ST" "h.0.attn.c_attn.weight has shape [96, 32]"
broken bad-offsets "--config --corrupt bad-offsets" "" "$ST" "ln_f.weight: data_offsets"
broken overlapping-offsets "--config --corrupt overlap" "" "$ST" "overlap in the data (data_offsets)"
broken bad-dtype "--config --corrupt bad-dtype" "" "$ST" "ln_f.weight has dtype F64"
broken nan "--config --corrupt nan" "" "$ST" "h.1.attn.c_proj.weight holds a NaN"
broken nan-f16 "--dtype F16 --config --corrupt nan" "" "$ST" "h.1.attn.c_proj.weight holds a NaN"
broken inf "--config --corrupt inf" "" "$ST" "ln_f.bias holds an Inf"
broken bad-config "--corrupt bad-config" "" "$CF" "not a JSON object"
broken config-mismatch "--corrupt config-mismatch" "" "$CF" "n_embd = 40 disagrees"
broken heads-unknown "" "" "$ST" "--heads"
broken heads-not-dividing "--config" "--heads 5" "$ST" "not divisible by n_head = 5"

# Not a safetensors file at all, and an empty one.
d=$DIR/not-safetensors
rm -rf "$d" && mkdir -p "$d"
printf 'PK\003\004 this is a zip, not a safetensors file' >"$d/model.safetensors"
broken_file() {
  local name=$1 phrase=$2 rc=0
  "$FPT" import "$d/model.safetensors" -o "$d/M.h5" >"$d/out" 2>"$d/err" || rc=$?
  if [ "$rc" -ne 0 ] && [ "$(wc -l <"$d/err")" -eq 1 ] && grep -qF "$d/model.safetensors" "$d/err" &&
    grep -qF "$phrase" "$d/err" && [ ! -e "$d/M.h5" ] && ! compgen -G "$d/*.tmp.*" >/dev/null; then
    ok "$name: rejected: $(cut -c1-150 "$d/err")"
  else
    bad "$name: not rejected cleanly (exit $rc)" "$d/err"
  fi
}
broken_file not-safetensors "header length"
: >"$d/model.safetensors"
broken_file empty-file "too short"

# A failed import must leave an existing output file untouched.
d=$DIR/keep-old-output
rm -rf "$d" && mkdir -p "$d"
$PY "$GEN" "$d/model.safetensors" --config --corrupt nan >/dev/null
echo "previous model" >"$d/M.h5"
if ! "$FPT" import "$d/model.safetensors" -o "$d/M.h5" >/dev/null 2>&1 &&
  [ "$(cat "$d/M.h5")" = "previous model" ] && ! compgen -G "$d/*.tmp.*" >/dev/null; then
  ok "keep-old-output: a failed import leaves an existing output untouched"
else
  bad "keep-old-output: existing output was modified or a temporary was left"
fi

# Usage errors and --help.
if "$FPT" import --help | grep -q '^usage: fpt import MODEL.safetensors'; then
  ok "help: fpt import --help prints the usage"
else
  bad "help: fpt import --help"
fi
rc=0
"$FPT" import -o "$DIR/x.h5" >/dev/null 2>"$DIR/usage.err" || rc=$?
if [ "$rc" -ne 0 ] && grep -q '^fpt: error: .*safetensors' "$DIR/usage.err" && [ ! -e "$DIR/x.h5" ]; then
  ok "usage: a missing input file is a one-line error"
else
  bad "usage: missing input file (exit $rc)" "$DIR/usage.err"
fi

finish
