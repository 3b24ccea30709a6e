"""Peak RSS of `annotate` with its defaults on the largest document they admit
(issue 18: the README's memory bound). Writes JSON.

    python bench/annotate_memory.py minilm-offline        # -> metrics/bench_annotate_memory.json
    python bench/annotate_memory.py path/to/tiny-bert --chars 100000

The pipeline is `spacy.blank("en")` + `biobert` (BASE: a folder, an alias or a
hub id) + an untrained listener `ner` (Chemical, Disease), on CPU: what memory
depends on (the transformer output of the document, the tokens, the parser)
is there; trained weights would not change it. The document: `--chars`
(default: annotate's --max-chars default) characters of biomedical-looking
words, numbers and symbols, one JSONL record. Peak RSS (ru_maxrss) is read
after loading the pipeline and after `annotate` with its defaults.
"""

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

WORDS = "cocaine induced seizures in rats lithium 5-HT6 receptor (IC50 = 3.2 nM) kinase".split()
LISTENER = {
    "@architectures": "spacy-transformers.TransformerListener.v1",
    "grad_factor": 1.0,
    "upstream": "biobert",
    "pooling": {"@layers": "reduce_mean.v1"},
}


def document(chars: int) -> str:
    return " ".join(WORDS[(i * 7) % len(WORDS)] for i in range(chars))[:chars]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    import spacy

    from spacy_biobert.annotate import annotate
    from spacy_biobert.annotate.inputs import DEFAULT_MAX_CHARS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="base model for biobert: a folder, an alias or a hub id")
    parser.add_argument("--chars", type=int, default=DEFAULT_MAX_CHARS)
    parser.add_argument("--output", type=Path, default=Path("metrics/bench_annotate_memory.json"))
    args = parser.parse_args()
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": args.base}})
    ner = nlp.add_pipe("ner", config={"model": {"tok2vec": LISTENER}})
    for label in ("Chemical", "Disease"):
        ner.add_label(label)
    nlp.initialize()
    loaded = peak_mb()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "largest.jsonl"
        src.write_text(json.dumps({"id": "largest", "text": document(args.chars)}) + "\n", encoding="utf8")
        start = time.perf_counter()
        stats = annotate(nlp, src, Path(tmp) / "out.jsonl")  # annotate's defaults
        seconds = time.perf_counter() - start
    result = {
        "base": args.base,
        "chars": args.chars,
        "default_max_chars": DEFAULT_MAX_CHARS,
        "documents": stats.documents,
        "rejected": stats.rejected,
        "loaded_mb": round(loaded),
        "peak_mb": round(peak_mb()),
        "seconds": round(seconds, 1),
        "torch_threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or None,
        "machine": platform.machine(),
        "python": sys.version.split()[0],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
