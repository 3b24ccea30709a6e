"""What a pair-aware relation model adds to the `biobert` pass at prediction,
on a corpus's gold entities. Writes JSON.

    .venv/bin/python bench/relation_speed.py configs/cid_levitated.cfg \
        --paths.corpora ../shared/corpora --limit 200

The config's pipeline (`biobert` and a `biobert_relations` whose model runs
the shared encoder itself: MarkedRelationModel.v1, EntityMarkedRelationModel.v1,
LevitatedMarkerRelationModel.v1) is built on its base model with
`output_hidden_states` on (the `biobert` pass keeps every layer's states,
which the levitated model reuses) and initialized on the dev corpus (its
weights are the base model's and random: speed only). On the first `--limit`
dev documents, with their gold entities and the component's own candidates,
in batches of `--batch-size`, under `torch.inference_mode`:

- biobert: the `biobert` component's pass (words/s: non-space tokens);
- relations_reusing: the relation model's prediction on the docs that pass
  left (the levitated model reuses its per-layer states for the pairs whose
  mentions share one of its windows, `pairs_from_biobert_states`; the
  others encode their own sequences anyway);
- relations_separate: the same on the docs without the `biobert` pass's
  states (every model encodes its own sequences).

The variants are interleaved `--repeats` times after one warm-up batch; the
median seconds of each are reported, and for each relation variant its
seconds per `biobert` second and the share of the two passes that is
`biobert`'s (what the relations leave of a pipeline's speed, NER and the
rest not counted).
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> dict:
    import torch
    from spacy.cli._util import parse_config_overrides
    from spacy.util import load_config, load_model_from_config, registry

    import spacy_biobert  # noqa: F401

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--limit", type=int, default=200, help="first N dev documents (default 200)")
    parser.add_argument("--batch-size", type=int, default=32, help="documents per batch (default 32)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timed runs (default 3)")
    parser.add_argument("--output", type=Path, default=Path("metrics/bench_relation_speed.json"))
    args, extra = parser.parse_known_args(argv)
    overrides = parse_config_overrides(extra)
    overrides["components.biobert.model.transformer_config"] = {"output_hidden_states": True}
    config = load_config(args.config, overrides=overrides, interpolate=True)
    nlp = load_model_from_config(config, auto_fill=True, validate=False)
    dev = registry.resolve({"dev": config["corpora"]["dev"]})["dev"]
    examples = []
    for eg in dev(nlp):
        examples.append(eg)
        if len(examples) >= args.limit:
            break
    nlp.initialize(lambda: examples)
    biobert, rel = nlp.get_pipe("biobert"), nlp.get_pipe("biobert_relations")
    bare = [eg.reference.copy() for eg in examples]
    words = sum(1 for doc in bare for token in doc if not token.is_space)
    size = args.batch_size
    batches = [list(range(i, min(i + size, len(bare)))) for i in range(0, len(bare), size)]
    candidates = [rel.candidates(doc) for doc in bare]

    def run_biobert():
        return list(biobert.pipe([doc.copy() for doc in bare], batch_size=args.batch_size))

    encoded = run_biobert()

    def run_relations(docs):
        for batch in batches:
            rel.model.predict(([docs[i] for i in batch], [candidates[i] for i in batch]))

    variants = {
        "biobert": run_biobert,
        "relations_reusing": lambda: run_relations(encoded),
        "relations_separate": lambda: run_relations(bare),
    }
    seconds = {name: [] for name in variants}
    with torch.inference_mode():
        # warm-up: one batch of each
        list(biobert.pipe([doc.copy() for doc in bare[: args.batch_size]]))
        for docs in (encoded, bare):
            rel.model.predict(([docs[i] for i in batches[0]], [candidates[i] for i in batches[0]]))
        for _ in range(args.repeats):
            for name, fn in variants.items():
                start = time.perf_counter()
                fn()
                seconds[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    report = {
        "config": str(args.config),
        "documents": len(bare),
        "words": words,
        "candidate_pairs": sum(len(c) for c in candidates),
        "threads": torch.get_num_threads(),
        "seconds": {name: round(value, 6) for name, value in median.items()},
        "seconds_all": {name: [round(v, 6) for v in values] for name, values in seconds.items()},
        "biobert_words_per_second": round(words / median["biobert"], 1),
    }
    report["pairs_from_biobert_states"] = reused_pairs(rel, encoded, candidates, batches)
    for name in ("relations_reusing", "relations_separate"):
        report[name] = {
            "per_biobert_second": round(median[name] / median["biobert"], 3),
            "biobert_share": round(median["biobert"] / (median["biobert"] + median[name]), 3),
        }
    print(json.dumps(report, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    return report


def reused_pairs(rel, docs, candidates, batches) -> int:
    """How many pairs the relation model predicts from the `biobert` pass's
    states (only the levitated model can; the others: 0)."""
    from spacy_biobert.models.levitated_marker_model import (
        LevitatedMarkerRelationModel,
        pair_vectors_from_upstream,
    )

    if not isinstance(rel.model, LevitatedMarkerRelationModel):
        return 0
    encoder = rel.model.get_ref("encoder")
    reused = 0
    for batch in batches:
        some = [candidates[i] for i in batch]
        upstream = pair_vectors_from_upstream(encoder, [docs[i] for i in batch], some, encoder.tokenizer)
        if upstream is not None:
            reused += sum(len(pairs) for pairs in some) - len(upstream[1])
    return reused


if __name__ == "__main__":
    main()
