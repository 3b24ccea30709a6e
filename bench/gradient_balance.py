"""How hard each task pulls on a joint pipeline's one transformer: the norm
of the gradient that the NER listeners, and separately `biobert_relations`
(its marked pass through `spacy-biobert.SharedTransformer.v1`, times its
`grad_factor`), put on the `biobert` weights for the same training batch, per
corpus of the train stream (documents with relation candidates, and the
rest). One `nlp.update` per task and batch, without a step: the pipeline is
left as it was loaded. Writes JSON.

    .venv/bin/python bench/gradient_balance.py training/biomed-joint/model-last \
        configs/biomed_joint.cfg --paths.corpora ../shared/corpora

Extra options override the config (its train corpus is what is read; the
pipeline is MODEL, so `--paths.model` need not be given). `--docs` documents
a batch, `--limit` documents read per corpus.
"""

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    import spacy
    import torch
    from spacy.cli._util import parse_config_overrides
    from spacy.util import load_config, registry

    import spacy_biobert  # noqa: F401
    from spacy_biobert.extensions import CORPUS_KEY, install_extensions

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("config", type=Path)
    parser.add_argument("--docs", type=int, default=6, help="documents a batch")
    parser.add_argument("--limit", type=int, default=12, help="documents read per corpus")
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None, help="JSON to write")
    args, extra = parser.parse_known_args()
    install_extensions()
    overrides = parse_config_overrides(extra)
    overrides.setdefault("paths.model", str(args.model))
    overrides["paths.train_limit"] = args.limit
    config = load_config(args.config, overrides=overrides, interpolate=True)
    nlp = spacy.load(args.model)
    relations = [name for name in nlp.pipe_names if name.startswith("biobert_relations")]
    listeners = list(nlp.get_pipe("biobert").listening_components)
    if not relations or not listeners:
        sys.exit(f"{args.model} needs a biobert_relations component and a listener of biobert")
    corpus = registry.resolve({"train": config["corpora"]["train"]})["train"]
    examples = list(corpus(nlp))
    rel = nlp.get_pipe(relations[0])

    def has_pairs(eg) -> bool:
        return bool(eg.reference._.gold_relations) and bool(rel.candidates(eg.reference))

    batches = {
        "with relation candidates": [eg for eg in examples if has_pairs(eg)][: args.docs],
        "without": [eg for eg in examples if not has_pairs(eg)][: args.docs],
    }
    weights = nlp.get_pipe("biobert").model.transformer

    def gradient_norms():
        layers = {}
        for name, p in weights.named_parameters():
            if p.grad is not None:
                key = "embeddings" if "embeddings" in name else (
                    "layer." + name.split("layer.")[1].split(".")[0] if "layer." in name else "other")
                layers[key] = layers.get(key, 0.0) + float(p.grad.norm()) ** 2
        total = math.sqrt(sum(layers.values()))
        return round(total, 4), {k: round(math.sqrt(v), 4) for k, v in layers.items()}

    tasks = {"ner": relations, "relations": listeners}  # what each task's update leaves out
    report = {"model": str(args.model), "config": str(args.config), "docs": args.docs,
              "grad_factor": rel.model.get_ref("encoder").attrs.get("grad_factor")
              if rel.model.has_ref("encoder") else None, "batches": {}}
    for what, batch in batches.items():
        corpora = sorted({eg.reference.user_data.get(CORPUS_KEY, "train") for eg in batch})
        row = {"corpora": corpora, "documents": len(batch)}
        for task, exclude in tasks.items():
            for p in weights.parameters():
                p.grad = None
            torch.manual_seed(args.seed)
            losses = {}
            nlp.update(batch, drop=args.dropout, sgd=False, exclude=exclude, losses=losses)
            total, layers = gradient_norms()
            row[task] = {"norm": total, "per_layer": layers,
                         "losses": {k: round(float(v), 4) for k, v in losses.items()}}
        if row["relations"]["norm"]:
            row["ner_over_relations"] = round(row["ner"]["norm"] / row["relations"]["norm"], 2)
        report["batches"][what] = row
        print(f"{what}: {corpora} NER {row['ner']['norm']:.2f}, "
              f"relations {row['relations']['norm']:.2f}")
    text = json.dumps(report, indent=2)
    if args.output:
        args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
