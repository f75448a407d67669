#!/usr/bin/python3
"""Write the seed corpus of the fuzz targets: tests/fuzz/corpus/<target>/.

  tests/fuzz/make_corpus.py [--hang-inputs DIR] [OUT_DIR]   (default: corpus/ beside this script)

Standard library only. Each target's input layout is described at the top of
its fuzz_<target>.c: most start with one option byte, and inputs made of
several files join them with the separator FPTSPLIT. The seeds are small
valid files in each format and near-valid ones (one thing wrong). Regression
inputs of fixed bugs are written by name (regress-*), so they stay in the
corpus whatever the fuzzer adds; the fuzzer's own finds are not kept here.
"""
import gzip
import json
import os
import struct
import sys

SEP = b"FPTSPLIT"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
HANG = None  # --hang-inputs DIR: also write the large inputs that took seconds
args = sys.argv[1:]
if args[:1] == ["--hang-inputs"]:
    HANG = args[1]
    args = args[2:]
if args:
    OUT = args[0]


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(b):
    return gzip.compress(b, mtime=0)


def join(opt, *files):
    return bytes([opt]) + SEP.join(files)


# --- YAML config -------------------------------------------------------------
yaml_seeds = {
    "valid": b"model: data/models/default.h5\nsteps: 10\nbatch_size: 16\nlr: 1e-3\n"
             b"full_train: true\nschedule: gpipe\nseed: 3\n",
    "quoted": b"# a comment\nmodel: \"m.h5\"\nrun_dir: 'runs/x'\ndropout: 0.1\nshared_weights: no\n",
    "flow": b"{steps: 5, lr: .5, full_train: 0}\n",
    "documents": b"---\nsteps: 1\n...\n---\nseed: 2\n",
    # Regression (src/cli/options.c): an alias was skipped (key unset, or the next key taken as its value).
    "regress-alias": b"model: &m a.h5\ndata: *m\nsteps: 1\n",
    "block-scalar": b"model: |\n  two\n  lines\nsteps: 3\n",
    "list": b"steps: [1, 2]\n",
    "nested": b"model:\n  path: a.h5\n",
    "unknown-key": b"bogus: 1\n",
    "bad-int": b"steps: ten\n",
    "bad-float": b"lr: nan\n",
    "bad-bool": b"full_train: maybe\n",
    # Regression (src/cli/options.c): the first value of a key given twice leaked.
    "regress-duplicate-key": b"model: a.h5\nmodel: b.h5\n",
    "not-a-mapping": b"- steps\n- 3\n",
    "syntax-error": b"steps: 1\n  lr: [\n",
    "key-without-value": b"steps:\n",
    "utf8": "model: m\u00e9\u4e2d.h5\nsteps: 0x10\n".encode(),
    "empty": b"",
}
for k, v in yaml_seeds.items():
    put("yaml", k, v)


# --- safetensors ---------------------------------------------------------------
def st_file(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, bytes); Hugging Face's layout."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, b in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def vals(n, dtype="F32", start=0.0):
    xs = [start + 0.01 * (i % 13) - 0.05 for i in range(n)]
    if dtype == "F32":
        return struct.pack("<%df" % n, *xs)
    if dtype == "F16":
        return struct.pack("<%de" % n, *xs)
    if dtype == "BF16":
        return b"".join(struct.pack("<f", x)[2:] for x in xs)
    raise ValueError(dtype)


