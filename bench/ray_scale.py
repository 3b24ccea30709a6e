"""Ray against local `annotate` at equal CPUs, past start-up (issue 19). Writes JSON.

    python bench/ray_scale.py                    # -> metrics/bench_ray_scale.json
    python bench/ray_scale.py training/bc5cdr-release --counts 250 1000 --threads 2 --workers 2

In one run, on the same documents (the first N of the BC5CDR train + dev
abstracts, `CDR_TrainingSet` then `CDR_DevelopmentSet`, as PubTator), each
variant annotates N documents with `spacy_biobert.annotate.annotate` (JSONL
out) in a fresh process, for each N of `--counts`:

- local: the local backend (`nlp.pipe` in the process) with T torch threads
  (`--threads`, default: the machine's CPUs);
- ray 1xT: `--backend ray`, one worker of T CPUs;
- ray NxT/N: `--backend ray`, N workers (`--workers`) of T/N CPUs.

Each Ray run starts its own local Ray instance (what `annotate --backend ray`
does without `RAY_ADDRESS`). Timed: the `annotate()` call (loading the
pipeline, starting Ray and its workers, reading, annotating, writing); the
Python imports before it are not.

Reported per variant: words/s at each N; marginal words/s between the
smallest and largest N (the time for the extra documents, so start-up
cancels out) and per CPU; start-up seconds (the time at the smallest N minus
its words at the marginal rate); per-worker efficiency (marginal words/s
per CPU divided by local's); peak memory (VmHWM) of each worker process (the
local process for local; the largest Ray worker for Ray) and of the driver;
CPU seconds used by the driver, the workers and Ray's own processes (raylet,
GCS, idle workers). Words: non-space tokens of the pipeline's tokenizer.
`--repeats` runs everything that many times, interleaved; medians are
reported. The load average before and after shows whether the machine was
idle.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
CORPUS_FILES = ("CDR_TrainingSet.PubTator.txt", "CDR_DevelopmentSet.PubTator.txt")
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", default=str(ROOT / "training" / "bc5cdr-release"),
                   help="pipeline folder or package (default: training/bc5cdr-release)")
    p.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpora" / "bc5cdr"),
                   help="folder with the BC5CDR PubTator files (default: ../shared/corpora/bc5cdr)")
    p.add_argument("--counts", type=int, nargs=2, default=[250, 1000], metavar=("N1", "N2"),
                   help="document counts timed (default 250 1000)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPUs T (default: all)")
    p.add_argument("--workers", type=int, default=None, help="N Ray workers of T/N CPUs (default: T)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--window", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--quantize", default=None, help="int8: every variant with --quantize int8")
    p.add_argument("--variants", nargs="*", default=None, help="a subset: local ray1 rayN")
    p.add_argument("--output", default=str(ROOT / "metrics" / "bench_ray_scale.json"))
    p.add_argument("--child", nargs=3, metavar=("VARIANT", "INPUT", "OUTPUT"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


# --- process accounting (Linux /proc) --------------------------------------------


def _proc_table() -> Dict[int, Tuple[int, str, float]]:
    """pid -> (parent pid, title, CPU seconds) of every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fp:
                stat = fp.read().decode("utf8", "replace")
            with open(f"/proc/{entry}/cmdline", "rb") as fp:
                title = fp.read().replace(b"\0", b" ").decode("utf8", "replace").strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        table[int(entry)] = (int(fields[1]), title or stat[stat.index("(") + 1 : stat.rindex(")")], cpu)
    return table


def _peak_mb(pid: int) -> Optional[float]:
    try:
        with open(f"/proc/{pid}/status", encoding="utf8") as fp:
            for line in fp:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _kind(title: str) -> str:
    if "Annotator" in title or "MapWorker" in title:
        return "worker"
    if title.startswith("ray::"):
        return "idle_worker"
    return "ray_daemon"


