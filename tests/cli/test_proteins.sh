#!/bin/bash
# Protein data: data/tape_homology_to_h5.py on TAPE-format LMDB files, and (if
# this fpt has it) `fpt data pfam` on Debian's hmmer-examples.
#   test_proteins.sh FPT_BINARY SCRATCH_DIR
# A tiny TAPE remote-homology tree is written with python3-lmdb, records being
# pickled dicts shaped like TAPE's (id, primary, protein_length, class/fold/
# superfamily/family labels, numpy per-residue arrays). The converted file is
# checked against the LMDB by an independent reader and tokenizer; every
# corrupt variant must fail with exit 1, one error line naming the file and
# key, and no output (nor temporary) file. The C vocabulary table
# (src/tasks/pfam.c) and the Python one must both equal TAPE's IUPAC_VOCAB.
# Without `fpt data pfam` the Stockholm side is covered by tests/unit/test_protein.c.
set -uo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 FPT_BINARY SCRATCH_DIR" >&2
  exit 2
fi
FPT=$1
mkdir -p "$2"
DIR=$(realpath "$2")
HERE=$(dirname "$(realpath "$0")")
ROOT=$(realpath "$HERE/../..")
CONV=$ROOT/data/tape_homology_to_h5.py
PY=/usr/bin/python3
export OMP_NUM_THREADS=1

source "$HERE/lib.sh"
# pycheck LOG CMD...: run a Python checker that prints "ok: ..." / "FAIL: ..."
# lines; count them. A checker that dies without a FAIL line is one failure.
pycheck() {
  local log=$1
  shift
  "$@" >"$log" 2>&1
  local rc=$? n_ok n_bad
  n_ok=$(grep -c '^ok: ' "$log")
  n_bad=$(grep -c '^FAIL: ' "$log")
  grep -E '^(ok|FAIL): ' "$log"
  PASS=$((PASS + n_ok))
  FAIL=$((FAIL + n_bad))
  if [ "$rc" -ne 0 ] && [ "$n_bad" -eq 0 ]; then
    bad "checker $(basename "$2") exited $rc" "$log"
  fi
}

for m in lmdb h5py numpy; do
  if ! "$PY" -c "import $m" 2>/dev/null; then
    bad "$PY cannot import $m (Debian: python3-$m)"
  fi
done

# ---- fixtures: a TAPE remote_homology tree, good and corrupt ----------------
cat >"$DIR/make_lmdb.py" <<'EOF'
"""make_lmdb.py ROOT VARIANT: ROOT/remote_homology/remote_homology_*.lmdb."""
import os, pickle, shutil, sys
import lmdb
import numpy as np

LONG = "MSTNPKPQRKTKRNTNRRPQDVKFPGGGQIVGGVYLLPRRGPRLGVRATRKTSERSQPRGRRQPIP"
SPLITS = {
    "train": [("MKTAYIAKQRQISFVKSHFSRQ", 0), ("BOUXZ", 1194), ("ACDEFGHIKLMNPQRSTVWY", 17),
              ("GSHMAS", 3), (LONG, 250), ("ACDEFGHIKLMNPQ", 5), ("W", 1)],
    "valid": [("MADQLTEEQIAEFKEAFSLF", 12), ("KVFGRCELAAAMKRHGLDNY", 0), ("PEPTIDE", 1194)],
    "test_fold_holdout": [("MVLSPADKTNVKAAW", 40), (LONG[:30], 41)],
    "test_superfamily_holdout": [("GLSDGEWQQVLNVWGK", 77), ("HHHHHH", 78)],
    "test_family_holdout": [("MNIFEMLRIDEGLRLKIYKDTEGYYTIGIGHLLTKSPSLNAAKSELDKAIGRNTNGVITKDEAEKLFNQDVDAAVRGILRNAKLKPVYDSLDAVRRAAINMVFQMGETGVAGFTNSLRMLQQKRWDEAAVNLAKSRWYNQTPNRAKRVITTFRTGTWDAYKNL", 100)],
}

def record(i, seq, fold):
    """A record as TAPE's remote_homology LMDB stores it."""
    L = len(seq)
    return {"id": f"d{i}a_", "primary": seq, "protein_length": L if i % 2 else np.int64(L),
            "class_label": 2, "fold_label": fold if i % 2 else np.int64(fold),
            "superfamily_label": fold + 7, "family_label": fold + 11,
            "secondary_structure": np.zeros(L, np.int64),
            "solvent_accessibility": np.ones(L, np.int64),
            "evolutionary": np.zeros((L, 20), np.float32)}