def gpt2_tensors(L=1, C=4, P=2, V=3, dtype="F32", prefix="", wte=True, masks=False):
    t = []
    if wte:
        t.append((prefix + "wte.weight", dtype, [V, C], vals(V * C, dtype)))
    t.append((prefix + "wpe.weight", dtype, [P, C], vals(P * C, dtype)))
    blk = [("ln_1.weight", [C]), ("ln_1.bias", [C]), ("attn.c_attn.weight", [C, 3 * C]),
           ("attn.c_attn.bias", [3 * C]), ("attn.c_proj.weight", [C, C]), ("attn.c_proj.bias", [C]),
           ("ln_2.weight", [C]), ("ln_2.bias", [C]), ("mlp.c_fc.weight", [C, 4 * C]),
           ("mlp.c_fc.bias", [4 * C]), ("mlp.c_proj.weight", [4 * C, C]), ("mlp.c_proj.bias", [C])]
    for l in range(L):
        for n, s in blk:
            k = 1
            for d in s:
                k *= d
            t.append(("%sh.%d.%s" % (prefix, l, n), dtype, s, vals(k, dtype)))
        if masks:
            t.append(("%sh.%d.attn.bias" % (prefix, l), "U8", [1, 1, P, P], bytes(P * P)))
            t.append(("%sh.%d.attn.masked_bias" % (prefix, l), "F32", [], struct.pack("<f", -1e4)))
    t.append((prefix + "ln_f.weight", dtype, [C], vals(C, dtype)))
    t.append((prefix + "ln_f.bias", dtype, [C], vals(C, dtype)))
    return t


cfg = json.dumps({"n_head": 2, "n_embd": 4, "n_layer": 1, "n_positions": 2,
                  "layer_norm_epsilon": 1e-5}).encode()
put("safetensors", "valid-f32-config", join(0, st_file(gpt2_tensors()), cfg))
put("safetensors", "valid-f16-heads", join(2, st_file(gpt2_tensors(dtype="F16", wte=False))))
put("safetensors", "valid-bf16-prefix-masks",
    join(0, st_file(gpt2_tensors(L=2, dtype="BF16", prefix="transformer.", masks=True) +
                    [("lm_head.weight", "F32", [3, 4], vals(12))], metadata={"format": "pt"}),
         cfg.replace(b'"n_layer": 1', b'"n_layer": 2')))
put("safetensors", "no-heads", join(0, st_file(gpt2_tensors())))
good = st_file(gpt2_tensors())
put("safetensors", "truncated", join(1, good[:-7]))
put("safetensors", "header-length", join(1, struct.pack("<Q", 1 << 40) + good[8:]))
put("safetensors", "bad-json", join(1, good.replace(b":", b";", 1)))
put("safetensors", "missing", join(1, st_file([t for t in gpt2_tensors() if "c_fc.bias" not in t[0]])))
put("safetensors", "extra", join(1, st_file(gpt2_tensors() + [("h.0.attn.c_attn.lora", "F32", [1], vals(1))])))
put("safetensors", "bad-dtype", join(1, st_file([(n, "F64" if "ln_f.w" in n else d, s, b + b if "ln_f.w" in n else b)
                                                 for n, d, s, b in gpt2_tensors()])))
put("safetensors", "nan", join(1, st_file([(n, d, s, b"\x00\x00\xc0\x7f" + b[4:] if "ln_f.b" in n else b)
                                           for n, d, s, b in gpt2_tensors()])))
put("safetensors", "config-mismatch", join(0, good, cfg.replace(b'"n_embd": 4', b'"n_embd": 8')))
put("safetensors", "bad-config", join(0, good, b"{n_head: 2}"))
put("safetensors", "empty", b"\x00")
# Regression (src/io/safetensors.c): the duplicate-name check compared every
# pair (quadratic). A small duplicate here; the slow input is --hang-inputs'.
put("safetensors", "regress-duplicate-name",
    join(0, st_file(gpt2_tensors()).replace(b'"ln_f.bias"', b'"ln_f.weight"', 1), cfg))


# --- IDX -------------------------------------------------------------------------
def idx_images(n, magic=2051, rows=28, cols=28, cut=0, extra=b""):
    b = struct.pack(">IIII", magic, n, rows, cols) + bytes((i * 7 + 3) % 256 for i in range(n * 784))
    return (b[:-cut] if cut else b) + extra


