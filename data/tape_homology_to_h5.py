#!/usr/bin/python3
"""Convert TAPE's remote-homology LMDB files into an fpt HDF5 dataset file.

    data/tape_homology_to_h5.py SRC -o OUT.h5 [--max-len 1024]
        [--test-split fold_holdout] [--overlong truncate] [--seed 0]
        [--chunk-samples 0]

SRC is the directory of TAPE's remote_homology.tar.gz (the one holding
remote_homology_train.lmdb, remote_homology_valid.lmdb and the three
remote_homology_test_{fold,superfamily,family}_holdout.lmdb), or its parent.
Splits: TAPE train -> /train, TAPE valid -> /val, TAPE test_fold_holdout ->
/test (--test-split superfamily_holdout or family_holdout picks another test
set). Note that FPT (kzl/universal-computation) reports its homology accuracy
on TAPE *valid*, i.e. on our /val.

Each LMDB record is what TAPE's LMDBDataset reads: key b'0', b'1', ... holding
a pickled dict with at least 'primary' (the sequence, str), 'protein_length'
(int, = len(primary)) and 'fold_label' (int in [0, 1195)), plus a pickled int
under b'num_examples'. Sequences are tokenised exactly as TAPE's IUPAC
tokenizer does (<cls> residues <sep>, VOCAB below, an unknown letter is an
error and never <unk>) and padded with <pad> = 0 to --max-len. A sequence with
more than max_len - 2 residues is truncated to its first max_len - 2 residues
followed by <sep> (--overlong truncate, default, keeps every example), or left
out (--overlong drop: FPT's loader skips any batch padded past 1024 tokens, so
such sequences never reach it).

Output layout (include/fpt/dataset.h): root attributes task="homology",
format_version=1, seq=max_len, d_in=0, vocab=30, seq2=0, vocab2=0,
n_classes=1195, K=1, r=1, pad_id=0 (int64), seed (recorded only: nothing is
random here), sources, generator (fixed-length strings, as fpt writes them);
groups /train, /val, /test with x int32 (N, seq), y int32 (N, 1) and index
int64 (N) = each sample's LMDB key. Arrays are contiguous by default, like
`fpt data` writes them (src/io/dataset_file.c measured chunked reads of
shuffled batches 25-90x slower with HDF5 1.10); --chunk-samples N chunks them
along the sample axis only, N samples per chunk.

The file is written to OUT.tmp.PID and renamed into place, after every record
of every split has been read and checked: on any error (a missing key, a
record that cannot be unpickled or lacks a field, a length that disagrees with
protein_length, a label out of range, an unknown letter) one line
"tape_homology_to_h5.py: error: FILE: key b'N': ..." goes to stderr, the exit
status is 1 and OUT is neither created nor changed.

Pickle can run code when loading: convert only LMDB files you trust (TAPE's).
Needs Debian's python3-lmdb, python3-numpy and python3-h5py.
"""

import argparse
import os
import pickle
import sys

# tape.tokenizers.IUPAC_VOCAB, id by id. The C table (fpt_protein_vocab in
# src/tasks/pfam.c) is the same; tests/cli/test_proteins.sh compares them.
VOCAB = [
    "<pad>", "<mask>", "<cls>", "<sep>", "<unk>",
    "A", "B", "C", "D", "E", "F", "G", "H", "I", "K", "L", "M", "N",
    "O", "P", "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z",
]
PAD, CLS, SEP = VOCAB.index("<pad>"), VOCAB.index("<cls>"), VOCAB.index("<sep>")
N_FOLDS = 1195  # TAPE registers remote_homology with num_labels=1195
TEST_SPLITS = ("fold_holdout", "superfamily_holdout", "family_holdout")
PROG = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "tape_homology_to_h5.py"


class ConvertError(Exception):
    pass


def _lut():
    """Byte -> id (-1 for bytes that are not a one-letter token)."""
    import numpy as np

    lut = np.full(256, -1, dtype=np.int32)
    for i, tok in enumerate(VOCAB):
        if len(tok) == 1:
            lut[ord(tok)] = i
    return lut


