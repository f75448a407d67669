#!/usr/bin/python3
"""Independent checks of LRA ListOps TSV files and of fpt's ListOps HDF5 file.

Written from the LRA description (lra_benchmarks/data/listops.py and the two
listops input pipelines), not from fpt's C code.

TSV mode (default):
    listops_check.py DIR [--sizes 96000,2000,2000] [--max-depth 10]
                         [--max-args 10] [--min-length 500] [--max-length 2000]
  reads DIR/basic_{train,val,test}.tsv and checks: the header, that every
  Source is a well-formed LRA expression (every "( a b )" is a pair; an
  operator node is the left-nested chain ((([OP a1) a2) ... ak) ]) ), every
  Target against an evaluator of that pair structure, min < length < max
  (length = digits + operators + "]"), tree depth <= max_depth (root = 1),
  2 <= arguments <= max_args, no expression repeated within or across splits,
  and the split sizes (--sizes '' skips that check). With --lra-sample N it
  also compares the length, arguments-per-operator, operator-fraction and
  target distributions of (up to 10 N of) the files' trees with N trees from
  a literal Python port of LRA's generate_tree (z-tests at 5 sigma, chi2).

HDF5 mode:
    listops_check.py --hdf5 FILE.h5 DIR [--seq 512] [--seq2 2000]
  re-tokenises the TSV files and compares, for every split in the file,
  /S/x (the Oct-2020 LRA tokens FPT used: tfds Tokenizer = split on \\W+ and
  drop the separators, ids MAX 1 MIN 2 MED 3 SM 4 digits 5..14, cut to seq,
  0-padded at the end), /S/x2 (current LRA: "]" -> "X", parentheses removed,
  whitespace tokens, ids [MAX 1 [MIN 2 [MED 3 [SM 4 digits 5..14 X 15, cut to
  seq2, 0-padded at the end) and /S/y (Target), plus the root attributes.

Prints one line per check, then "N passed, M failed"; exit status 1 if any
check failed.
"""
import argparse
import hashlib
import os
import re
import sys

import numpy as np

OPS = ("[MIN", "[MAX", "[MED", "[SM")
END = "]"
SPLITS = ("train", "val", "test")

results = [0, 0]


def report(ok, what):
    print(("ok: " if ok else "FAIL: ") + what, flush=True)
    results[0 if ok else 1] += 1
    return ok


# ---------------------------------------------------------------------------
# Reading LRA TSV files (header "Source\tTarget"; a field may be quoted).

def unquote(s):
    s = s.strip()
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        s = s[1:-1]
    return s


def read_tsv(path):
    """Yield (line number, source, target string); the first line must be the header."""
    with open(path, encoding="utf-8") as f:
        header = None
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            cols = line.rstrip("\r\n").split("\t")
            if header is None:
                header = [unquote(c) for c in cols]
                if header != ["Source", "Target"]:
                    raise ValueError(f"{path}:{lineno}: header {header!r}, expected ['Source', 'Target']")
                continue
            if len(cols) != 2:
                raise ValueError(f"{path}:{lineno}: {len(cols)} columns, expected 2")
            yield lineno, unquote(cols[0]), unquote(cols[1])
        if header is None:
            raise ValueError(f"{path}: empty file")


# ---------------------------------------------------------------------------
# The evaluator. A Source is a binary tree of pairs; atoms are digits,
# operator names and the closing bracket. Semantics as in LRA's to_value:
# (op, v) starts a function with argument list [v]; (f, v) appends v to an
# unfinished function f; (f, "]") applies f.

class Unfinished:
    __slots__ = ("op", "args")

    def __init__(self, op, args):
        self.op, self.args = op, args