def idx_labels(labels, magic=2049, count=None):
    return struct.pack(">II", magic, len(labels) if count is None else count) + bytes(labels)


def idx_set(opt=0, tr=None, trl=None, te=None, tel=None, gzip_all=False):
    files = [tr if tr is not None else idx_images(2), trl if trl is not None else idx_labels([3, 9]),
             te if te is not None else idx_images(1), tel if tel is not None else idx_labels([0])]
    if gzip_all:
        files = [gz(f) for f in files]
    return join(opt, *files)


put("idx", "valid-gz", idx_set(0, gzip_all=True))
put("idx", "valid-pad32-fashion-gzname", idx_set(1 | 2 | 4, gzip_all=True))
put("idx", "valid-raw", idx_set(0, tr=idx_images(1), trl=idx_labels([5])))
put("idx", "bad-label", idx_set(0, trl=idx_labels([3, 10]), gzip_all=True))
put("idx", "count-mismatch", idx_set(0, trl=idx_labels([3, 9], count=3), gzip_all=True))
put("idx", "trailing", idx_set(0, tel=idx_labels([1]) + b"\x00", gzip_all=True))
put("idx", "truncated-gz", idx_set(0, tr=gz(idx_images(2))[:-30], gzip_all=False))
put("idx", "bad-size", idx_set(0, tr=idx_images(1, rows=27)[:200], gzip_all=True))
put("idx", "missing-files", join(0, idx_images(1)[:100]))
# A header that declares 2^31 - 1 images, with one image of data.
put("idx", "huge-count", idx_set(0, tr=struct.pack(">IIII", 2051, 0x7FFFFFFF, 28, 28) + bytes(784)))


# --- CIFAR-10 --------------------------------------------------------------------
def cifar_rec(label, k):
    return bytes([label]) + bytes((i * 13 + k * 31) % 256 for i in range(3072))


six = [cifar_rec(i, i) for i in range(6)]
put("cifar", "valid", join(0, *six))
put("cifar", "valid-lra", join(1, *six[:5], cifar_rec(9, 7)))
put("cifar", "bad-label-and-size", join(0, cifar_rec(10, 0)[:500], b"", b"\x01", b"", b"", b""))


# --- Stockholm -------------------------------------------------------------------
sto_two_blocks = (b"# STOCKHOLM 1.0\n#=GF ID   Fam_A\n#=GS seq1 DE first\n\n"
                  b"seq1  ACDE-FG..hik\nseq2  AC-EWFGYYHIK\n#=GC SS_cons ......\n\n"
                  b"seq1  LMN~\nseq2  lm_P\n//\n")
sto_simple = b"# STOCKHOLM 1.0\nx1 MKV\nx2 M-V\n//\n\n"
sto_other = b"# STOCKHOLM 1.0\n#=GF ID Fam_C\na BZXOU\nb bzxou\nc -----\nd AAAAA\n//\n"
put("stockholm", "valid-three", join(16, sto_two_blocks, sto_simple, gz(sto_other)))
put("stockholm", "valid-one-crlf", join(63, sto_two_blocks.replace(b"\n", b"\r\n")))
put("stockholm", "bad-letter", join(5, sto_simple.replace(b"MKV", b"MJV")))
put("stockholm", "unequal-lengths", join(5, b"# STOCKHOLM 1.0\na AC\nb A\n//\n"))
put("stockholm", "twice-in-block", join(5, b"# STOCKHOLM 1.0\na AC\na AC\n//\n"))
put("stockholm", "no-terminator", join(5, b"# STOCKHOLM 1.0\na AC\n"))
put("stockholm", "second-alignment", join(5, sto_simple + b"# STOCKHOLM 1.0\n//\n"))
put("stockholm", "no-header", join(5, b"a AC\n//\n"))
put("stockholm", "same-family", join(5, sto_two_blocks, sto_two_blocks))
put("stockholm", "gz-cut", join(5, gz(sto_two_blocks)[:-12]))
# Regression (src/tasks/pfam.c): names were found by a linear scan (quadratic
# time); 300 names (the table grows past 256) and a second block in reverse.
many = b"".join(b"n%d AC\n" % i for i in range(300))
put("stockholm", "regress-many-names", join(5, b"# STOCKHOLM 1.0\n" + many + b"\n" +
                                           b"".join(b"n%d D\n" % i for i in reversed(range(300))) + b"//\n"))