def write(path, entries):
    env = lmdb.open(path, map_size=1 << 24)
    with env.begin(write=True) as txn:
        for k, v in entries.items():
            txn.put(k, v)
    env.close()

def main(root, variant):
    base = os.path.join(root, "remote_homology")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(base)
    for split, recs in SPLITS.items():
        items = [record(i, s, f) for i, (s, f) in enumerate(recs)]
        if split == "train" and variant == "bad_letter":
            items[2]["primary"] = "ACDEJGH"; items[2]["protein_length"] = 7
        if split == "train" and variant == "lowercase":
            items[3]["primary"] = "GShMAS"
        if split == "valid" and variant == "no_field":
            del items[1]["fold_label"]
        if split == "valid" and variant == "bad_label":
            items[2]["fold_label"] = 1195
        if split == "valid" and variant == "neg_label":
            items[0]["fold_label"] = -1
        if split == "train" and variant == "bad_length":
            items[4]["protein_length"] = len(items[4]["primary"]) + 1
        if split == "test_fold_holdout" and variant == "bytes_primary":
            items[1]["primary"] = items[1]["primary"].encode()
        entries = {str(i).encode(): pickle.dumps(r, protocol=3) for i, r in enumerate(items)}
        entries[b"num_examples"] = pickle.dumps(len(items), protocol=3)
        if split == "valid" and variant == "missing_key":
            del entries[b"1"]
        if split == "train" and variant == "no_count":
            del entries[b"num_examples"]
        if split == "train" and variant == "garbage":
            entries[b"3"] = b"\x80\x03not a pickle"
        if split == "valid" and variant == "not_dict":
            entries[b"0"] = pickle.dumps(["MKV", 3], protocol=3)
        if split == "test_fold_holdout" and variant == "no_test":
            continue
        write(os.path.join(base, f"remote_homology_{split}.lmdb"), entries)

main(sys.argv[1], sys.argv[2])
EOF

# ---- independent checker: LMDB -> expected arrays, compared with the HDF5 ---
cat >"$DIR/check_h5.py" <<'EOF'
"""check_h5.py OUT.h5 SRC_DIR TEST_SPLIT MAX_LEN OVERLONG CHUNK"""
import os, pickle, sys
import h5py, lmdb
import numpy as np

out, src, test_split, max_len, overlong, chunk = sys.argv[1:7]
max_len, chunk = int(max_len), int(chunk)
# Written from TAPE's published table, not from the converter.
TAPE = ["<pad>", "<mask>", "<cls>", "<sep>", "<unk>"] + list("ABCDEFGHIKLMNOPQRSTUVWXYZ")
tok = {t: i for i, t in enumerate(TAPE)}
n_fail = 0

def check(what, cond, detail=""):
    global n_fail
    print(("ok: " if cond else "FAIL: ") + what + ("" if cond else f" ({detail})"))
    n_fail += not cond

def expected(path):
    env = lmdb.open(path, readonly=True, lock=False)
    xs, ys, keys = [], [], []
    with env.begin() as txn:
        n = pickle.loads(txn.get(b"num_examples"))
        for i in range(n):
            r = pickle.loads(txn.get(str(i).encode()))
            ids = [tok["<cls>"]] + [tok[c] for c in r["primary"]] + [tok["<sep>"]]
            if len(ids) > max_len:
                if overlong == "drop":
                    continue
                ids = ids[:max_len - 1] + [tok["<sep>"]]
            xs.append(ids + [0] * (max_len - len(ids)))
            ys.append([int(r["fold_label"])])
            keys.append(i)
    env.close()
    return (np.array(xs, np.int32).reshape(-1, max_len), np.array(ys, np.int32).reshape(-1, 1),
            np.array(keys, np.int64))

