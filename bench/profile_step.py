"""Where the time of one training step goes: the transformer against spaCy's
side, for a `configs/bc5cdr.cfg`-shaped pipeline (biobert + ner +
biobert_abbreviations + biobert_linker + biobert_relations). Writes JSON.

    python bench/profile_step.py configs/bc5cdr.cfg --paths.corpora ../shared/corpora

The pipeline is initialised from the config as `spacy train` does
(`init_nlp`, on `--train-docs` training documents: the KB, labels and
weights), the training batches are made by the config's batcher, and after
`--warmup` steps, `--steps` steps are timed. A step is what `nlp.update`
does (the same loop: each component's `update`, then `finish_update` with
the config's optimizer), with timers around these regions; each region's time
is exclusive of the regions nested in it, so the shares add up to the step:

- transformer (torch): `encoder forward` (the Hugging Face model, under
  bfloat16 autocast with `--precision bf16`), `encoder backward` (autograd),
  `transformer optimizer` (thinc's Adam over its weights, in NumPy);
- spacy-transformers' glue: `wordpiece tokenization` (the fast tokenizer on
  the window texts), `alignment` (spaCy tokens to wordpieces, truncation),
  `listener pooling` (reduce_mean of each token's wordpieces, forward and
  backward, in each listener), `transformer glue` (the rest of the biobert
  component's update and of its model's forward and backward: span getter,
  tensors to and from torch, the fp32 casts, splitting the output by doc and
  joining the listeners' gradients);
- spaCy's side: `ner` (the transition-based parser: its hidden layer, the
  transitions and the oracle, its backprop; the exclusive time of ner's
  update), `relation candidates` (EntityPairs), `relations` (the pair
  features and MLP, forward and backward), `heads optimizer` (ner's and
  biobert_relations' finish_update), `other` (the rest of the step: Example
  copies, losses, the update loop);
- `tokenizer`: `nlp.make_doc` of the batch's texts, timed separately (the
  corpus reader makes the docs when it reads, each epoch, so it is a per-step
  cost too, though outside `nlp.update`).

Timers cost microseconds; no profiler runs unless `--cprofile FILE` asks for
a cProfile dump of the same steps (slower, for a closer look).
"""

import argparse
import contextlib
import functools
import json
import platform
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, List

