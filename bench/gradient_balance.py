"""How hard each task pulls on a joint pipeline's one transformer: the norm
of the gradient that the NER listeners, and separately `biobert_relations`
(its marked pass through `spacy-biobert.SharedTransformer.v1`, times its
`grad_factor`, or its listener), put on the `biobert` weights for the same training batch, per
corpus of the train stream (documents with relation candidates, and the
rest). Two `nlp.update`s a batch (every task, then the relations alone; NER's
gradient is the difference), without a step: the pipeline is left as it was
loaded. Writes JSON.

    .venv/bin/python bench/gradient_balance.py training/biomed-joint/model-last \
        configs/biomed_joint.cfg --paths.corpora ../shared/corpora

Extra options override the config (its train corpus is what is read; the
pipeline is MODEL, so `--paths.model` need not be given). `--docs` documents
a batch, `--limit` documents read per corpus (where the config has
`paths.train_limit`).
"""

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    import spacy
    from spacy.cli._util import parse_config_overrides
    from spacy.util import fix_random_seed, load_config, registry

    import spacy_biobert  # noqa: F401
    from spacy_biobert.extensions import CORPUS_KEY, install_extensions

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("config", type=Path)
    parser.add_argument("--docs", type=int, default=6, help="documents a batch")
    parser.add_argument("--limit", type=int, default=12, help="documents read per corpus")
    parser.add_argument("--dropout", type=float, default=0.0,
                        help="dropout of the updates (0: the two passes are exact)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None, help="JSON to write")
    args, extra = parser.parse_known_args()
    install_extensions()
    overrides = parse_config_overrides(extra)
    paths = load_config(args.config, interpolate=False).get("paths", {})
    if "model" in paths:  # a config that sources its components: from MODEL
        overrides.setdefault("paths.model", str(args.model))
    if "train_limit" in paths:
        overrides["paths.train_limit"] = args.limit
    config = load_config(args.config, overrides=overrides, interpolate=True)
    nlp = spacy.load(args.model)
    relations = [name for name in nlp.pipe_names if name.startswith("biobert_relations")]
    # the other listeners of biobert (a RelationModel.v2 component is one too)
    listeners = [n for n in nlp.get_pipe("biobert").listening_components if n not in relations]
    if not relations or not listeners:
        sys.exit(f"{args.model} needs a biobert_relations component and another listener of biobert")
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

    def gradients(batch, exclude):
        """The transformer's gradient after one update of the components not
        in `exclude` (no step; dropout as --dropout, seeded)."""
        for p in weights.parameters():
            p.grad = None
        fix_random_seed(args.seed)
        losses = {}
        nlp.update(batch, drop=args.dropout, sgd=False, exclude=exclude, losses=losses)
        grads = {n: p.grad.clone() for n, p in weights.named_parameters() if p.grad is not None}
        return grads, {k: round(float(v), 4) for k, v in losses.items()}

    def norms(grads):
        layers = {}
        for name, g in grads.items():
            key = "embeddings" if "embeddings" in name else (
                "layer." + name.split("layer.")[1].split(".")[0] if "layer." in name else "other")
            layers[key] = layers.get(key, 0.0) + float(g.norm()) ** 2
        total = math.sqrt(sum(layers.values()))
        return {"norm": round(total, 4), "per_layer": {k: round(math.sqrt(v), 4) for k, v in layers.items()}}

    encoder = rel.model.get_ref("encoder") if rel.model.has_ref("encoder") else None
    report = {"model": str(args.model), "config": str(args.config), "docs": args.docs,
              "dropout": args.dropout,
              "grad_factor": encoder.attrs.get("grad_factor") if encoder is not None else None,
              "batches": {}}
    for what, batch in batches.items():
        corpora = sorted({eg.reference.user_data.get(CORPUS_KEY, "train") for eg in batch})
        row = {"corpora": corpora, "documents": len(batch)}
        if batch:
            # Every task together, then the relations alone; NER's is the
            # difference (gradients add up). Leaving the relations out instead
            # would not do: spacy-transformers back-propagates when its last
            # listener does, which a listening relation model is.
            both, losses = gradients(batch, exclude=[])
            alone, rel_losses = gradients(batch, exclude=listeners)
            ner = {n: g - alone[n] if n in alone else g for n, g in both.items()}
            row["ner"] = dict(norms(ner), losses={k: v for k, v in losses.items() if k not in relations})
            row["relations"] = dict(norms(alone), losses=rel_losses)
            if row["relations"]["norm"]:
                row["ner_over_relations"] = round(row["ner"]["norm"] / row["relations"]["norm"], 2)
            print(f"{what}: {corpora} NER {row['ner']['norm']:.2f}, "
                  f"relations {row['relations']['norm']:.2f}")
        report["batches"][what] = row
    text = json.dumps(report, indent=2)
    if args.output:
        args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
