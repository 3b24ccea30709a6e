"""Words/s of a trained pipeline against the bare Hugging Face encoder, against
the same pipeline with one transformer copy per listening component (the
previous two-transformer assembly), and of its int8-quantized copy; strict F1
of fp32 and int8. Writes JSON.

    python bench/throughput.py training/bc5cdr/model-best \
        ../shared/corpora/bc5cdr/CDR_DevelopmentSet.PubTator.txt

What is timed, on the same documents (the corpus's first `--limit`, sorted by
length as `spacy-biobert annotate` sorts a window), in batches of
`--batch-size` documents:

- pipeline: `nlp.pipe` (the whole pipeline: tokenizer, biobert, ner,
  abbreviations, linker, relations) under `torch.inference_mode`, the fp32
  pipeline as saved;
- pipeline_per_component_transformers: the same pipeline with every listener
  given its own copy of the transformer (`nlp.replace_listeners`), as the
  earlier packaged pipeline was assembled from separately trained runs: each
  document is encoded once per listening component (skipped with
  `--no-copies`, or when only one component listens);
- encoder: the same weights (the pipeline's own `transformers` model object,
  in eval mode) called directly, no spaCy: the Hugging Face fast tokenizer on
  the same window texts the pipeline's span getter cuts (window/stride in
  spaCy tokens, computed once before timing), padded to the longest, grouped
  into the same sub-batches the `biobert` component forms (`max_batch_items`),
  then the forward pass under `torch.inference_mode`;
- pipeline_int8: a second copy of the pipeline with its transformer
  quantized by `spacy_biobert.annotate.quantize_pipeline(nlp, "int8")`.

The three are interleaved `--repeats` times (after one warm-up batch each);
the median words/s of each is reported. Words: non-space spaCy tokens. F1:
strict entity-level micro F1 at the corpus offsets
(`spacy_biobert.evaluation.ner.score_mentions`), from the documents of the
first timed pipeline and pipeline_int8 runs.
"""

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="trained pipeline folder or package (biobert + ner)")
    p.add_argument("corpus", help="gold corpus (e.g. BC5CDR dev PubTator)")
    p.add_argument("--limit", type=int, default=500, help="first N documents (default 500)")
    p.add_argument("--batch-size", type=int, default=64, help="documents per batch (default 64)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved timed runs (default 3)")
    p.add_argument("--output", default="metrics/bench_throughput.json", help="JSON to write")
    p.add_argument(
        "--no-copies", action="store_true",
        help="skip the variant with one transformer copy per listening component",
    )
    p.add_argument(
        "--keep-fp32", nargs="*", default=None, help="module patterns kept in fp32 (default: the package's)"
    )
    return p.parse_args(argv)


def load_gold(path: str, limit: int) -> List[Tuple[str, str, List[Tuple[int, int, str]]]]:
    from spacy_biobert.corpora._base import apply_limit
    from spacy_biobert.corpora.formats import iter_records

    records = apply_limit(iter_records(path, dedupe=True), limit)
    return [
        (r.doc_id or str(i), r.text, [(m.start, m.end, m.type) for m in r.mentions])
        for i, r in enumerate(records)
    ]


def encoder_batches(nlp: Any, texts: List[str], batch_size: int) -> Tuple[Any, Any, List[List[str]]]:
    """The HF model and tokenizer of the `biobert` component, and the window
    texts of each sub-batch the component would run (computed once)."""
    from spacy_transformers.util import batch_by_length

    trf = next(
        pipe
        for _, pipe in nlp.components
        if hasattr(getattr(pipe, "model", None), "attrs") and "get_spans" in pipe.model.attrs
    )
    model = trf.model
    get_spans = model.attrs["get_spans"]
    max_items = trf.cfg["max_batch_items"]
    groups: List[List[str]] = []
    for i in range(0, len(texts), batch_size):
        docs = [nlp.make_doc(t) for t in texts[i : i + batch_size]]
        for idx in batch_by_length(docs, max_items):
            sub = [docs[j] for j in idx]
            groups.append([span.text for spans in get_spans(sub) for span in spans])
    return model.transformer, model.tokenizer, groups


def per_component_transformers(model: str) -> Any:
    """The pipeline at `model` with one transformer copy per listening
    component (None when fewer than two components listen)."""
    import spacy

    nlp = spacy.load(model)
    for name, pipe in list(nlp.pipeline):
        listening = list(getattr(pipe, "listening_components", []) or [])
        if len(listening) < 2:
            continue
        for component in listening:
            nlp.replace_listeners(name, component, ["model.tok2vec"])
        nlp.remove_pipe(name)
        return nlp
    return None


def run_encoder(hf: Any, tokenizer: Any, groups: List[List[str]]) -> None:
    import torch

    hf.eval()
    with torch.inference_mode():
        for spans in groups:
            # Over-long windows are cut at the model's limit, as the pipeline does.
            enc = tokenizer(spans, padding="longest", truncation=True, return_tensors="pt")
            hf(**enc)


