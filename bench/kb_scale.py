"""Knowledge-base scale: build, save, load and query a generated KB of
~300,000 names (two labels), and write times and memory as JSON.

    nice -n 5 .venv/bin/python bench/kb_scale.py --names 300000 --output metrics/kb_scale.json

Names are synthetic MeSH-like terms (random syllable words, 1-4 words, with
plural and hyphen variants), ids D000000..; queries are misspelt names so
that every one goes to the n-gram similarity stage (the slowest path).
Memory is the process's resident set size (peak and added by loading),
measured in a fresh subprocess for the load so the build does not count.
"""

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SYLLABLES = (
    "al ba co de fe gi hy io ka lo mu ne ox pi qu ra si to ur vi xa zy cyl phen eth meth "
    "amin ol ine ate ide ase itis osis oma emia path card neur hep nephr gast derm"
).split()


def rss_mb() -> float:
    with open("/proc/self/status") as fp:
        for line in fp:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_names(n: int, seed: int = 0):
    rng = random.Random(seed)
    seen = set()
    while len(seen) < n:
        words = [
            "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
            for _ in range(rng.randint(1, 4))
        ]
        name = " ".join(words)
        if rng.random() < 0.2:
            name = name.replace(" ", "-", 1)
        seen.add(name)
    return sorted(seen)


def load_child(path: str, queries_path: str) -> None:
    from spacy_biobert.linking import NameKB

    before = rss_mb()
    start = time.perf_counter()
    kb = NameKB.load(path)
    kb.build()
    load_s = time.perf_counter() - start
    after = rss_mb()
    queries = json.loads(Path(queries_path).read_text())
    start = time.perf_counter()
    hits = kb.link_many(queries, "Chemical", threshold=0.5)
    query_s = time.perf_counter() - start
    print(json.dumps({
        "load_seconds": round(load_s, 2),
        "rss_before_load_mb": round(before, 1),
        "rss_after_load_mb": round(after, 1),
        "added_by_load_mb": round(after - before, 1),
        "peak_rss_mb": round(peak_mb(), 1),
        "queries": len(queries),
        "query_seconds": round(query_s, 2),
        "queries_per_second": round(len(queries) / query_s, 1),
        "queries_linked": sum(h is not None for h in hits),
    }))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--names", type=int, default=300_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--output", type=Path, default=Path("metrics/kb_scale.json"))
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        load_child(*args.child)
        return
    from spacy_biobert.linking import NameKB

    names = make_names(args.names)
    rng = random.Random(1)
    start = time.perf_counter()
    kb = NameKB()
    for i, name in enumerate(names):
        kb.add(name, f"D{i:06d}", "Chemical" if i % 2 else "Disease")
    kb.build()
    build_s = time.perf_counter() - start
    queries = []
    for name in rng.sample(names[1::2], args.queries):
        pos = rng.randrange(len(name))
        queries.append(name[:pos] + rng.choice("aeiou") + name[pos + 1 :] + "s")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        kb.to_disk(Path(tmp) / "kb")
        save_s = time.perf_counter() - start
        size = sum(p.stat().st_size for p in (Path(tmp) / "kb").iterdir())
        qpath = Path(tmp) / "queries.json"
        qpath.write_text(json.dumps(queries))
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(Path(tmp) / "kb"), str(qpath)],
            capture_output=True, text=True, check=True,
        )
    result = {
        "names": len(kb),
        "ids": len(kb.ids),
        "labels": list(kb.labels),
        "build_seconds": round(build_s, 1),
        "build_peak_rss_mb": round(peak_mb(), 1),
        "save_seconds": round(save_s, 2),
        "file_mb": round(size / 2**20, 1),
        **json.loads(out.stdout.strip().splitlines()[-1]),
        "machine": "2-core CPU shared with a training job; run under nice -n 5",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