class Sampler(threading.Thread):
    """Every `interval` s: the processes descended from this one, their
    CPU seconds and peak RSS (kept after they exit)."""

    def __init__(self, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.procs: Dict[int, Dict[str, Any]] = {}
        self._halt = threading.Event()

    def sample(self) -> None:
        table = _proc_table()
        me = os.getpid()
        for pid, (ppid, title, cpu) in table.items():
            p, seen = ppid, 0
            while p not in (me, 0, 1) and p in table and seen < 20:
                p, seen = table[p][0], seen + 1
            if p != me or pid == me:
                continue
            new = {"kind": "ray_daemon", "title": title, "cpu_s": 0.0, "peak_mb": 0.0}
            rec = self.procs.setdefault(pid, new)
            kind = _kind(title)
            if kind == "worker" or rec["kind"] != "worker":
                rec["kind"], rec["title"] = kind, title
            rec["cpu_s"] = max(rec["cpu_s"], cpu)
            rec["peak_mb"] = max(rec["peak_mb"], _peak_mb(pid) or 0.0)

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.sample()


# --- one timed run, in its own process ---------------------------------------------


def child(variant: str, src: str, out: str, args: argparse.Namespace) -> Dict[str, Any]:
    import resource

    T = args.threads
    workers = args.workers or T
    options: Dict[str, Any] = dict(batch_size=args.batch_size, window=args.window, quantize=args.quantize)
    if variant == "local":
        import torch

        torch.set_num_threads(T)
    elif variant == "ray1":
        options.update(backend="ray", ray_workers=1, ray_cpus_per_worker=T)
    else:
        options.update(backend="ray", ray_workers=workers, ray_cpus_per_worker=max(1, T // workers))
    from spacy_biobert.annotate import annotate

    # Ray's processes are watched from here; the local variant has none, and a
    # sampling thread in its own process would take time from its work.
    sampler = Sampler()
    if variant != "local":
        sampler.start()
    cpu0 = time.process_time()
    start = time.perf_counter()
    stats = annotate(args.model, src, out, **options)
    seconds = time.perf_counter() - start
    driver_cpu = time.process_time() - cpu0
    if variant != "local":
        sampler.stop()
    procs = list(sampler.procs.values())
    workers_ = [p for p in procs if p["kind"] == "worker"]
    driver_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "variant": variant,
        "seconds": seconds,
        "documents": stats.documents,
        "rejected": stats.rejected,
        "driver_cpu_s": driver_cpu,
        "driver_peak_mb": driver_peak,
        "worker_peak_mb": [round(p["peak_mb"]) for p in workers_] or [round(driver_peak)],
        "cpu_s": {
            kind: round(sum(p["cpu_s"] for p in procs if p["kind"] == kind), 1)
            for kind in ("worker", "idle_worker", "ray_daemon")
        },
    }


# --- the comparison ---------------------------------------------------------------


def write_inputs(corpus: Path, counts: List[int], folder: Path) -> Dict[int, Path]:
    blocks: List[str] = []
    for name in CORPUS_FILES:
        text = (corpus / name).read_text(encoding="utf8")
        blocks += [b.strip("\n") for b in text.split("\n\n") if b.strip()]
    if len(blocks) < max(counts):
        raise SystemExit(f"{corpus} holds {len(blocks)} documents, fewer than {max(counts)}")
    paths = {}
    for n in counts:
        paths[n] = folder / f"bc5cdr-{n}.pubtator"
        paths[n].write_text("\n\n".join(blocks[:n]) + "\n\n", encoding="utf8")
    return paths


def count_words(model: str, src: Path) -> int:
    import spacy

    from spacy_biobert.annotate import iter_input
    from spacy_biobert.models.base_models import load_pipeline

    cfg = Path(model) / "config.cfg"
    exclude = list(spacy.util.load_config(cfg)["nlp"]["pipeline"]) if cfg.exists() else []
    nlp = load_pipeline(model, exclude=exclude)
    texts = [it.text for it in iter_input(src, "pubtator", max_chars=None) if hasattr(it, "text")]
    return sum(sum(not t.is_space for t in doc) for doc in nlp.tokenizer.pipe(texts))


def summarise(runs: List[Dict[str, Any]], words: Dict[int, int], cpus: Dict[str, int]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    counts = sorted(words)
    n1, n2 = counts[0], counts[-1]
    for variant in cpus:
        mine = [r for r in runs if r["variant"] == variant]
        if not mine:
            continue
        secs = {n: statistics.median(r["seconds"] for r in mine if r["n"] == n) for n in counts}
        marginal = (words[n2] - words[n1]) / (secs[n2] - secs[n1])
        big = [r for r in mine if r["n"] == n2]
        out[variant] = {
            "cpus": cpus[variant],
            "seconds": {str(n): round(secs[n], 1) for n in counts},
            "words_per_s": {str(n): round(words[n] / secs[n]) for n in counts},
            "marginal_words_per_s": round(marginal),
            "marginal_words_per_s_per_cpu": round(marginal / cpus[variant], 1),
            "startup_s": round(secs[n1] - words[n1] / marginal, 1),
            "worker_peak_mb": max(max(r["worker_peak_mb"]) for r in big),
            "workers": len(big[0]["worker_peak_mb"]),
            "driver_peak_mb": round(max(r["driver_peak_mb"] for r in big)),
            "cpu_s_at_largest": dict(big[0]["cpu_s"], driver=round(big[0]["driver_cpu_s"], 1)),
        }
    local = out.get("local")
    for res in out.values():
        if local is not None:
            res["efficiency"] = round(
                res["marginal_words_per_s_per_cpu"] / local["marginal_words_per_s_per_cpu"], 3
            )
    return out


def main() -> None:
    args = parse_args()
    if args.child:
        variant, src, out = args.child
        print("RESULT " + json.dumps(child(variant, src, out, args)), flush=True)
        return
    T = args.threads
    N = args.workers or T
    cpus = {"local": T, "ray1": T, "rayN": (T // N) * N}
    names = {"local": f"local nlp.pipe, {T} threads", "ray1": f"ray 1 worker x {T} CPUs",
             "rayN": f"ray {N} workers x {T // N} CPU"}
    variants = args.variants or list(cpus)
    load_before = os.getloadavg()
    runs: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ray-scale-") as tmp:
        inputs = write_inputs(Path(args.corpus), args.counts, Path(tmp))
        words = {n: count_words(args.model, p) for n, p in inputs.items()}
        print(f"model {args.model}{', int8' if args.quantize else ''}; T = {T} CPUs, N = {N} Ray workers; "
              f"documents {' / '.join(map(str, args.counts))} (BC5CDR train+dev), "
              f"words {' / '.join(f'{words[n]:,}' for n in args.counts)}", flush=True)
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "OMP_NUM_THREADS")}
        env["TOKENIZERS_PARALLELISM"] = "false"
        for rep in range(args.repeats):
            for n in args.counts:
                for variant in variants:
                    out = Path(tmp) / f"out-{variant}-{n}-{rep}.jsonl"
                    cmd = [sys.executable, __file__, args.model, "--threads", str(T), "--workers", str(N),
                           "--batch-size", str(args.batch_size), "--window", str(args.window),
                           *(["--quantize", args.quantize] if args.quantize else []),
                           "--child", variant, str(inputs[n]), str(out)]
                    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
                    lines = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
                    if res.returncode != 0 or not lines:
                        sys.stderr.write(res.stdout[-3000:] + res.stderr[-5000:])
                        raise SystemExit(f"{variant} on {n} documents failed")
                    run = json.loads(lines[-1][len("RESULT "):])
                    run["n"] = n
                    runs.append(run)
                    print(f"  {names[variant]:<28} {n:>5} docs  {run['seconds']:7.1f} s  "
                          f"cpu s {run['cpu_s']} driver {run['driver_cpu_s']:.1f}", flush=True)
            same = {Path(tmp, f"out-{v}-{args.counts[-1]}-{rep}.jsonl").read_bytes() for v in variants}
            if len(same) != 1:
                raise SystemExit("the variants' outputs differ")
    load_after = os.getloadavg()
    summary = summarise(runs, words, {v: cpus[v] for v in variants})
    n1, n2 = args.counts
    print(f"\n{'variant':<28} {'s @' + str(n1):>8} {'s @' + str(n2):>8} {'words/s @' + str(n2):>15} "
          f"{'marginal w/s':>12} {'per CPU':>8} {'start-up s':>10} {'efficiency':>10} {'peak MB/worker':>14}")
    for variant, res in summary.items():
        print(f"{names[variant]:<28} {res['seconds'][str(n1)]:>8} {res['seconds'][str(n2)]:>8} "
              f"{res['words_per_s'][str(n2)]:>15,} {res['marginal_words_per_s']:>12,} "
              f"{res['marginal_words_per_s_per_cpu']:>8} {res['startup_s']:>10} "
              f"{res.get('efficiency', ''):>10} {res['worker_peak_mb']:>14,}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"(1 min; {os.cpu_count()} CPUs); outputs byte-identical across variants")
    result = {
        "model": args.model,
        "documents": args.counts,
        "words": {str(n): w for n, w in words.items()},
        "mean_words_per_document": round(words[n2] / n2, 1),
        "threads": T,
        "ray_workers": N,
        "batch_size": args.batch_size,
        "window": args.window,
        "quantize": args.quantize,
        "repeats": args.repeats,
        "variants": {names[v]: res for v, res in summary.items()},
        "runs": runs,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