base = os.path.join(src, "remote_homology")
srcs = {"train": "train", "val": "valid", "test": f"test_{test_split}"}
with h5py.File(out, "r") as f:
    want = dict(format_version=1, seq=max_len, d_in=0, vocab=30, seq2=0, vocab2=0,
                n_classes=1195, K=1, r=1, pad_id=0)
    wrong = [f"{k}={f.attrs.get(k)!r}" for k, v in want.items()
             if f.attrs.get(k) is None or f.attrs[k] != v or np.asarray(f.attrs[k]).dtype != np.int64]
    if "seed" not in f.attrs or np.asarray(f.attrs["seed"]).dtype != np.int64:
        wrong.append("seed")
    for k in ("task", "sources", "generator"):
        if k not in f.attrs:
            wrong.append(f"{k} missing")
            continue
        tid = h5py.h5a.open(f.id, k.encode()).get_type()
        if tid.get_class() != h5py.h5t.STRING or tid.is_variable_str():
            wrong.append(f"{k} not a fixed-length string")
    check(f"root attributes: seq={max_len} vocab=30 n_classes=1195 K=1 r=1 pad_id=0 ... "
          "(int64), seed, task/sources/generator fixed-length strings", not wrong, wrong)
    check("task = homology", f.attrs["task"] == b"homology", f.attrs["task"])
    check("sources name the three LMDBs in split order",
          f.attrs["sources"].decode().split("; ") ==
          [os.path.abspath(os.path.join(base, f"remote_homology_{s}.lmdb")) for s in srcs.values()],
          f.attrs["sources"])
    check("groups are train, val, test", sorted(f.keys()) == ["test", "train", "val"], list(f))
    for g, s in srcs.items():
        x, y, keys = expected(os.path.join(base, f"remote_homology_{s}.lmdb"))
        X, Y, I = f[g]["x"], f[g]["y"], f[g]["index"]
        check(f"/{g} from TAPE {s}: x int32 {x.shape}, y int32 {y.shape}, index int64",
              X.dtype == np.int32 and Y.dtype == np.int32 and I.dtype == np.int64 and
              X.shape == x.shape and Y.shape == y.shape and I.shape == keys.shape,
              f"{X.dtype}{X.shape} {Y.dtype}{Y.shape} {I.dtype}{I.shape}")
        if X.shape == x.shape and Y.shape == y.shape:
            check(f"/{g}: ids, labels and keys equal the LMDB's, TAPE-tokenised",
                  np.array_equal(X[...], x) and np.array_equal(Y[...], y) and
                  np.array_equal(I[...], keys))
        lay = [d.chunks for d in (X, Y, I)]
        if chunk == 0:
            check(f"/{g}: contiguous arrays", lay == [None] * 3, lay)
        else:
            n = x.shape[0]
            check(f"/{g}: chunked along the sample axis ({chunk} samples)",
                  lay == [(min(chunk, n), max_len), (min(chunk, n), 1), (min(chunk, n),)], lay)
sys.exit(1 if n_fail else 0)
EOF

# ---- the two vocabularies against TAPE's -------------------------------------
cat >"$DIR/check_vocab.py" <<'EOF'
"""check_vocab.py ROOT: the C table, the Python table and TAPE's IUPAC_VOCAB agree."""
import importlib.util, re, sys

root = sys.argv[1]
TAPE = ["<pad>", "<mask>", "<cls>", "<sep>", "<unk>", "A", "B", "C", "D", "E", "F", "G", "H",
        "I", "K", "L", "M", "N", "O", "P", "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z"]
c = open(f"{root}/src/tasks/pfam.c").read()
m = re.search(r"fpt_protein_vocab\[FPT_PROTEIN_VOCAB\]\s*=\s*\{(.*?)\};", c, re.S)
ctab = re.findall(r'"([^"]*)"', m.group(1)) if m else None
spec = importlib.util.spec_from_file_location("conv", f"{root}/data/tape_homology_to_h5.py")
conv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conv)
bad = 0
for what, tab in (("C table fpt_protein_vocab", ctab), ("Python VOCAB", conv.VOCAB)):
    good = tab == TAPE
    bad += not good
    print(("ok: " if good else "FAIL: ") + f"{what} is TAPE's IUPAC_VOCAB (30 ids)"
          + ("" if good else f" (got {tab})"))
sys.exit(bad)
EOF
pycheck "$DIR/vocab.log" "$PY" "$DIR/check_vocab.py" "$ROOT"

# ---- good conversions ---------------------------------------------------------
"$PY" "$DIR/make_lmdb.py" "$DIR/good" good || bad "writing the TAPE-format fixture"
# convert NAME SRC ARGS...: run the converter, expect success and no temporaries.
convert() {
  local name=$1 src=$2
  shift 2
  rm -f "$DIR/$name.h5"
  if "$PY" "$CONV" "$src" -o "$DIR/$name.h5" "$@" >"$DIR/$name.log" 2>&1 &&
    [ -s "$DIR/$name.h5" ] && ! compgen -G "$DIR/$name.h5.tmp*" >/dev/null; then
    ok "convert $name ($*): exit 0, $(grep -c . "$DIR/$name.log") report lines"
  else
    bad "convert $name ($*)" "$DIR/$name.log"
  fi
}
convert small "$DIR/good/remote_homology" --max-len 16
pycheck "$DIR/small.check" "$PY" "$DIR/check_h5.py" "$DIR/small.h5" "$DIR/good" fold_holdout 16 truncate 0
# At --max-len 16 (14 residues) 3 train, 2 val and 2 test sequences are too long.
if grep -q "^train: 7 of 7 records.*, 3 truncated" "$DIR/small.log" &&
  grep -q "^test: 2 of 2 records.*, 2 truncated" "$DIR/small.log"; then
  ok "the report counts the truncated sequences"