TRANSFORMER = ("encoder forward", "encoder backward", "transformer optimizer")
GLUE = ("wordpiece tokenization", "alignment", "listener pooling", "transformer glue")
SPACY = ("ner", "relation candidates", "relations", "heads optimizer", "other")
LABELS = {"biobert": "transformer glue", "ner": "ner", "biobert_relations": "relations"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="training config (configs/bc5cdr.cfg)")
    p.add_argument("--train-docs", type=int, default=40, help="training documents read (default 40)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    p.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                   help="the biobert precision (bf16 runs even where the CPU lacks native bf16)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--output", default="metrics/bench_profile_step.json", help="JSON to write")
    p.add_argument("--cprofile", default=None, help="also write a cProfile dump of the timed steps")
    args, overrides = p.parse_known_args(argv)
    return args, overrides


class Regions:
    """Named timers that nest: a region's exclusive time leaves out the
    regions that ran inside it."""

    def __init__(self) -> None:
        self.stack: List[List[Any]] = []
        self.exclusive: Dict[str, float] = defaultdict(float)
        self.calls: Counter = Counter()
        self.enabled = False

    @contextlib.contextmanager
    def region(self, label: str):
        if not self.enabled:
            yield
            return
        self.stack.append([label, 0.0])
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            _, nested = self.stack.pop()
            self.exclusive[label] += elapsed - nested
            self.calls[label] += 1
            if self.stack:
                self.stack[-1][1] += elapsed

    def wrap(self, label: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.region(label):
                return fn(*args, **kwargs)

        return wrapper

    def wrap_forward(self, label: str, func: Callable) -> Callable:
        """A thinc forward function timed as `label`, its backprop too."""

        def forward(model, X, is_train):
            with self.region(label):
                Y, backprop = func(model, X, is_train)
            return Y, self.wrap(label, backprop)

        return forward


def instrument(nlp: Any, regions: Regions) -> None:
    """Timers around the regions of the module docs (patches this process only)."""
    from spacy_transformers.data_classes import FullTransformerBatch
    from spacy_transformers.layers import transformer_model
    from thinc.shims.pytorch import PyTorchShim

    from spacy_biobert.pipeline.relations import RelationExtractor

    for label, owner, names in (
        ("wordpiece tokenization", transformer_model, ("huggingface_tokenize",)),
        ("alignment", transformer_model,
         ("get_alignment_via_offset_mapping", "get_alignment", "truncate_oversize_splits")),
        ("transformer glue", FullTransformerBatch, ("split_by_doc", "unsplit_by_doc")),
    ):
        for name in names:
            setattr(owner, name, regions.wrap(label, getattr(owner, name)))
    begin_update = PyTorchShim.begin_update

    def timed_begin_update(self, inputs):
        with regions.region("encoder forward"):
            output, backprop = begin_update(self, inputs)
        return output, regions.wrap("encoder backward", backprop)

    PyTorchShim.begin_update = timed_begin_update
    PyTorchShim.finish_update = regions.wrap("transformer optimizer", PyTorchShim.finish_update)
    for _, pipe in nlp.components:
        model = getattr(pipe, "model", None)
        if model is None or not hasattr(model, "walk"):
            continue
        for node in model.walk():
            if node.name.startswith("trfs2arrays"):
                node._func = regions.wrap_forward("listener pooling", node._func)
            elif "get_spans" in node.attrs:  # the TransformerModel
                node._func = regions.wrap_forward("transformer glue", node._func)
        if isinstance(pipe, RelationExtractor):
            pipe.candidates = regions.wrap("relation candidates", pipe.candidates)


def update(nlp: Any, examples: List[Any], sgd: Any, regions: Regions, losses: Dict[str, float]) -> None:
    """`Language.update` (spaCy 3.8), each component's update and finish_update in a region."""
    from spacy import ty
    from spacy.language import _copy_examples

    examples = _copy_examples(examples)
    for name, proc in nlp.pipeline:
        if not hasattr(proc, "update"):
            continue
        label = LABELS.get(name, "other")
        with regions.region(label):
            proc.update(examples, sgd=None, losses=losses, drop=0.1)
        trainable = isinstance(proc, ty.TrainableComponent) and proc.is_trainable
        if trainable and proc.model not in (True, False, None):
            with regions.region("transformer glue" if label == "transformer glue" else "heads optimizer"):
                proc.finish_update(sgd)


def main(argv=None) -> Dict[str, Any]:
    import torch
    from spacy.training.initialize import init_nlp
    from spacy.util import load_config, registry, resolve_dot_names

    from spacy_biobert.precision import cpu_bf16_support, set_precision

    args, overrides = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    values = {}
    it = iter(overrides)
    for key in it:
        key, sep, value = key[2:].partition("=")
        values[key] = value if sep else next(it)
    values.setdefault("paths.train_limit", str(args.train_docs))
    values.setdefault("paths.dev_limit", "1")
    config = load_config(args.config, overrides={k: _parse(v) for k, v in values.items()}, interpolate=False)
    nlp = init_nlp(config, use_gpu=-1)
    set_precision(nlp, args.precision, force=True)
    resolved = config.interpolate()
    T = registry.resolve(resolved["training"])
    (train_corpus,) = resolve_dot_names(resolved, [T["train_corpus"]])
    examples = list(train_corpus(nlp))
    batches = list(T["batcher"](examples))
    need = args.warmup + args.steps
    batches = (batches * (need // max(1, len(batches)) + 1))[:need]
    sgd = T["optimizer"]
    regions = Regions()
    instrument(nlp, regions)
    losses: Dict[str, float] = {}
    for batch in batches[: args.warmup]:
        update(nlp, batch, sgd, regions, losses)
    step_seconds: List[float] = []
    tokenizer_seconds: List[float] = []
    profiler = None
    if args.cprofile:
        import cProfile

        profiler = cProfile.Profile()
    for batch in batches[args.warmup :]:
        texts = [eg.reference.text for eg in batch]
        start = time.perf_counter()
        for text in texts:
            nlp.make_doc(text)
        tokenizer_seconds.append(time.perf_counter() - start)
        regions.enabled = True
        if profiler is not None:
            profiler.enable()
        start = time.perf_counter()
        update(nlp, batch, sgd, regions, losses)
        step_seconds.append(time.perf_counter() - start)
        if profiler is not None:
            profiler.disable()
        regions.enabled = False
    if profiler is not None:
        profiler.dump_stats(args.cprofile)
    total = sum(step_seconds)
    tok = sum(tokenizer_seconds)
    seconds = dict(regions.exclusive)
    seconds["other"] = seconds.get("other", 0.0) + total - sum(regions.exclusive.values())
    seconds["tokenizer"] = tok
    whole = total + tok
    share = {k: round(100 * v / whole, 1) for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])}
    groups = {
        "transformer (torch)": sum(seconds.get(k, 0.0) for k in TRANSFORMER),
        "spacy-transformers glue": sum(seconds.get(k, 0.0) for k in GLUE),
        "spaCy side (tokenizer, ner, relations, heads)": sum(
            seconds.get(k, 0.0) for k in SPACY + ("tokenizer",)
        ),
    }
    words = [sum(len(eg.reference) for eg in batch) for batch in batches[args.warmup :]]
    result = {
        "config": str(args.config),
        "overrides": values,
        "precision": args.precision,
        "cpu_bf16": vars(cpu_bf16_support()),
        "pipeline": nlp.pipe_names,
        "steps": args.steps,
        "docs_per_step": statistics.mean(len(b) for b in batches[args.warmup :]),
        "words_per_step": statistics.mean(words),
        "seconds_per_step": round(total / args.steps, 3),
        "seconds_per_step_median": round(statistics.median(step_seconds), 3),
        "tokenizer_seconds_per_step": round(tok / args.steps, 4),
        "share_percent": share,
        "group_share_percent": {k: round(100 * v / whole, 1) for k, v in groups.items()},
        "seconds_per_step_by_region": {k: round(v / args.steps, 4) for k, v in seconds.items()},
        "calls": dict(regions.calls),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    print(f"{args.steps} steps, {result['docs_per_step']:.1f} docs and {result['words_per_step']:.0f} "
          f"words a step, {result['seconds_per_step']:.2f} s a step ({args.precision}, "
          f"{result['torch_threads']} torch threads)")
    for key, value in result["group_share_percent"].items():
        print(f"  {key:48s} {value:5.1f} %")
    for key, value in share.items():
        print(f"    {key:46s} {value:5.1f} %")
    print(f"wrote {out}")
    return result


def _parse(value: str) -> Any:
    """A command-line override value as spaCy's CLI reads it (JSON, else a string)."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


if __name__ == "__main__":
    main(sys.argv[1:])
