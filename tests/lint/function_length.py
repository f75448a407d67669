#!/usr/bin/python3
"""No function over LIMIT lines without a reason written next to it.

A function longer than LIMIT (default 80) lines, signature to closing brace,
must have a comment right above it starting with "Long" that says why
(e.g. "// Long (about 90 lines): one OpenMP region ..."). Strings and comments
are stripped before braces are counted. Exits 1 listing each offender.
usage: function_length.py [--limit N] FILE...
"""
import re
import sys


def strip(src):
    out, i, n = [], 0, len(src)
    while i < n:
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * src.count("\n", i, j))
            i = j
        elif src[i] in "\"'":
            q, j = src[i], i + 1
            while j < n and src[j] != q:
                j += 2 if src[j] == "\\" else 1
            out.append(q + q)
            i = j + 1
        else:
            out.append(src[i])
            i += 1
    return "".join(out)


def functions(path):
    raw = open(path, encoding="utf-8").read().split("\n")
    lines = strip("\n".join(raw)).split("\n")
    depth, start, sig = 0, None, 0
    for i, line in enumerate(lines):
        if depth == 0 and line.strip() and not line[0].isspace() and line[0] not in "#}":
            sig = i
        for k, ch in enumerate(line):
            if ch == "{":
                if depth == 0 and re.search(r"\)\s*$", line[:k]):
                    start = sig
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0 and start is not None:
                    yield start, i - start + 1, raw
                    start = None


def has_reason(raw, start):
    j = start - 1
    while j >= 0 and raw[j].lstrip().startswith("//"):
        if raw[j].lstrip()[2:].lstrip().startswith("Long"):
            return True
        j -= 1
    return False


def main(argv):
    limit = 80
    if argv[:1] == ["--limit"]:
        limit, argv = int(argv[1]), argv[2:]
    bad = 0
    for path in argv:
        for start, n, raw in functions(path):
            if n > limit and not has_reason(raw, start):
                print(f"{path}:{start + 1}: {n} lines (> {limit}) and no '// Long ...' reason: "
                      f"{raw[start].strip()[:72]}")
                bad += 1
    print(f"function_length: {len(argv)} files, {bad} function(s) over {limit} lines without a reason")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