else
  bad "report of the truncated sequences" "$DIR/small.log"
fi
# The parent of remote_homology/ works too; another test set; dropping; chunks.
convert super "$DIR/good" --max-len 16 --test-split superfamily_holdout --chunk-samples 2
pycheck "$DIR/super.check" "$PY" "$DIR/check_h5.py" "$DIR/super.h5" "$DIR/good" superfamily_holdout 16 truncate 2
convert drop "$DIR/good" --max-len 16 --overlong drop --test-split family_holdout
pycheck "$DIR/drop.check" "$PY" "$DIR/check_h5.py" "$DIR/drop.h5" "$DIR/good" family_holdout 16 drop 0
convert full "$DIR/good" --seed 9
pycheck "$DIR/full.check" "$PY" "$DIR/check_h5.py" "$DIR/full.h5" "$DIR/good" fold_holdout 1024 truncate 0
if "$PY" -c 'import h5py,sys; f=h5py.File(sys.argv[1]); sys.exit(not (f.attrs["seed"]==9 and f["test"]["x"].shape==(2,1024)))' "$DIR/full.h5"; then
  ok "default --max-len is 1024; --seed is recorded"
else
  bad "default --max-len 1024 / --seed"
fi

# ---- corrupt inputs: exit 1, one error line naming file and key, no output ---
# fails VARIANT PATTERN: convert the variant; expect all of the above.
fails() {
  local v=$1 pattern=$2 out=$DIR/bad_$1.h5
  "$PY" "$DIR/make_lmdb.py" "$DIR/src_$v" "$v" || bad "writing fixture $v"
  rm -f "$out"
  "$PY" "$CONV" "$DIR/src_$v" -o "$out" --max-len 64 >"$DIR/bad_$v.out" 2>"$DIR/bad_$v.err"
  local rc=$? lines
  lines=$(grep -c . "$DIR/bad_$v.err")
  if [ "$rc" -eq 1 ] && [ "$lines" -eq 1 ] && grep -q "error: .*$pattern" "$DIR/bad_$v.err" &&
    [ ! -e "$out" ] && ! compgen -G "$out.tmp*" >/dev/null; then
    ok "$v: exit 1, no output: $(cat "$DIR/bad_$v.err")"
  else
    bad "$v: exit $rc, $lines stderr lines, output left: $(compgen -G "$out*" | tr '\n' ' ')" "$DIR/bad_$v.err"
  fi
}
fails bad_letter "remote_homology_train.lmdb: key b'2': unknown letter 'J' at position 5"
fails lowercase "remote_homology_train.lmdb: key b'3': unknown letter 'h' at position 3"
fails missing_key "remote_homology_valid.lmdb: key b'1': missing"
fails no_count "remote_homology_train.lmdb: key b'num_examples': missing"
fails no_field "remote_homology_valid.lmdb: key b'1': no 'fold_label' field"
fails bad_label "remote_homology_valid.lmdb: key b'2': 'fold_label' 1195 is not an integer in \[0, 1195)"
fails neg_label "remote_homology_valid.lmdb: key b'0': 'fold_label' -1"
fails bad_length "remote_homology_train.lmdb: key b'4': 'protein_length' is 67"
fails garbage "remote_homology_train.lmdb: key b'3': cannot unpickle"
fails not_dict "remote_homology_valid.lmdb: key b'0': not a dict"
fails bytes_primary "remote_homology_test_fold_holdout.lmdb: key b'1': 'primary' is bytes"
fails no_test "remote_homology_test_fold_holdout.lmdb: no such LMDB database"

# A failed conversion leaves an existing output file untouched.
cp "$DIR/small.h5" "$DIR/keep.h5"
cp "$DIR/keep.h5" "$DIR/keep.orig"
"$PY" "$CONV" "$DIR/src_bad_letter" -o "$DIR/keep.h5" --max-len 16 >/dev/null 2>&1
rc=$?
if [ "$rc" -eq 1 ] && cmp -s "$DIR/keep.h5" "$DIR/keep.orig"; then
  ok "a failed conversion leaves an existing output unchanged"