def run_pipeline(nlp: Any, texts: List[str], keys: List[str], batch_size: int) -> List[Tuple]:
    import torch

    predicted = []
    with torch.inference_mode():
        for key, doc in zip(keys, nlp.pipe(texts, batch_size=batch_size)):
            predicted.extend((key, e.start_char, e.end_char, e.label_) for e in doc.ents)
    return predicted


def main(argv=None) -> Dict[str, Any]:
    import spacy
    import torch

    from spacy_biobert.annotate.quantize import DEFAULT_KEEP_FP32, quantize_pipeline
    from spacy_biobert.evaluation.ner import score_mentions

    args = parse_args(argv)
    gold_docs = sorted(load_gold(args.corpus, args.limit), key=lambda g: len(g[1]))
    keys = [g[0] for g in gold_docs]
    texts = [g[1] for g in gold_docs]
    gold = [(k, s, e, label) for k, _, ms in gold_docs for s, e, label in ms]
    nlp = spacy.load(args.model)
    nlp_q = spacy.load(args.model)
    keep = DEFAULT_KEEP_FP32 if args.keep_fp32 is None else tuple(args.keep_fp32)
    quantized = quantize_pipeline(nlp_q, "int8", keep)
    words = sum(1 for t in texts for tok in nlp.make_doc(t) if not tok.is_space)
    hf, tokenizer, groups = encoder_batches(nlp, texts, args.batch_size)
    nlp_copies = None if args.no_copies else per_component_transformers(args.model)

    predictions: Dict[str, List] = {}

    def timed(name: str, fn) -> float:
        start = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - start
        if out is not None and name not in predictions:
            predictions[name] = out
        return seconds

    variants = {
        "pipeline": lambda: run_pipeline(nlp, texts, keys, args.batch_size),
        "encoder": lambda: run_encoder(hf, tokenizer, groups),
        "pipeline_int8": lambda: run_pipeline(nlp_q, texts, keys, args.batch_size),
    }
    if nlp_copies is not None:
        variants["pipeline_per_component_transformers"] = lambda: run_pipeline(
            nlp_copies, texts, keys, args.batch_size
        )
        run_pipeline(nlp_copies, texts[: args.batch_size], keys, args.batch_size)
    # Warm-up: one batch each.
    run_pipeline(nlp, texts[: args.batch_size], keys, args.batch_size)
    run_encoder(hf, tokenizer, groups[:1])
    run_pipeline(nlp_q, texts[: args.batch_size], keys, args.batch_size)
    seconds: Dict[str, List[float]] = {name: [] for name in variants}
    for r in range(args.repeats):
        for name, fn in variants.items():
            seconds[name].append(timed(name, fn))
            wps_now = words / seconds[name][-1]
            print(f"repeat {r + 1}/{args.repeats} {name}: {wps_now:.1f} words/s", flush=True)
    wps = {name: words / statistics.median(s) for name, s in seconds.items()}
    f_fp32 = score_mentions(gold, predictions["pipeline"]).micro.as_dict()
    f_int8 = score_mentions(gold, predictions["pipeline_int8"]).micro.as_dict()
    result = {
        "model": str(args.model),
        "pipeline": nlp.pipe_names,
        "corpus": str(args.corpus),
        "documents": len(texts),
        "words": words,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "seconds": {k: [round(x, 3) for x in v] for k, v in seconds.items()},
        "words_per_second": {k: round(v, 1) for k, v in wps.items()},
        "ratios": {
            "pipeline_vs_encoder": round(wps["pipeline"] / wps["encoder"], 3),
            "int8_vs_fp32": round(wps["pipeline_int8"] / wps["pipeline"], 3),
        },
        "f1": {"fp32": f_fp32, "int8": f_int8, "int8_minus_fp32": round(f_int8["f"] - f_fp32["f"], 2)},
        "int8": {"keep_fp32": list(keep), "quantized_layers": len(quantized)},
        "encoder_windows": sum(len(g) for g in groups),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }
    if nlp_copies is not None:
        result["ratios"]["pipeline_vs_per_component_transformers"] = round(
            wps["pipeline"] / wps["pipeline_per_component_transformers"], 3
        )
        result["per_component_transformers_pipeline"] = nlp_copies.pipe_names
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    r = result["ratios"]
    print(f"pipeline/encoder = {r['pipeline_vs_encoder']:.3f} (target >= 0.8)")
    if "pipeline_vs_per_component_transformers" in r:
        print(
            f"pipeline/one transformer per component = "
            f"{r['pipeline_vs_per_component_transformers']:.3f} (target >= 1.7)"
        )
    print(f"int8/fp32        = {r['int8_vs_fp32']:.3f} (target >= 1.5)")
    print(
        f"strict F1 fp32 {f_fp32['f']:.2f}, int8 {f_int8['f']:.2f} "
        f"({result['f1']['int8_minus_fp32']:+.2f}; target >= -0.5)"
    )
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
