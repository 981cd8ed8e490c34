#!/usr/bin/env python3
"""Are the cuDNN / NCCL calls the programs make older than the GPU machine's libraries?

Headers here (bench/gpu/nvlibs.sh: cuDNN 9.24, NCCL 2.30) are newer than the GPU machine's libraries (cuDNN 9.14,
NCCL 2.28 measured there). An object compiled here and linked there is fine as long as every function, enum
value and struct field it uses exists, with the same value and signature, in the older library. This script
collects the cuDNN and NCCL names used by templates/ (runtime headers, calibrate, the generated programs'
templates) and bench/gpu/*.cu / *.cuh (comments left out), then

- cuDNN: looks up each enum value's and function's "@since cuDNN X" note in the headers of --include and
  reports every one newer than --cudnn (default 9.14), or without a note;
- NCCL (with --nccl-old HEADER, nccl.h of the older version, e.g. `git show v2.28.3-1:src/nccl.h.in` in a
  clone of github.com/NVIDIA/nccl): reports every name missing from it, every function whose prototype
  differs, and whether ncclConfig_t of the newer header only appends fields (an older NCCL copies
  min(size, its own sizeof) of the struct, so appended fields are ignored).

    python3 bench/gpu/check-api-versions.py [--include /tmp/nvroot/include] [--cudnn 9.14] [--nccl-old FILE]

Exit status 0 when nothing newer is used, 1 otherwise, 2 on bad arguments.
"""
import argparse
import glob
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def sources():
    pats = ["templates/**/*.cuh", "templates/**/*.cu", "templates/**/*.h", "templates/**/*.hbs",
            "bench/gpu/*.cu", "bench/gpu/*.cuh", "bench/gpu/harness/*.h"]
    for p in pats:
        yield from sorted(glob.glob(os.path.join(ROOT, p), recursive=True))


def used_names(prefix_re):
    names = {}
    for path in sources():
        text = open(path, encoding="utf8", errors="replace").read()
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
        text = re.sub(r"//[^\n]*", " ", text)
        for n in re.findall(prefix_re, text):
            names.setdefault(n, set()).add(os.path.relpath(path, ROOT))
    return names


def vkey(v):
    return tuple(int(x) if x.isdigit() else 10**6 for x in v.split("."))


SINCE = r"@since cuDNN ([0-9]+\.[0-9A-Za-z]+(?:\.[0-9]+)?)"


def cudnn_since(name, headers):
    """('enum'|'function'|'macro'|'type'|None, since or None)"""
    for text in headers:
        m = re.search(r"^\s*%s\s*=[^\n]*" % re.escape(name), text, re.M)  # an enum value
        if m:
            s = re.search(SINCE, m.group(0))
            return "enum", s.group(1) if s else None
        m = re.search(r"CUDNNWINAPI\s+%s\s*\(" % re.escape(name), text)  # a function
        if m:
            before = text[: m.start()]
            j = before.rfind("/**")
            block = before[j:] if j >= 0 else ""
            # the doc block right above: nothing but comments and the return type between it and the name
            if re.search(r"[;{}]", re.sub(r"/\*.*?\*/", "", block, flags=re.S)):
                block = ""
            s = re.search(SINCE, block)
            return "function", s.group(1) if s else None
        if re.search(r"^\s*#\s*define\s+%s\b" % re.escape(name), text, re.M):
            return "macro", None
        if re.search(r"\b%s\s*;" % re.escape(name), text) or re.search(r"typedef[^;]*\b%s\b" % re.escape(name), text):
            return "type", None
    return None, None


