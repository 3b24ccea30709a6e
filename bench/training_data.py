"""What a training config feeds its run, counted without training: documents
per corpus of the train corpus (`repeat` copies included), documents per
step under the config's batcher, passes over each corpus in `max_steps`, and,
for a `biobert_relations` component, its candidate pairs per document (its
own `candidates` generator on the gold entities). For a per-pair relation
model (`spacy-biobert.MarkedRelationModel.v1`, one encoder pass per
candidate pair), also the wordpieces its marked pairs give the encoder per
document against the document text's own (`relation_encoder_cost`): what
the relation passes add to each pass of the transformer over the text, in
training and in the packaged pipeline alike; for the levitated-marker model
(`spacy-biobert.LevitatedMarkerRelationModel.v1`), the wordpieces of its
sequences (each a window's text and four markers per pair). Writes JSON.

    .venv/bin/python bench/training_data.py configs/cid_pair_marked.cfg \
        --paths.corpora ../shared/corpora
    .venv/bin/python bench/training_data.py configs/cid_pair_marked.cfg \
        --paths.corpora ../shared/corpora \
        --components.biobert_relations.candidates.closest_per_concept_pair null

Extra options override the config, as with `spacy train`. The batches are
counted on one shuffled pass (`--seed`), as spaCy's training loop shuffles
each pass before batching.
"""

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    from spacy.cli._util import parse_config_overrides
    from spacy.util import load_config, load_model_from_config, registry

    import spacy_biobert  # noqa: F401
    from spacy_biobert.extensions import CORPUS_KEY
    from spacy_biobert.training import follow_max_steps

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None, help="JSON to write")
    args, extra = parser.parse_known_args()
    overrides = follow_max_steps(args.config, parse_config_overrides(extra))
    config = load_config(args.config, overrides=overrides, interpolate=True)
    nlp = load_model_from_config(config, auto_fill=True, validate=False)
    training = registry.resolve(config["training"], validate=False)
    corpus = registry.resolve({"train": config["corpora"]["train"]})["train"]
    examples = list(corpus(nlp))
    random.Random(args.seed).shuffle(examples)
    corpus_of = [eg.reference.user_data.get(CORPUS_KEY, "train") for eg in examples]
    docs = Counter(corpus_of)
    steps_per_pass = sum(1 for _ in training["batcher"](examples))
    docs_per_step = len(examples) / steps_per_pass
    max_steps = int(config["training"]["max_steps"])
    repeat = getattr(corpus, "repeat", {})
    report = {
        "config": str(args.config),
        "documents": dict(docs),
        "steps_per_pass": steps_per_pass,
        "documents_per_step": round(docs_per_step, 2),
        "max_steps": max_steps,
        # a pass of the train stream holds each document of a corpus `repeat` times
        "passes_in_max_steps": {
            name: round(max_steps / steps_per_pass * repeat.get(name, 1), 2) for name in docs
        },
    }
    relations = [pipe for name, pipe in nlp.pipeline
                 if nlp.get_pipe_meta(name).factory == "biobert_relations"]
    if relations:
        pairs = Counter()
        for eg, name in zip(examples, corpus_of):
            pairs[name] += len(relations[0].candidates(eg.reference))
        report["candidates_per_document"] = {
            name: round(pairs[name] / docs[name], 2) for name in docs
        }
        cost = {
            "MarkedRelationModel": relation_encoder_cost,
            "LevitatedMarkerRelationModel": levitated_encoder_cost,
        }.get(type(relations[0].model).__name__)
        if cost is not None:
            report["relation_encoder_cost"] = cost(
                [eg.reference for eg in examples], corpus_of, relations[0].candidates,
                # nlp.config, not the file's: a sourced `biobert` (biomed_joint.cfg)
                # has its model settings in the pipeline it comes from
                relations[0].model.attrs, nlp.config["components"]["biobert"]["model"],
            )
    print(json.dumps(report, indent=2))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def base_tokenizer(encoder: dict, max_length):
    """The fast tokenizer of the config's `biobert` model, and a relation
    model's `max_length` as the model takes it: at most what the tokenizer
    and the encoder's positions take (None: that limit)."""
    from transformers import AutoConfig, AutoTokenizer

    from spacy_biobert.models.base_models import resolve_model_name

    path, cased = resolve_model_name(encoder["name"])
    tokenizer_config = dict(encoder.get("tokenizer_config") or {}, use_fast=True)
    if cased:
        tokenizer_config.setdefault("do_lower_case", False)
    tokenizer = AutoTokenizer.from_pretrained(path, **tokenizer_config)
    cap = min(tokenizer.model_max_length, AutoConfig.from_pretrained(path).max_position_embeddings)
    return tokenizer, cap if max_length is None else min(max_length, cap)