def median_int(values):
    s = sorted(values)
    n = len(s)
    if n % 2:
        return s[n // 2]
    return int((s[n // 2 - 1] + s[n // 2]) / 2)   # numpy median, then int()


def apply(f):
    a = f.args
    if f.op == "[MIN":
        return min(a)
    if f.op == "[MAX":
        return max(a)
    if f.op == "[MED":
        return median_int(a)
    return sum(a) % 10


def parse_pairs(tokens):
    """Pairs as tuples, atoms as int (digit) or str. Raises ValueError."""
    stack = [[]]
    push, pop = stack.append, stack.pop
    for tok in tokens:
        if tok == "(":
            push([])
        elif tok == ")":
            items = pop()
            if len(items) != 2 or not stack:
                raise ValueError("a parenthesised group is not a pair")
            stack[-1].append((items[0], items[1]))
        elif len(tok) == 1 and tok.isdigit():
            stack[-1].append(int(tok))
        elif tok in OPS or tok == END:
            stack[-1].append(tok)
        else:
            raise ValueError(f"unknown token {tok!r}")
    if len(stack) != 1 or len(stack[0]) != 1:
        raise ValueError("unbalanced parentheses or more than one top-level item")
    return stack[0][0]


def value(t):
    if isinstance(t, int):
        return t
    if isinstance(t, str):
        return t
    left, right = value(t[0]), value(t[1])
    if isinstance(left, str) and left in OPS:
        if not isinstance(right, int):
            raise ValueError(f"operator {left} applied to {right!r}")
        return Unfinished(left, [right])
    if isinstance(left, Unfinished):
        if right == END:
            return apply(left)
        if isinstance(right, int):
            return Unfinished(left.op, left.args + [right])
    raise ValueError(f"malformed pair ({left!r}, {right!r})")


def shape(t, depth, stats, max_depth):
    """Walk the operator tree under pair tree t at node depth `depth` (root 1)
    and update stats = [max depth, min args, max args, operators, arguments,
    arguments below max_depth (free to be operators), of which operators]."""
    if isinstance(t, int):
        stats[0] = max(stats[0], depth)
        return
    # t = (chain, "]"), chain = ((((op, a1), a2) ...), ak)
    chain = t[0]
    args = []
    while isinstance(chain, tuple):
        args.append(chain[1])
        chain = chain[0]
    stats[0] = max(stats[0], depth)
    stats[1] = min(stats[1], len(args))
    stats[2] = max(stats[2], len(args))
    stats[3] += 1
    stats[4] += len(args)
    if depth + 1 < max_depth:
        stats[5] += len(args)
        stats[6] += sum(1 for a in args if not isinstance(a, int))
    for a in args:
        shape(a, depth + 1, stats, max_depth)


def new_stats():
    return [0, 10**9, 0, 0, 0, 0, 0]


# ---------------------------------------------------------------------------
# A literal Python sampler of LRA's generate_tree (random.random() > 0.25 is a
# leaf; randint(2, max_args) arguments; operator chosen after the arguments),
# producing the same nested pairs, to compare distributions with the files.

def lra_tree(rng, depth, max_depth, max_args):
    r = rng.random() if depth < max_depth else 1
    if r > 0.25:
        return rng.choice(range(10)), 1
    length, values = 2, []
    for _ in range(rng.randint(2, max_args)):
        sub, sub_len = lra_tree(rng, depth + 1, max_depth, max_args)
        values.append(sub)
        length += sub_len
    t = (rng.choice(OPS), values[0])
    for v in values[1:]:
        t = (t, v)
    return (t, END), length


def features(tree, length, max_depth):
    st = new_stats()
    shape(tree, 1, st, max_depth)
    return (length, st[4] / st[3] if st[3] else 0.0, st[6] / st[5] if st[5] else None, value(tree))


def compare_with_lra(files_feats, args):
    import random
    rng = random.Random(args.lra_seed)
    ref, seen = [], set()
    while len(ref) < args.lra_sample:
        tree, length = lra_tree(rng, 1, args.max_depth, args.max_args)
        if args.min_length < length < args.max_length and tree not in seen:
            seen.add(tree)
            ref.append(features(tree, length, args.max_depth))
    names = ["mean length", "mean arguments per operator", "operator fraction of non-forced arguments"]
    for k, name in enumerate(names):
        a = np.array([f[k] for f in files_feats if f[k] is not None], dtype=float)
        b = np.array([f[k] for f in ref if f[k] is not None], dtype=float)
        z = (a.mean() - b.mean()) / np.sqrt(a.var() / len(a) + b.var() / len(b) + 1e-300)
        report(abs(z) < 5, f"distribution: {name} {a.mean():.4f} (files, n={len(a)}) vs "
                           f"{b.mean():.4f} (LRA sampler, n={len(b)}), |z| = {abs(z):.2f} < 5")
    ca = np.bincount([f[3] for f in files_feats], minlength=10).astype(float)
    cb = np.bincount([f[3] for f in ref], minlength=10).astype(float)
    tot = ca + cb
    keep = tot > 0
    ea = tot * ca.sum() / (ca.sum() + cb.sum())
    eb = tot * cb.sum() / (ca.sum() + cb.sum())
    chi2 = float((((ca - ea) ** 2 / np.where(keep, ea, 1)) + ((cb - eb) ** 2 / np.where(keep, eb, 1)))[keep].sum())
    report(chi2 < 40, f"distribution: target histogram, chi2 = {chi2:.1f} < 40 (9 dof, p ~ 1e-5)  "
                      f"files {np.round(ca / ca.sum(), 3).tolist()} LRA {np.round(cb / cb.sum(), 3).tolist()}")


def check_tsv(args):
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else None
    seen = {}
    dup_within, dup_across = 0, 0
    counts = {}
    feats = []
    lo_len, hi_len, worst_depth, lo_args, hi_args = 10**9, 0, 0, 10**9, 0
    for si, split in enumerate(SPLITS):
        path = os.path.join(args.dir, f"basic_{split}.tsv")
        n = bad_parse = bad_target = bad_len = bad_depth = bad_args = 0
        first_err = []

        def note(msg):
            if len(first_err) < 3:
                first_err.append(msg)

        try:
            for lineno, src, tgt in read_tsv(path):
                n += 1
                toks = src.split()
                try:
                    tree = parse_pairs(toks)
                    v = value(tree)
                    if not isinstance(v, int):
                        raise ValueError("expression does not evaluate to a digit")
                except (ValueError, TypeError, RecursionError) as e:
                    bad_parse += 1
                    note(f"{path}:{lineno}: {e}")
                    continue
                if not re.fullmatch(r"[0-9]", tgt) or int(tgt) != v:
                    bad_target += 1
                    note(f"{path}:{lineno}: target {tgt!r}, evaluates to {v}")
                length = sum(1 for x in toks if x not in ("(", ")"))
                lo_len, hi_len = min(lo_len, length), max(hi_len, length)
                if not args.min_length < length < args.max_length:
                    bad_len += 1
                    note(f"{path}:{lineno}: length {length}")
                stats = new_stats()
                shape(tree, 1, stats, args.max_depth)
                if len(feats) < args.lra_sample * 10:
                    feats.append((length, stats[4] / stats[3] if stats[3] else 0.0,
                                  stats[6] / stats[5] if stats[5] else None, v))
                worst_depth = max(worst_depth, stats[0])
                if stats[0] > args.max_depth:
                    bad_depth += 1
                    note(f"{path}:{lineno}: depth {stats[0]}")
                if stats[2] > 0:
                    lo_args, hi_args = min(lo_args, stats[1]), max(hi_args, stats[2])
                    if stats[1] < 2 or stats[2] > args.max_args:
                        bad_args += 1
                        note(f"{path}:{lineno}: operator with {stats[1]}..{stats[2]} arguments")
                key = hashlib.blake2b(" ".join(toks).encode(), digest_size=16).digest()
                prev = seen.get(key)
                if prev is None:
                    seen[key] = si
                elif prev == si:
                    dup_within += 1
                    note(f"{path}:{lineno}: repeats an earlier {split} example")
                else:
                    dup_across += 1
                    note(f"{path}:{lineno}: repeats a {SPLITS[prev]} example")
        except (OSError, ValueError) as e:
            report(False, f"{split}: {e}")
            continue
        counts[split] = n
        for msg in first_err:
            print("  " + msg)
        report(bad_parse == 0, f"{split}: all {n} Sources are well-formed LRA expressions ({bad_parse} bad)")
        report(bad_target == 0, f"{split}: every Target equals the independent evaluation ({bad_target} wrong)")
        report(bad_len == 0, f"{split}: {args.min_length} < length < {args.max_length} ({bad_len} outside)")
        report(bad_depth == 0, f"{split}: tree depth <= {args.max_depth} ({bad_depth} deeper)")
        report(bad_args == 0, f"{split}: 2 <= arguments <= {args.max_args} ({bad_args} outside)")
    if counts:
        print(f"  lengths {lo_len}..{hi_len}, deepest tree {worst_depth}, arguments {lo_args}..{hi_args}")
    report(dup_within == 0 and dup_across == 0 and len(counts) == 3,
           f"no expression repeated within ({dup_within}) or across ({dup_across}) splits")
    if sizes is not None:
        got = [counts.get(s) for s in SPLITS]
        report(got == sizes, f"split sizes {got} == {sizes}")
    if args.lra_sample > 0 and feats:
        compare_with_lra(feats, args)


# ---------------------------------------------------------------------------
# Tokenisations (from the two LRA input pipelines).

PAPER_VOCAB = {"MAX": 1, "MIN": 2, "MED": 3, "SM": 4, **{str(d): 5 + d for d in range(10)}}
LRA_VOCAB = {"[MAX": 1, "[MIN": 2, "[MED": 3, "[SM": 4, **{str(d): 5 + d for d in range(10)}, "X": 15}
NON_ALNUM = re.compile(r"\W+")


def paper_ids(src, seq):
    toks = [t for t in NON_ALNUM.split(src) if t]      # tfds Tokenizer(alphanum_only)
    ids = [PAPER_VOCAB[t] for t in toks][:seq]
    return ids + [0] * (seq - len(ids))


def lra_ids(src, seq):
    src = src.replace("]", "X").replace("(", "").replace(")", "")
    ids = [LRA_VOCAB[t] for t in src.split()][:seq]
    return ids + [0] * (seq - len(ids))


def check_hdf5(args):
    import h5py
    with h5py.File(args.hdf5, "r") as h:
        attrs = dict(h.attrs)

        def attr(k):
            v = attrs.get(k)
            if isinstance(v, bytes):
                v = v.decode()
            if isinstance(v, np.ndarray) and v.size == 1:
                v = v.item()
            return v.item() if isinstance(v, np.generic) else v

        want = {"task": "listops", "seq": args.seq, "d_in": 0, "vocab": 15, "seq2": args.seq2,
                "vocab2": 16, "n_classes": 10, "K": 1, "r": 1, "pad_id": 0}
        got = {k: attr(k) for k in want}
        report(got == want, f"root attributes {got}")
        for split in SPLITS:
            if split not in h:
                report(split != "train", f"{split}: group present")
                continue
            g = h[split]
            x, x2, y = g.get("x"), g.get("x2"), g.get("y")
            if x is None or x2 is None or y is None:
                report(False, f"{split}: x, x2 and y present")
                continue
            n = x.shape[0]
            ok_shape = (x.shape == (n, args.seq) and x2.shape == (n, args.seq2) and y.shape == (n, 1)
                        and x.dtype == np.int32 and x2.dtype == np.int32 and y.dtype == np.int32)
            report(ok_shape, f"{split}: x {x.shape} {x.dtype}, x2 {x2.shape} {x2.dtype}, y {y.shape} {y.dtype}")
            if not ok_shape:
                continue
            path = os.path.join(args.dir, f"basic_{split}.tsv")
            rows = list(read_tsv(path))
            report(len(rows) == n, f"{split}: {n} rows in the file, {len(rows)} in {path}")
            if len(rows) != n:
                continue
            bad_x = bad_x2 = bad_y = 0
            first = []
            short = 0
            B = 2048
            for s in range(0, n, B):
                xb, x2b, yb = x[s:s + B], x2[s:s + B], y[s:s + B, 0]
                for j, (lineno, src, tgt) in enumerate(rows[s:s + B]):
                    try:
                        a, b = paper_ids(src, args.seq), lra_ids(src, args.seq2)
                    except KeyError as e:
                        bad_x += 1
                        first.append(f"{path}:{lineno}: unknown token {e}")
                        continue
                    short += a[-1] == 0
                    if not np.array_equal(xb[j], a):
                        bad_x += 1
                        if len(first) < 3:
                            first.append(f"{path}:{lineno}: x differs")
                    if not np.array_equal(x2b[j], b):
                        bad_x2 += 1
                        if len(first) < 3:
                            first.append(f"{path}:{lineno}: x2 differs")
                    if yb[j] != int(tgt):
                        bad_y += 1
                        if len(first) < 3:
                            first.append(f"{path}:{lineno}: y {yb[j]} != {tgt}")
            for msg in first[:3]:
                print("  " + msg)
            report(bad_x == 0, f"{split}: /{split}/x equals the Oct-2020 LRA tokens cut/padded to {args.seq} "
                               f"({bad_x} rows differ; {short} rows end in padding)")
            report(bad_x2 == 0, f"{split}: /{split}/x2 equals the current LRA tokens cut/padded to {args.seq2} "
                                f"({bad_x2} rows differ)")
            report(bad_y == 0, f"{split}: /{split}/y equals Target ({bad_y} rows differ)")


def selftest():
    """The evaluator on hand-made cases, and median_int against numpy."""
    rng = np.random.default_rng(0)
    ok = True
    for _ in range(2000):
        v = rng.integers(0, 10, rng.integers(1, 12)).tolist()
        ok &= median_int(v) == int(np.median(v))
    report(ok, "median_int agrees with int(numpy.median) on 2000 random lists")
    cases = [("( ( ( [MAX 2 ) 9 ) ] )", 9),
             ("( ( ( ( [MIN 7 ) ( ( ( [SM 3 ) 9 ) ] ) ) ( ( ( [MED 1 ) 8 ) ] ) ) ] )", 2),
             ("( ( ( ( ( [MED 0 ) 9 ) 4 ) 5 ) ] )", 4),
             ("( ( ( ( [SM 9 ) 9 ) 9 ) ] )", 7),
             ("5", 5)]
    for src, want in cases:
        report(value(parse_pairs(src.split())) == want, f"evaluates {src!r} to {want}")
    for bad in ["( ( ( [MAX ] ) 9 ) ] )", "( ( ( [MAX 2 ) 9 ) )", "( 1 2 3 )", "( ( ( [MAX 2 ) 9 ] )", "( ( [FOO 2 ) ] )"]:
        try:
            value(parse_pairs(bad.split()))
            report(False, f"rejects {bad!r}")
        except ValueError:
            report(True, f"rejects {bad!r}")
    report(paper_ids("( ( ( [MAX 2 ) 9 ) ] )", 5) == [1, 7, 14, 0, 0], "Oct-2020 tokens of MAX(2, 9)")
    report(lra_ids("( ( ( [MAX 2 ) 9 ) ] )", 5) == [1, 7, 14, 15, 0], "current LRA tokens of MAX(2, 9)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", nargs="?", help="directory with basic_{train,val,test}.tsv")
    ap.add_argument("--hdf5", help="check this fpt dataset file against the TSV files")
    ap.add_argument("--selftest", action="store_true", help="check the evaluator itself")
    ap.add_argument("--sizes", default="96000,2000,2000", help="expected train,val,test sizes ('' = skip)")
    ap.add_argument("--max-depth", type=int, default=10)
    ap.add_argument("--max-args", type=int, default=10)
    ap.add_argument("--min-length", type=int, default=500)
    ap.add_argument("--max-length", type=int, default=2000)
    ap.add_argument("--lra-sample", type=int, default=0,
                    help="also compare the files' distribution (length, arguments, operator "
                         "fraction, targets) with N trees from a literal Python LRA sampler")
    ap.add_argument("--lra-seed", type=int, default=0)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--seq2", type=int, default=2000)
    args = ap.parse_args()
    sys.setrecursionlimit(100000)
    if args.selftest:
        selftest()
    elif not args.dir:
        ap.error("a TSV directory is required")
    elif args.hdf5:
        check_hdf5(args)
    else:
        check_tsv(args)
    print(f"{results[0]} passed, {results[1]} failed")
    return 1 if results[1] or not results[0] else 0


if __name__ == "__main__":
    sys.exit(main())