put("stockholm", "nul-byte", join(5, b"# STOCKHOLM 1.0\na A\x00C\nb AC\n//\n"))


# --- ListOps TSV -----------------------------------------------------------------
EXPR = b"( ( ( ( [MIN 7 ) ( ( ( [SM 3 ) 9 ) ] ) ) ( ( ( [MED 1 8 ) ] ) ) ] )"
tsv = b"Source\tTarget\n" + EXPR + b"\t2\n( ( ( [MAX 2 ) 9 ) ] )\t9\n"
put("listops", "valid-lengths", join(1, tsv, tsv, b"( ( ( [SM 4 ) 4 ) ] )\t8\n"))
put("listops", "valid-short", join(2 | (3 << 5), tsv, b"\"( [MAX 1 ] )\"\t1\r\n\r\n", tsv))
put("listops", "valid-lra-x", join(0x45, b"[MAX 2 9 ]\t9\n", tsv, tsv))
put("listops", "bad-token", join(1, b"Source\tTarget\n( [MAX 2 Q ] )\t2\n", tsv, tsv))
put("listops", "bad-target", join(1, tsv + b"( [MAX 2 ] )\t10\n", tsv, tsv))
put("listops", "three-columns", join(1, b"( [MAX 2 ] )\t2\t3\n", tsv, tsv))
put("listops", "no-tab", join(1, b"Source\tTarget\n( [MAX 2 ] ) 2\n", tsv, tsv))
put("listops", "empty-source", join(1, b"\t2\n", tsv, tsv))
put("listops", "header-only", join(1, b"Source\tTarget\n", tsv, tsv))
put("listops", "missing-file", join(1, tsv, tsv))
put("listops", "eval-errors", join(1, b"[MAX ] X ) 3 4", tsv, tsv))


# --- text --------------------------------------------------------------------------
text = ("It is a truth universally acknowledged, that a single man in possession of a good "
        "fortune, must be in want of a wife.\n\u00c9t\u00e9 \u4e2d\u6587\n").encode()
put("text", "small-seq8", join(8, text, text[:40]))
put("text", "big-seq16", join(0xC0 | 16, text))
put("text", "big-seq2-three", join(0xC0 | 2, text[:17], b"\x00\xff", text))
put("text", "empty-file", join(8, text, b""))
put("text", "seq-too-small", join(1, text))


# --- HDF5 attributes -----------------------------------------------------------------
# Recipe bytes (fuzz_h5attr.c): n_attr-1, then per attribute: name index,
# type kind, type parameter [, string byte], space kind [, dims], values;
# then the tensors byte and one mutation byte per tensor.
NAMES = ["n_layer", "n_head", "n_embd", "n_positions", "layer_norm_epsilon", "kind",
         "causal", "task", "activation", "config", "model_path", "format_version"]
SCALAR, NULL = 0, 2


def a_i64(name, v, be=False):
    return bytes([NAMES.index(name), 0, 11 if be else 3, SCALAR]) + struct.pack(">q" if be else "<q", v)


def a_f64(name, v):
    return bytes([NAMES.index(name), 1, 1, SCALAR]) + struct.pack("<d", v)


def a_fixed(name, s, size, utf8=False, pad=0, space=(SCALAR,)):
    hdr = bytes([NAMES.index(name), 2, size - 1, (1 if utf8 else 0) | pad << 1]) + bytes(space)
    n = 1
    if space[0] >= 3:
        for d in space[1:]:
            n *= d % 4
    return hdr + (s.ljust(size, b"\0")[:size]) * n


