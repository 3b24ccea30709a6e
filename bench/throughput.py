"""Words/s of a trained pipeline against the bare Hugging Face encoder, against
the same pipeline with one transformer copy per listening component (the
previous two-transformer assembly), and in fp32, bf16 and int8 side by side;
strict F1 of each precision; and the same three precisions for a pipeline
with a BioBERT-shaped encoder (speed only). Writes JSON.

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
  quantized by `spacy_biobert.annotate.quantize_pipeline(nlp, "int8")`;
- pipeline_bf16: a third copy with its transformer run under CPU bfloat16
  autocast (`spacy_biobert.precision.set_precision(nlp, "bf16",
  force=True)`: forced, so that it is measured even on a CPU without native
  bfloat16, where `auto` would run fp32; the JSON says which CPU it was).
  `--precision` picks which of fp32, bf16 and int8 run (fp32 always does:
  it is the baseline). bf16 and int8 do not combine (torch's dynamic int8
  linear layers take fp32 inputs only), so there is no bf16+int8 variant.

The variants are interleaved `--repeats` times (after one warm-up batch
each); the median words/s of each is reported. Words: non-space spaCy
tokens. F1: strict entity-level micro F1 at the corpus offsets
(`spacy_biobert.evaluation.ner.score_mentions`), from the documents of the
first timed run of each precision.

BioBERT-shaped (`--biobert-docs N`, 0 skips it): the same pipeline rebuilt
around a randomly initialised BERT-base with BioBERT v1.2's configuration
(12 layers x 768, 12 heads, intermediate 3072, vocabulary 28,996; the
vocabulary's entries are the first 28,996 of the pipeline's own wordpiece
vocabulary, so texts split into about as many wordpieces as with it): the
transformer and the components that listen to it are made anew from the
pipeline's config (their labels copied, weights random), the tokenizer and
the other components are the pipeline's own. Timed in fp32, bf16 and int8
like the pipeline, interleaved, on N of the documents spread over the
length-sorted list. Speed only: with random weights its F1 means nothing.
"""

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

PRECISIONS = ("fp32", "bf16", "int8")
# BioBERT v1.2 (dmis-lab/biobert-base-cased-v1.2): BERT-base, cased vocabulary.
BIOBERT_CONFIG = {
    "vocab_size": 28996,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}


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
    p.add_argument(
        "--precision", nargs="+", default=list(PRECISIONS), choices=PRECISIONS,
        help="precisions timed side by side (default: fp32 bf16 int8; fp32 always runs)",
    )
    p.add_argument(
        "--biobert-docs", type=int, default=16,
        help="documents for the BioBERT-shaped pipeline (default 16; 0 skips it)",
    )
    p.add_argument(
        "--biobert-config", type=json.loads, default={},
        help="JSON: BertConfig values replacing BioBERT's for the shaped pipeline (tests make it tiny)",
    )
    return p.parse_args(argv)


def load_gold(path: str, limit: int) -> List[Tuple[str, str, List[Tuple[int, int, str]]]]:
    from spacy_biobert.corpora.formats import iter_records
    from spacy_biobert.corpora.reading import apply_limit

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


def transformer_component(nlp: Any) -> Tuple[str, Any]:
    return next(
        (name, pipe)
        for name, pipe in nlp.components
        if hasattr(getattr(pipe, "model", None), "attrs") and "get_spans" in pipe.model.attrs
    )