def text_wordpieces(tokenizer, doc) -> int:
    """The whole text as one sequence (special tokens included): the model's
    length limit does not apply to a count."""
    return len(tokenizer(doc.text, verbose=False)["input_ids"])


def relation_encoder_cost(docs, corpus_of, candidates, settings, encoder) -> dict:
    """Per corpus: wordpieces per document of the text (one sequence, special
    tokens included) and of the per-pair model's marked candidates (as the
    model, with `settings`, its attrs, cuts and marks them), and their ratio."""
    from spacy_biobert.models.marked_relation_model import mark_batch

    tokenizer, max_length = base_tokenizer(encoder, settings["max_length"])
    text, marked, n_docs = Counter(), Counter(), Counter(corpus_of)
    for doc, name in zip(docs, corpus_of):
        text[name] += text_wordpieces(tokenizer, doc)
        batch = mark_batch([doc], [candidates(doc)], tokenizer, marking=settings["marking"],
                           type_words=settings["type_words"], window=settings["window"],
                           max_length=max_length)
        marked[name] += sum(len(ids) for ids in batch.input_ids if ids is not None)
    return {
        name: {
            "text_wordpieces_per_document": round(text[name] / n_docs[name], 1),
            "marked_pair_wordpieces_per_document": round(marked[name] / n_docs[name], 1),
            "marked_per_text_wordpiece": round(marked[name] / max(1, text[name]), 3),
        }
        for name in n_docs
    }


def levitated_encoder_cost(docs, corpus_of, candidates, settings, encoder) -> dict:
    """Per corpus: wordpieces per document of the text and of the levitated
    model's sequences (as the model, with `settings`, its attrs, windows and
    packs them: each sequence a window's text, then four markers per pair),
    the sequences per document, and the ratio of the two counts: what its
    relation pass gives the encoder beside one pass over the text."""
    from spacy_biobert.models.levitated_marker_model import levitate

    tokenizer, max_length = base_tokenizer(encoder, settings["max_length"])
    text, encoded, sequences, n_docs = Counter(), Counter(), Counter(), Counter(corpus_of)
    for doc, name in zip(docs, corpus_of):
        text[name] += text_wordpieces(tokenizer, doc)
        batch = levitate([doc], [candidates(doc)], tokenizer, max_length=max_length,
                         stride=settings["stride"],
                         max_pairs_per_sequence=settings["max_pairs_per_sequence"])
        encoded[name] += sum(len(seq.input_ids) for seq in batch.sequences)
        sequences[name] += len(batch.sequences)
    return {
        name: {
            "text_wordpieces_per_document": round(text[name] / n_docs[name], 1),
            "sequence_wordpieces_per_document": round(encoded[name] / n_docs[name], 1),
            "sequences_per_document": round(sequences[name] / n_docs[name], 2),
            "sequence_per_text_wordpiece": round(encoded[name] / max(1, text[name]), 3),
        }
        for name in n_docs
    }


if __name__ == "__main__":
    sys.exit(main())