else
  bad "existing output after a failed conversion (exit $rc)"
fi
# A usage error (argparse): exit 2, nothing written.
"$PY" "$CONV" "$DIR/good" -o "$DIR/usage.h5" --max-len 1 >/dev/null 2>"$DIR/usage.err"
rc=$?
if [ "$rc" -eq 2 ] && [ ! -e "$DIR/usage.h5" ] && grep -q "max-len" "$DIR/usage.err"; then
  ok "--max-len 1: usage error, exit 2"
else
  bad "--max-len 1: exit $rc" "$DIR/usage.err"
fi

# ---- fpt data pfam, when this fpt has it ---------------------------------------
if "$FPT" data --help 2>&1 | grep -qw pfam; then
  if [ ! -d /usr/share/doc/hmmer/examples/tutorial ] && [ -z "${FPT_HMMER_EXAMPLES:-}" ]; then
    bad "fpt data pfam needs Debian's hmmer-examples (not installed)"
  else
    for run in a b; do
      rm -f "$DIR/pfam_$run.h5"
      if "$FPT" data pfam --seed 5 -o "$DIR/pfam_$run.h5" >"$DIR/pfam_$run.log" 2>&1 &&
        [ -s "$DIR/pfam_$run.h5" ]; then
        ok "fpt data pfam --seed 5 ($run)"
      else
        bad "fpt data pfam --seed 5 ($run)" "$DIR/pfam_$run.log"
      fi
    done
    cat >"$DIR/check_pfam.py" <<'EOF'
"""check_pfam.py A.h5 B.h5: the hmmer-examples pfam task, twice with one seed."""
import sys
import h5py
import numpy as np

counts = [38, 98, 4, 79, 29, 13, 10, 9, 7]  # Pkinase fn3 globins4 RRM_1 SMC_N LuxC Patched Caudal_act XYPPX
n_fail = 0

def check(what, cond, detail=""):
    global n_fail
    print(("ok: " if cond else "FAIL: ") + "pfam: " + what + ("" if cond else f" ({detail})"))
    n_fail += not cond

with h5py.File(sys.argv[1], "r") as f, h5py.File(sys.argv[2], "r") as g:
    a = {k: f.attrs[k] for k in f.attrs}
    check("attributes task pfam, vocab 30, 9 classes, K 1, r 1, pad 0, d_in 0",
          a["task"] == b"pfam" and a["vocab"] == 30 and a["n_classes"] == 9 and a["K"] == 1
          and a["r"] == 1 and a["pad_id"] == 0 and a["d_in"] == 0, a)
    seq = int(a["seq"])
    per = np.zeros((3, 9), int)
    rows_ok = same = True
    for s, name in enumerate(("train", "val", "test")):
        x, y = f[name]["x"][...], f[name]["y"][...]
        same &= np.array_equal(x, g[name]["x"][...]) and np.array_equal(y, g[name]["y"][...])
        for r, lab in zip(x, y[:, 0]):
            per[s, lab] += 1
            sep = np.flatnonzero(r == 3)
            rows_ok &= (r[0] == 2 and len(sep) == 1 and (r[1:sep[0]] >= 5).all()
                        and (r[1:sep[0]] < 30).all() and (r[sep[0] + 1:] == 0).all())
        check(f"/{name}: x int32 (N, {seq}), y int32 (N, 1)",
              x.dtype == np.int32 and y.dtype == np.int32 and x.shape[1] == seq and y.shape[1] == 1)
    check("every row is <cls> residues <sep> <pad>...", rows_ok)
    k = [max(1, (15 * n + 50) // 100) if n >= 3 else 0 for n in counts]
    want = np.array([[n - 2 * kk for n, kk in zip(counts, k)], k, k])
    check("per-family split 70/15/15 (287 sequences: 199/44/44)", np.array_equal(per, want),
          per.tolist())
    check("the same seed gives the same file contents", same)
sys.exit(1 if n_fail else 0)
EOF
    pycheck "$DIR/pfam.check" "$PY" "$DIR/check_pfam.py" "$DIR/pfam_a.h5" "$DIR/pfam_b.h5"
  fi
else
  echo "skip: '$FPT data --help' lists no pfam task; the Stockholm reader and the pfam task are tested by tests/unit/test_protein.c"
fi

finish