def write_biobert_shaped(path: Path, tokenizer: Any, shape: Dict[str, Any]) -> Path:
    """A random BERT with the configuration `shape` (BIOBERT_CONFIG: BERT-base
    with BioBERT's vocabulary size) in `path`, its vocabulary the first
    `vocab_size` wordpieces of `tokenizer`'s."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    vocab = [token for token, _ in vocab][: shape["vocab_size"]]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    lower = bool(getattr(tokenizer, "do_lower_case", True))
    BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=lower).save_pretrained(str(path))
    torch.manual_seed(0)
    config = BertConfig(**dict(shape, vocab_size=len(vocab)))
    BertModel(config).save_pretrained(str(path))
    return path


def biobert_shaped_pipeline(nlp: Any, folder: Path, gold_docs: List[Tuple]) -> Any:
    """`nlp` rebuilt around the model in `folder` (see the module docs)."""
    import tempfile

    import spacy
    from spacy.tokens import Span
    from spacy.training import Example
    from spacy.util import filter_spans

    from spacy_biobert.pipeline.relations import RelationExtractor

    trf_name, trf = transformer_component(nlp)
    renewed = [trf_name, *trf.listening_components]
    config = nlp.config.copy()
    config["components"][trf_name]["model"]["name"] = str(folder)
    new = spacy.util.load_model_from_config(config, auto_fill=False, validate=True)
    new.tokenizer.from_bytes(nlp.tokenizer.to_bytes())
    for name in new.pipe_names:
        if name in renewed:
            continue
        old, pipe = nlp.get_pipe(name), new.get_pipe(name)
        if hasattr(old, "to_bytes") and hasattr(pipe, "from_bytes"):
            pipe.from_bytes(old.to_bytes())
        elif hasattr(old, "to_disk") and hasattr(pipe, "from_disk"):
            with tempfile.TemporaryDirectory() as tmp:
                old.to_disk(Path(tmp) / name)
                pipe.from_disk(Path(tmp) / name)
        # else: a stateless component (biobert_abbreviations), made from its config alone
    examples = []
    for _, text, mentions in gold_docs[:8]:
        ref = new.make_doc(text)
        spans = [ref.char_span(s, e, label=label, alignment_mode="expand") for s, e, label in mentions]
        ref.ents = filter_spans([s for s in spans if isinstance(s, Span)])
        examples.append(Example(new.make_doc(text), ref))
    for name in renewed:
        old, pipe = nlp.get_pipe(name), new.get_pipe(name)
        kwargs: Dict[str, Any] = {}
        sample = examples
        if isinstance(old, RelationExtractor):
            kwargs = {"labels": list(old.labels), "concept_labels": list(old.cfg.get("concept_labels", []))}
            # Shapes only (speed): unannotated docs, which its data checks take as a
            # set-up sample (W806), not as training data without relations (E801).
            sample = [Example(eg.predicted, eg.predicted.copy()) for eg in examples]
        elif name != trf_name and hasattr(old, "label_data"):
            kwargs = {"labels": old.label_data}
        pipe.initialize(lambda sample=sample: sample, nlp=new, **kwargs)
    return new


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


def count_words(nlp: Any, texts: List[str]) -> int:
    return sum(1 for t in texts for tok in nlp.make_doc(t) if not tok.is_space)


def add_biobert_shaped(
    args: argparse.Namespace, nlp: Any, gold_docs: List[Tuple], precisions: List[str],
    keep: Tuple[str, ...], variants: Dict[str, Any],
) -> Dict[str, Any]:
    """Build the BioBERT-shaped pipeline (one per precision: fp32, a bf16
    and an int8 copy of the same weights), add its timed variants to
    `variants` and return what the JSON says about it."""
    import tempfile

    import spacy

    from spacy_biobert.annotate.quantize import quantize_pipeline
    from spacy_biobert.precision import set_precision

    step = max(1, len(gold_docs) // args.biobert_docs)
    sample = gold_docs[::step][: args.biobert_docs]
    texts = [g[1] for g in sample]
    keys = [g[0] for g in sample]
    _, trf = transformer_component(nlp)
    shape = dict(BIOBERT_CONFIG, **args.biobert_config)
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_biobert_shaped(Path(tmp) / "biobert-shaped", trf.model.tokenizer, shape)
        shaped = {"fp32": biobert_shaped_pipeline(nlp, folder, gold_docs)}
        data = shaped["fp32"].to_bytes()
        for prec in precisions[1:]:
            copy = spacy.util.load_model_from_config(shaped["fp32"].config, auto_fill=False)
            shaped[prec] = copy.from_bytes(data)
    if "int8" in shaped:
        quantize_pipeline(shaped["int8"], "int8", keep)
    if "bf16" in shaped:
        set_precision(shaped["bf16"], "bf16", force=True)
    for prec, pipeline in shaped.items():
        run_pipeline(pipeline, texts[:2], keys, args.batch_size)  # warm-up
        variants[f"biobert_shaped_{prec}"] = (
            lambda p=pipeline: run_pipeline(p, texts, keys, args.batch_size)
        )
    hf = transformer_component(shaped["fp32"])[1].model
    return {
        "config": dict(shape, vocab_size=hf.transformer.config.vocab_size),
        "weights": "random (torch.manual_seed(0)); speed only",
        "documents": len(texts),
        "words": count_words(nlp, texts),
        "pipeline": shaped["fp32"].pipe_names,
    }


def main(argv=None) -> Dict[str, Any]:
    import spacy
    import torch

    from spacy_biobert.annotate.quantize import DEFAULT_KEEP_FP32, quantize_pipeline
    from spacy_biobert.evaluation.ner import score_mentions
    from spacy_biobert.precision import cpu_bf16_support, set_precision

    args = parse_args(argv)
    precisions = ["fp32"] + [p for p in PRECISIONS[1:] if p in args.precision]
    gold_docs = sorted(load_gold(args.corpus, args.limit), key=lambda g: len(g[1]))
    keys = [g[0] for g in gold_docs]
    texts = [g[1] for g in gold_docs]
    gold = [(k, s, e, label) for k, _, ms in gold_docs for s, e, label in ms]
    nlp = spacy.load(args.model)
    keep = DEFAULT_KEEP_FP32 if args.keep_fp32 is None else tuple(args.keep_fp32)
    pipelines = {"fp32": nlp}
    quantized: List[str] = []
    if "int8" in precisions:
        pipelines["int8"] = spacy.load(args.model)
        quantized = quantize_pipeline(pipelines["int8"], "int8", keep)
    if "bf16" in precisions:
        pipelines["bf16"] = spacy.load(args.model)
        set_precision(pipelines["bf16"], "bf16", force=True)
    words = count_words(nlp, texts)
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

    def pipe_runner(pipeline: Any, some_texts: List[str], some_keys: List[str]):
        return lambda: run_pipeline(pipeline, some_texts, some_keys, args.batch_size)

    variants = {
        "pipeline": pipe_runner(nlp, texts, keys),
        "encoder": lambda: run_encoder(hf, tokenizer, groups),
    }
    for prec in precisions[1:]:
        variants[f"pipeline_{prec}"] = pipe_runner(pipelines[prec], texts, keys)
    if nlp_copies is not None:
        variants["pipeline_per_component_transformers"] = pipe_runner(nlp_copies, texts, keys)
        run_pipeline(nlp_copies, texts[: args.batch_size], keys, args.batch_size)
    biobert: Dict[str, Any] = {}
    if args.biobert_docs > 0:
        biobert = add_biobert_shaped(args, nlp, gold_docs, precisions, keep, variants)
    # Warm-up: one batch each.
    for pipeline in pipelines.values():
        run_pipeline(pipeline, texts[: args.batch_size], keys, args.batch_size)
    run_encoder(hf, tokenizer, groups[:1])
    seconds: Dict[str, List[float]] = {name: [] for name in variants}
    counts = {name: words for name in variants}
    counts.update({name: biobert["words"] for name in variants if name.startswith("biobert_shaped")})
    for r in range(args.repeats):
        for name, fn in variants.items():
            seconds[name].append(timed(name, fn))
            wps_now = counts[name] / seconds[name][-1]
            print(f"repeat {r + 1}/{args.repeats} {name}: {wps_now:.1f} words/s", flush=True)
    wps = {name: counts[name] / statistics.median(s) for name, s in seconds.items()}
    f1 = {"fp32": score_mentions(gold, predictions["pipeline"]).micro.as_dict()}
    for prec in precisions[1:]:
        f1[prec] = score_mentions(gold, predictions[f"pipeline_{prec}"]).micro.as_dict()
        # In F1 points (the scores are fractions).
        f1[f"{prec}_minus_fp32"] = round(100 * (f1[prec]["f"] - f1["fp32"]["f"]), 2)
    f_fp32 = f1["fp32"]
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
        "ratios": {"pipeline_vs_encoder": round(wps["pipeline"] / wps["encoder"], 3)},
        "f1": f1,
        "precision": {
            "timed": precisions,
            "cpu_bf16": vars(cpu_bf16_support()),
            "bf16": "forced (set_precision(nlp, 'bf16', force=True)): CPU bfloat16 autocast on the "
            "transformer, whatever the CPU",
            "bf16_with_int8": "not combined: torch's dynamic int8 linear layers take fp32 inputs only",
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        },
        "encoder_windows": sum(len(g) for g in groups),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }
    for prec in precisions[1:]:
        result["ratios"][f"{prec}_vs_fp32"] = round(wps[f"pipeline_{prec}"] / wps["pipeline"], 3)
    if "int8" in precisions:
        result["int8"] = {"keep_fp32": list(keep), "quantized_layers": len(quantized)}
    if nlp_copies is not None:
        result["ratios"]["pipeline_vs_per_component_transformers"] = round(
            wps["pipeline"] / wps["pipeline_per_component_transformers"], 3
        )
        result["per_component_transformers_pipeline"] = nlp_copies.pipe_names
    if biobert:
        shaped = {p: wps[f"biobert_shaped_{p}"] for p in precisions}
        biobert["words_per_second"] = {p: round(v, 1) for p, v in shaped.items()}
        biobert["ratios"] = {f"{p}_vs_fp32": round(shaped[p] / shaped["fp32"], 3) for p in precisions[1:]}
        result["biobert_shaped"] = biobert
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
    for prec in precisions[1:]:
        print(
            f"{prec}/fp32        = {r[f'{prec}_vs_fp32']:.3f}; strict F1 fp32 {100 * f_fp32['f']:.2f}, "
            f"{prec} {100 * f1[prec]['f']:.2f} ({f1[f'{prec}_minus_fp32']:+.2f} points)"
        )
    if biobert:
        shaped_wps = ", ".join(f"{p} {v:.1f}" for p, v in biobert["words_per_second"].items())
        print(f"BioBERT-shaped pipeline words/s: {shaped_wps}")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