def a_vlen(name, strs, utf8=True, space=(SCALAR,)):
    return bytes([NAMES.index(name), 4, 1 if utf8 else 0]) + bytes(space) + b"".join(
        bytes([len(s)]) + s for s in strs)


def recipe(attrs, tensors=None):
    b = bytes([len(attrs) - 1]) + b"".join(attrs)
    if tensors is None:
        return b + b"\x00"
    return b + b"\x01" + bytes(tensors)


N_T = 16  # wte + wpe + 12 block tensors + ln_f weight, bias
base = [a_i64("n_layer", 1), a_i64("n_head", 1), a_i64("n_embd", 4), a_i64("n_positions", 4),
        a_f64("layer_norm_epsilon", 1e-5)]
put("h5attr", "valid-model", recipe(base, [0] * N_T))
put("h5attr", "valid-config-only", recipe(base))
put("h5attr", "valid-kind-strings", recipe(base[:4] + [a_vlen("kind", [b"gpt2"]), a_fixed("activation", b"gelu", 8),
                                                       a_i64("causal", 0, be=True)], [0] * N_T))
put("h5attr", "tensor-mutations", recipe(base, [4, 5, 6, 7, 8, 9, 10, 11, 0, 0, 0, 0, 0, 0, 0, 0]))
put("h5attr", "nan-tensor", recipe(base, [0, 0, 9] + [0] * 13))
put("h5attr", "heads-do-not-divide", recipe([a_i64("n_layer", 1), a_i64("n_head", 3), a_i64("n_embd", 4),
                                             a_i64("n_positions", 4)]))
put("h5attr", "float-count", recipe([a_f64("n_layer", 1.5), a_i64("n_head", 1)]))
put("h5attr", "string-count", recipe([a_fixed("n_layer", b"12", 3), a_vlen("task", [b"bit-xor"], utf8=False)]))
put("h5attr", "spacepad-utf8", recipe([a_fixed("task", "caf\u00e9".encode(), 12, utf8=True, pad=2),
                                       a_fixed("config", b"x", 1, pad=1)]))
put("h5attr", "unknown-kind", recipe([a_vlen("kind", [b"rnn"])] + base))
# Regression inputs (src/io/h5util.c, fpt_h5_read_attr_str): string attributes
# of several elements overflowed the read buffer (fixed-length: heap; variable-
# length: stack), and one of none returned success without writing the buffer.
put("h5attr", "regress-fixed-string-array", recipe([a_fixed("n_layer", b"abcd", 4, space=(3, 3))]))
put("h5attr", "regress-vlen-string-array", recipe([a_vlen("n_layer", [b"abc", b"def", b"ghi"], space=(3, 3))]))
put("h5attr", "regress-vlen-string-empty", recipe([a_vlen("kind", [], space=(3, 0))] + base))
put("h5attr", "regress-vlen-string-null-space", recipe([a_vlen("task", [], space=(NULL,))]))

# Inputs too large for the corpus that made a parser take quadratic time
# (seconds to minutes, now fractions of a second): replay them with
#   build-fuzz/tests/fuzz/fuzz_safetensors DIR/safetensors-20000-names
if HANG:
    os.makedirs(HANG, exist_ok=True)
    h = {("t%d" % i): {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(20000)}
    b = json.dumps(h, separators=(",", ":")).encode()
    with open(os.path.join(HANG, "safetensors-20000-names"), "wb") as f:
        f.write(b"\x00" + struct.pack("<Q", len(b) + (-len(b) % 8)) + b + b" " * (-len(b) % 8))
    with open(os.path.join(HANG, "stockholm-20000-names"), "wb") as f:
        f.write(b"\x05# STOCKHOLM 1.0\n" + b"".join(b"s%d AC\n" % i for i in range(20000)) + b"//\n")