def check_cudnn(inc, oldest):
    headers = [open(h, encoding="utf8", errors="replace").read()
               for h in sorted(glob.glob(os.path.join(inc, "cudnn*.h"))) if not h.endswith("_v9.h")]
    if not headers:
        print("no cudnn*.h under %s" % inc)
        return 2
    ver = open(os.path.join(inc, "cudnn_version.h")).read()
    here = ".".join(re.search(r"#define CUDNN_%s (\d+)" % k, ver).group(1) for k in ("MAJOR", "MINOR", "PATCHLEVEL"))
    names = used_names(r"\b(?:cudnn[A-Z]\w+|CUDNN_[A-Z0-9_]+)\b")
    bad, rows = 0, []
    for n in sorted(names):
        kind, since = cudnn_since(n, headers)
        if kind is None:
            continue  # ours (CUDNN_CHECK, CUDNN_HOME, ...)
        if kind in ("macro", "type"):
            continue  # types: enums/handles whose size does not change; macros: checked below by use
        newer = since is None or vkey(since) > vkey(oldest)
        bad += newer
        rows.append((since or "?", kind, n, newer))
    print("cuDNN: %d names used, headers %s; newer than %s or without a note:" % (len(rows), here, oldest))
    for since, kind, n, newer in sorted(rows, key=lambda r: vkey(r[0]) if r[0] != "?" else (10**6,)):
        if newer:
            print("  %-8s %-8s %s  (%s)" % (since, kind, n, ", ".join(sorted(names[n]))))
    if not bad:
        newest = max((r[0] for r in rows if r[0] != "?"), key=vkey, default="-")
        print("  none (the newest used: %s)" % newest)
    return 1 if bad else 0


def prototypes(text):
    out = {}
    for m in re.finditer(r"^(?:ncclResult_t|const char\*|const char \*)\s+(nccl\w+)\s*\(([^;]*)\);", text, re.M):
        out[m.group(1)] = re.sub(r"\s+", " ", m.group(2)).strip()
    return out


def config_fields(text):
    m = re.search(r"typedef struct ncclConfig\w*\s*\{(.*?)\}\s*ncclConfig_t;", text, re.S)
    if not m:
        return []
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    return [re.sub(r"\s+", " ", f).strip() for f in body.split(";") if f.strip()]


def check_nccl(inc, old_path):
    new = open(os.path.join(inc, "nccl.h"), encoding="utf8").read()
    old = open(old_path, encoding="utf8").read()
    names = used_names(r"\b(?:nccl[A-Z]\w+|NCCL_[A-Z0-9_]+)\b")
    newp, oldp = prototypes(new), prototypes(old)
    bad = 0
    print("NCCL: names used by the programs, against %s:" % old_path)
    for n in sorted(names):
        if not re.search(r"\b%s\b" % re.escape(n), new):
            continue  # ours (NCCL_CHECK, NCCL_HOME, environment variables)
        if not re.search(r"\b%s\b" % re.escape(n), old):
            print("  MISSING in the older header: %s (%s)" % (n, ", ".join(sorted(names[n]))))
            bad += 1
        elif n in newp and newp[n] != oldp.get(n):
            print("  PROTOTYPE differs: %s\n    new %s\n    old %s" % (n, newp[n], oldp.get(n)))
            bad += 1
    nf, of = config_fields(new), config_fields(old)
    if nf[: len(of)] != of:
        print("  ncclConfig_t: the newer header does not only append fields")
        bad += 1
    else:
        print("  ncclConfig_t: %d fields, the older %d; the newer only appends (%s)" % (len(nf), len(of), ", ".join(f.split()[-1] for f in nf[len(of):]) or "-"))
    if not bad:
        print("  every name used exists in the older header with the same prototype")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--include", default=os.environ.get("NVLIBS_DIR", "/tmp/nvroot") + "/include")
    ap.add_argument("--cudnn", default="9.14", help="the oldest cuDNN the programs meet (default 9.14)")
    ap.add_argument("--nccl-old", help="nccl.h of the older NCCL (e.g. 2.28's src/nccl.h.in)")
    a = ap.parse_args()
    if not os.path.isfile(os.path.join(a.include, "cudnn.h")):
        print("no cudnn.h under %s (bash bench/gpu/nvlibs.sh)" % a.include)
        return 2
    rc = check_cudnn(a.include, a.cudnn)
    if a.nccl_old:
        rc = max(rc, check_nccl(a.include, a.nccl_old))
    else:
        print("NCCL: not checked (--nccl-old FILE; the wheel's nccl.h has no version notes)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