def encode(primary, max_len, where, lut):
    """TAPE's encode ([<cls>] + ids + [<sep>]), padded with <pad> to max_len.

    Returns (numpy int32 row of length max_len, whether it was truncated)."""
    import numpy as np

    try:
        raw = primary.encode("ascii")
    except UnicodeEncodeError as e:
        raise ConvertError(f"{where}: unknown letter {primary[e.start]!r} at position "
                           f"{e.start + 1} of 'primary' (TAPE's IUPAC vocabulary has A-Z "
                           "except J)")
    codes = lut[np.frombuffer(raw, dtype=np.uint8)]
    if codes.size and codes.min() < 0:
        pos = int(np.argmax(codes < 0))
        raise ConvertError(f"{where}: unknown letter {primary[pos]!r} at position {pos + 1} "
                           "of 'primary' (TAPE's IUPAC vocabulary has A-Z except J)")
    row = np.full(max_len, PAD, dtype=np.int32)
    keep = min(len(codes), max_len - 2)
    row[0] = CLS
    row[1:1 + keep] = codes[:keep]
    row[1 + keep] = SEP
    return row, len(codes) > keep


def _is_int(v):
    import numpy as np

    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def read_split(path, max_len, overlong, n_classes):
    """All records of one LMDB, checked.

    Returns x (N, max_len) int32, y (N, 1) int32, index (N) int64 (the record's
    key, which differs from its row only with --overlong drop) and counts."""
    import lmdb
    import numpy as np

    if not os.path.exists(path):
        raise ConvertError(f"{path}: no such LMDB database")
    try:
        env = lmdb.open(path, subdir=os.path.isdir(path), readonly=True, lock=False,
                        readahead=False, meminit=False, max_readers=1)
    except lmdb.Error as e:
        raise ConvertError(f"{path}: not a readable LMDB database: {e}")
    lut = _lut()
    rows, labels, keys = [], [], []
    truncated = dropped = 0
    try:
        with env.begin(write=False) as txn:
            raw = txn.get(b"num_examples")
            if raw is None:
                raise ConvertError(f"{path}: key b'num_examples': missing")
            try:
                n = pickle.loads(raw)
            except Exception as e:
                raise ConvertError(f"{path}: key b'num_examples': cannot unpickle: {e}")
            if not _is_int(n) or n < 0:
                raise ConvertError(f"{path}: key b'num_examples': not a count ({n!r})")
            for i in range(int(n)):
                key = str(i).encode()
                where = f"{path}: key {key!r}"
                raw = txn.get(key)
                if raw is None:
                    raise ConvertError(f"{where}: missing (num_examples is {n})")
                try:
                    item = pickle.loads(raw)
                except Exception as e:
                    raise ConvertError(f"{where}: cannot unpickle: {e}")
                if not isinstance(item, dict):
                    raise ConvertError(f"{where}: not a dict but {type(item).__name__}")
                for field in ("primary", "protein_length", "fold_label"):
                    if field not in item:
                        raise ConvertError(f"{where}: no '{field}' field")
                primary, length, fold = item["primary"], item["protein_length"], item["fold_label"]
                if not isinstance(primary, str):
                    raise ConvertError(f"{where}: 'primary' is {type(primary).__name__}, not str")
                if not _is_int(length) or int(length) != len(primary):
                    raise ConvertError(f"{where}: 'protein_length' is {length!r} but 'primary' "
                                       f"has {len(primary)} letters")
                if not _is_int(fold) or not 0 <= int(fold) < n_classes:
                    raise ConvertError(f"{where}: 'fold_label' {fold!r} is not an integer in "
                                       f"[0, {n_classes})")
                row, cut = encode(primary, max_len, where, lut)
                if cut:
                    if overlong == "drop":
                        dropped += 1
                        continue
                    truncated += 1
                rows.append(row)
                labels.append(int(fold))
                keys.append(i)
    finally:
        env.close()
    x = np.stack(rows).astype(np.int32) if rows else np.zeros((0, max_len), np.int32)
    y = np.asarray(labels, dtype=np.int32).reshape(-1, 1)
    index = np.asarray(keys, dtype=np.int64)
    return x, y, index, {"records": int(n), "truncated": truncated, "dropped": dropped}


