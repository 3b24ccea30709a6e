"""Knowledge-base scale: build, save, load and query a generated KB of
1,000,000 names (two labels, ~350,000 ids) and write times, memory and
mentions per second as JSON.

    nice -n 19 .venv/bin/python bench/kb_scale.py --names 1000000 --output metrics/kb_scale.json

Names are synthetic MeSH-like terms (random syllable words, 1-4 words, with
hyphen variants); about 350,000 ids (MeSH descriptors + supplementary
concepts + CTD), each with 1 to 5 names, ids D000000... Two query sets of
mentions of the Chemical label:

- "misspelt": a random letter of a name changed and an "s" added, so that
  every query goes to the n-gram similarity stage (the slowest path);
- "mixed": one mention in two an exact name, one in four a case/plural
  variant (normalised match), one in four misspelt, closer to real text.

mentions/s (wall clock, and per CPU second of the process, which is what
a shared machine can fairly measure) is `NameKB.link_many` at threshold 0.7 (the linker's default),
batched as the linker batches, without its per-text cache. Memory is the
resident set size added by loading the KB (and the peak), measured in a
fresh subprocess so the build does not count. Results are checked to be
identical on a second pass and in a second process (deterministic).
"""

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
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
    """Peak resident set size of this process image (VmHWM: unlike
    ru_maxrss it is not inherited from the parent across fork and exec)."""
    with open("/proc/self/status") as fp:
        for line in fp:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_names(n: int, seed: int = 0):
    """n distinct synthetic names, sorted."""
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
    start, cpu = time.perf_counter(), time.process_time()
    kb = NameKB.load(path)
    kb.build()
    load_s, load_cpu = time.perf_counter() - start, time.process_time() - cpu
    after = rss_mb()
    load_peak = peak_mb()
    query_sets = json.loads(Path(queries_path).read_text())
    out = {
        "load_seconds": round(load_s, 2),
        "load_cpu_seconds": round(load_cpu, 2),
        "rss_before_load_mb": round(before, 1),
        "rss_after_load_mb": round(after, 1),
        "added_by_load_mb": round(after - before, 1),
        "peak_rss_after_load_mb": round(load_peak, 1),
    }
    for name, queries in query_sets.items():
        start, cpu = time.perf_counter(), time.process_time()
        hits = kb.link_many(queries, "Chemical", threshold=0.7)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        again = kb.link_many(queries, "Chemical", threshold=0.7)
        out[name] = {
            "mentions": len(queries),
            "seconds": round(seconds, 2),
            "mentions_per_second": round(len(queries) / seconds, 1),
            "cpu_seconds": round(cpu, 2),
            "mentions_per_cpu_second": round(len(queries) / cpu, 1),
            "linked": sum(h is not None for h in hits),
            "methods": dict(Counter(h.method for h in hits if h is not None)),
            "deterministic_rerun": hits == again,
            "ids": [h.kb_id if h is not None else "" for h in hits],
        }
    out["peak_rss_after_queries_mb"] = round(peak_mb(), 1)
    print(json.dumps(out))


def misspell(rng: random.Random, name: str) -> str:
    pos = rng.randrange(len(name))
    return name[:pos] + rng.choice("aeiou") + name[pos + 1 :] + "s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--names", type=int, default=1_000_000)
    parser.add_argument("--ids", type=int, default=None, help="default: 35%% of --names")
    parser.add_argument("--queries", type=int, default=4_000)
    parser.add_argument("--output", type=Path, default=Path("metrics/kb_scale.json"))
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        load_child(*args.child)
        return
    from spacy_biobert.linking import NameKB

    names = make_names(args.names)
    n_ids = args.ids or int(args.names * 0.35)
    rng = random.Random(1)
    concept = [i % n_ids for i in range(len(names))]
    rng.shuffle(concept)
    start = time.perf_counter()
    kb = NameKB()
    for i, name in enumerate(names):
        c = concept[i]
        kb.add(name, f"D{c:07d}", "Chemical" if c % 2 else "Disease", source="synthetic")
    add_s = time.perf_counter() - start
    kb.build()
    build_s = time.perf_counter() - start
    chemical = [n for i, n in enumerate(names) if concept[i] % 2]
    misspelt = [misspell(rng, n) for n in rng.sample(chemical, args.queries)]
    mixed = []
    for i, name in enumerate(rng.sample(chemical, args.queries)):
        kind = i % 4
        if kind < 2:
            mixed.append(name)
        elif kind == 2:
            mixed.append(name.upper() + "S")
        else:
            mixed.append(misspell(rng, name))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        kb.to_disk(Path(tmp) / "kb")
        save_s = time.perf_counter() - start
        size = sum(p.stat().st_size for p in (Path(tmp) / "kb").iterdir())
        qpath = Path(tmp) / "queries.json"
        qpath.write_text(json.dumps({"misspelt": misspelt, "mixed": mixed}))
        runs = []
        for _ in range(2):
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(Path(tmp) / "kb"), str(qpath)],
                capture_output=True, text=True, check=True,
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    child = runs[0]
    for name in ("misspelt", "mixed"):
        child[name]["deterministic_across_processes"] = child[name].pop("ids") == runs[1][name].pop("ids")
    result = {
        "names": len(kb),
        "ids": len(kb.ids),
        "labels": list(kb.labels),
        "add_seconds": round(add_s, 1),
        "build_seconds": round(build_s, 1),
        "build_peak_rss_mb": round(peak_mb(), 1),
        "save_seconds": round(save_s, 2),
        "file_mb": round(size / 2**20, 1),
        **child,
        "second_process_load_seconds": runs[1]["load_seconds"],
        "machine": "2-core CPU shared with a training job; run under nice -n 19",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