def _attr_str(obj, name, value):
    """A fixed-length, NUL-terminated C string attribute, as fpt_h5_write_attr_str."""
    import h5py
    import numpy as np

    b = value.encode()
    t = h5py.h5t.C_S1.copy()
    t.set_size(len(b) + 1)
    t.set_strpad(h5py.h5t.STR_NULLTERM)
    space = h5py.h5s.create(h5py.h5s.SCALAR)
    a = h5py.h5a.create(obj.id, name.encode(), t, space)
    a.write(np.array(b, dtype=f"S{len(b) + 1}"))


def write_h5(out, splits, attrs, strings, chunk):
    """Write to OUT.tmp.PID, then rename; remove the temporary file on failure."""
    import h5py
    import numpy as np

    tmp = f"{out}.tmp.{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as f:
            for k, v in attrs.items():
                f.attrs.create(k, np.int64(v), dtype=np.int64)
            for k, v in strings.items():
                _attr_str(f, k, v)
            for name, arrays in splits.items():
                g = f.create_group(name)
                for dname, a in arrays.items():
                    n = a.shape[0]
                    kw = {}
                    if chunk > 0 and n > 0:  # along the sample axis only
                        kw["chunks"] = (min(chunk, n),) + a.shape[1:]
                    g.create_dataset(dname, data=a, **kw)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv=None):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="directory holding remote_homology_*.lmdb (or its parent)")
    ap.add_argument("-o", "--out", required=True, help="output HDF5 dataset file")
    ap.add_argument("--max-len", type=int, default=1024,
                    help="tokens per sequence incl. <cls> and <sep> (default 1024)")
    ap.add_argument("--test-split", choices=TEST_SPLITS, default="fold_holdout",
                    help="TAPE test set written as /test (default fold_holdout)")
    ap.add_argument("--overlong", choices=("truncate", "drop"), default="truncate",
                    help="sequences longer than max_len - 2 residues (default truncate)")
    ap.add_argument("--seed", type=int, default=0, help="recorded in the file only")
    ap.add_argument("--chunk-samples", type=int, default=0,
                    help="0: contiguous arrays (default, as `fpt data`); N: chunks of N "
                         "samples along the sample axis")
    args = ap.parse_args(argv)
    if args.chunk_samples < 0:
        ap.error(f"--chunk-samples {args.chunk_samples}: must be >= 0")
    if args.max_len < 2:
        ap.error(f"--max-len {args.max_len}: need at least 2 (room for <cls> and <sep>)")

    src = args.src
    if not os.path.exists(os.path.join(src, "remote_homology_train.lmdb")) and \
            os.path.exists(os.path.join(src, "remote_homology", "remote_homology_train.lmdb")):
        src = os.path.join(src, "remote_homology")
    files = {
        "train": os.path.join(src, "remote_homology_train.lmdb"),
        "val": os.path.join(src, "remote_homology_valid.lmdb"),
        "test": os.path.join(src, f"remote_homology_test_{args.test_split}.lmdb"),
    }
    try:
        splits, report = {}, []
        for name, path in files.items():
            x, y, index, st = read_split(path, args.max_len, args.overlong, N_FOLDS)
            splits[name] = {"x": x, "y": y, "index": index}
            report.append(f"{name}: {x.shape[0]} of {st['records']} records from {path}"
                          + (f", {st['truncated']} truncated" if st["truncated"] else "")
                          + (f", {st['dropped']} dropped" if st["dropped"] else ""))
        attrs = dict(format_version=1, seq=args.max_len, d_in=0, vocab=len(VOCAB), seq2=0,
                     vocab2=0, n_classes=N_FOLDS, K=1, r=1, pad_id=PAD, seed=args.seed)
        strings = {
            "task": "homology",
            "sources": "; ".join(os.path.abspath(p) for p in files.values()),
            "generator": (f"data/tape_homology_to_h5.py --max-len {args.max_len} --test-split "
                          f"{args.test_split} --overlong {args.overlong} --seed {args.seed}"),
        }
        outdir = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(outdir):
            raise ConvertError(f"{args.out}: directory {outdir} does not exist")
        try:
            write_h5(args.out, splits, attrs, strings, args.chunk_samples)
        except (OSError, ValueError, RuntimeError) as e:
            raise ConvertError(f"{args.out}: cannot write: {e}")
    except ConvertError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    for line in report:
        print(line)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
