"""ChemProt relations with plain `transformers` (issue 28's baseline): BioBERT's
anonymised sentence classification on the same encoder, the same train split
and the same passes over it as `configs/chemprot.cfg`, scored by the project's
relation scorer on the same dev split. Writes JSON.

    python bench/relation_baseline.py ../shared/corpora/chemprot/chemprot_training \
        ../shared/corpora/chemprot/chemprot_development          # -> metrics/bench_relation_baseline.json

What is shared with `biobert_relations` (so the figures are like for like):

- Documents: the project's reader (`read_chemprot`, with the tokenizer of
  `configs/chemprot.cfg`), which also sets the rule-based sentence boundaries.
- Candidates: the generator of the config's `[components.biobert_relations
  .candidates]` block (`spacy-biobert.EntityPairs.v1`: (CHEMICAL, GENE-Y |
  GENE-N) pairs of the "mentions" span group inside one sentence), called on
  the gold Docs, so both systems score exactly the same pairs.
- Gold labels: the scorer's own matching (character offsets of the
  arguments); CPR:3,4,5,6,9 are the labels, every other pair (other CPR
  groups included) is "false", as in the config.
- Scoring: predictions are written to `doc._.relation_pairs` /
  `doc._.relations` as `biobert_relations` writes them and scored with
  `spacy_biobert.evaluation.relations.score_relations` (micro and per-label
  P/R/F1 over CPR:3,4,5,6,9; gold relations no candidate reaches are false
  negatives for both).
- Budget: the same passes over the train split. `--passes cfg` (the
  default) computes them from the config: its 800 steps of
  `spacy.batch_by_padded.v1` (size 1500 padded tokens, buffer 256: about
  4.5 abstracts a step, not `[nlp] batch_size` = 32, which is nlp.pipe's
  batch) over the train documents, shuffled each epoch as `spacy train`
  does. On the full train split (1020 abstracts, 293 tokens on average)
  that is 228.25 steps a pass (227 to 229), so 800 steps = 3.50 passes;
  the JSON records the figures under "budget".

The model side is plain `transformers` + `torch` (no spaCy pipeline):
`AutoModelForSequenceClassification` over the base model (`--model`: a folder
or an alias such as `minilm-offline`), the six classes "false", CPR:3, 4, 5, 6
and 9, cross-entropy, AdamW with linear warm-up and decay, fp32 on CPU.
Each candidate becomes its sentence with the chemical replaced by
`@CHEMICAL$` and the gene by `@GENE$` (BioBERT's anonymisation; kept as plain
text, i.e. word pieces, as BioBERT did, unless `--marker-tokens special`).
A pair whose two mentions overlap (one inside the other, or crossing) cannot
be anonymised: it is skipped in training and predicted "false", counted by
reason. A sentence longer than `--max-length` word pieces is cut to a window
that keeps both markers (counted). Batches are pairs of similar length,
shuffled (`--no-group-by-length`: plain shuffling). A pair with two gold
groups (10 in train, 4 in dev) is trained on the first; a softmax predicts
one of them, so the other is a false negative (dev recall is at most 99.83).

A softmax classifier's decision is its argmax: the headline figure
("argmax") predicts the argmax label when it is not "false" (the docs get
probability 1.0 for that label, 0.0 for the others, scored at 0.5). The
"probability" figures store the softmax probability of each CPR label, as
`biobert_relations` stores its sigmoid probabilities, and score them at the
`--thresholds` (at 0.5 a label is predicted only when it has the majority of
the probability mass: stricter than argmax).
"""

import argparse
import json
import math
import platform
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

EVAL_LABELS = ("CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9")
NEGATIVE = "false"
CLASSES = (NEGATIVE, *EVAL_LABELS)
CHEMICAL_MARKER = "@CHEMICAL$"
GENE_MARKER = "@GENE$"
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "chemprot.cfg"
COMPONENT = "biobert_relations"
# Skip reasons (a skipped pair is never trained on and is predicted "false").
NESTED = "nested"  # one mention inside the other (or the same characters)
OVERLAP = "overlap"  # the mentions cross
CROSS_SENTENCE = "cross_sentence"  # head and tail in different sentences


@dataclass
class Pair:
    """One candidate: its doc (index), head and tail spans, the anonymised
    sentence and where its two markers are (character spans in `text`), the
    gold class, and why it was skipped (None: used)."""

    doc: int
    head: Any
    tail: Any
    label: str
    text: Optional[str] = None
    markers: Tuple[Tuple[int, int], ...] = ()
    skipped: Optional[str] = None


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Budget: --passes cfg (the default) = max_steps of --config's [training] "
        "over the train split, batched by its [training.batcher] (batch_by_padded, "
        "1500 padded tokens, about 4.5 abstracts a step): 800 steps = 3.50 passes over "
        "ChemProt's 1020 training abstracts (228.25 steps a pass).",
    )
    p.add_argument("train", help="ChemProt train split (folder or file prefix)")
    p.add_argument("dev", help="ChemProt dev split (folder or file prefix)")
    p.add_argument("--model", default="minilm-offline", help="base model: folder or alias")
    p.add_argument(
        "--config", default=str(DEFAULT_CONFIG),
        help="the relation config whose tokenizer, candidates and budget are matched",
    )
    p.add_argument(
        "--passes", default="cfg",
        help="passes over the train pairs: a number, or 'cfg' (the config's max_steps "
        "as passes over the train documents; default)",
    )
    p.add_argument("--max-steps", type=int, default=None, help="stop after N steps (smoke runs)")
    p.add_argument("--batch-size", type=int, default=32, help="pairs per step (default 32)")
    p.add_argument("--lr", type=float, default=5e-5, help="peak learning rate (default 5e-5)")
    p.add_argument("--warmup", type=float, default=0.1, help="warm-up share of the steps (0.1)")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (0.01)")
    p.add_argument("--grad-clip", type=float, default=1.0, help="gradient norm clip (1.0)")
    p.add_argument("--max-length", type=int, default=128, help="word pieces per input (128)")
    p.add_argument(
        "--marker-tokens", choices=("text", "special"), default="text",
        help="markers as plain text (word pieces, as BioBERT) or as added special tokens",
    )
    p.add_argument(
        "--no-group-by-length", dest="group_by_length", action="store_false",
        help="plain shuffled batches (default: batches of similar lengths, shuffled)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--eval-batch-size", type=int, default=64, help="pairs per inference batch")
    p.add_argument(
        "--eval-each-pass", action="store_true", help="score dev after every full pass too"
    )
    p.add_argument("--thresholds", default="0.3,0.4,0.5,0.6,0.7", help="probability thresholds")
    p.add_argument(
        "--limit-docs", type=int, default=None, help="first N documents of each split (smoke)"
    )
    p.add_argument("--output", default="metrics/bench_relation_baseline.json", help="JSON to write")
    return p.parse_args(argv)


# --- corpus, candidates, budget (the project's code, so both systems agree) ------


def load_config(path: str) -> Any:
    from spacy.util import load_config as spacy_load_config

    return spacy_load_config(path, interpolate=True)


def make_nlp(config: Any) -> Any:
    """A blank pipeline with the config's tokenizer (only used to make Docs)."""
    import spacy

    import spacy_biobert  # noqa: F401  (registers the tokenizer)

    return spacy.blank(
        config["nlp"]["lang"], config={"nlp": {"tokenizer": dict(config["nlp"]["tokenizer"])}}
    )


def make_candidates(config: Any, component: str = COMPONENT) -> Callable:
    """The config's candidate generator for `component`."""
    from spacy.util import registry

    import spacy_biobert  # noqa: F401  (registers EntityPairs)

    block = dict(config["components"][component]["candidates"])
    return registry.resolve({"candidates": block})["candidates"]


def read_docs(path: str, nlp: Any, limit: Optional[int] = None) -> List[Any]:
    from spacy_biobert.corpora import read_chemprot

    return list(read_chemprot(path, nlp, limit=limit))


def config_budget(config: Any, docs: Sequence[Any], seed: int = 0, epochs: int = 20) -> Dict[str, Any]:
    """What the config's `max_steps` mean in passes over `docs`: its batcher
    run over the documents shuffled `epochs` times, as `spacy train` shuffles
    each epoch (batches of `len(doc)` tokens)."""
    from spacy.util import registry

    training = config["training"]
    batcher = registry.resolve({"b": dict(training["batcher"])})["b"]
    rng = random.Random(seed)
    order = list(docs)
    steps = []
    for _ in range(epochs):
        rng.shuffle(order)
        steps.append(sum(1 for _ in batcher(order)))
    per_pass = statistics.mean(steps)
    max_steps = int(training["max_steps"])
    return {
        "max_steps": max_steps,
        "batcher": {k: v for k, v in dict(training["batcher"]).items()},
        "train_docs": len(docs),
        "steps_per_pass": per_pass,
        "steps_per_pass_range": [min(steps), max(steps)],
        "docs_per_step": len(docs) / per_pass if per_pass else 0.0,
        "passes": max_steps / per_pass if per_pass else 0.0,
    }


# --- pairs and anonymisation ------------------------------------------------------


def sentence_bounds(doc: Any) -> Tuple[List[int], List[Tuple[int, int]]]:
    """The sentence index of each token and each sentence's character range."""
    from spacy_biobert.models.pairs import sentence_ids

    ids = sentence_ids(doc)
    if ids is None:  # no boundaries: the document is one sentence
        ids_list = [0] * len(doc)
    else:
        ids_list = [int(i) for i in ids]
    bounds: Dict[int, List[int]] = {}
    for token, sid in zip(doc, ids_list):
        lo_hi = bounds.setdefault(sid, [token.idx, token.idx + len(token.text)])
        lo_hi[1] = token.idx + len(token.text)
    return ids_list, [tuple(bounds[i]) for i in sorted(bounds)]  # type: ignore[misc]


def overlap_reason(a: Tuple[int, int], b: Tuple[int, int]) -> Optional[str]:
    """NESTED when one character span holds the other, OVERLAP when they
    cross, None when they are disjoint."""
    if a[0] >= b[1] or b[0] >= a[1]:
        return None
    if (a[0] <= b[0] and b[1] <= a[1]) or (b[0] <= a[0] and a[1] <= b[1]):
        return NESTED
    return OVERLAP


def anonymise(
    text: str,
    sentence: Tuple[int, int],
    head: Tuple[int, int],
    tail: Tuple[int, int],
    head_marker: str = CHEMICAL_MARKER,
    tail_marker: str = GENE_MARKER,
) -> Tuple[str, Tuple[Tuple[int, int], Tuple[int, int]]]:
    """The sentence `text[sentence[0]:sentence[1]]` with the head's characters
    replaced by `head_marker` and the tail's by `tail_marker`, and the
    (start, end) of the head's and the tail's marker in it. The spans must be
    disjoint and inside the sentence."""
    s0 = sentence[0]
    parts = sorted([(head, head_marker, 0), (tail, tail_marker, 1)])
    out = []
    pos = s0
    where: Dict[int, Tuple[int, int]] = {}
    length = 0
    for (start, end), marker, which in parts:
        piece = text[pos:start]
        out.append(piece)
        length += len(piece)
        out.append(marker)
        where[which] = (length, length + len(marker))
        length += len(marker)
        pos = end
    out.append(text[pos : sentence[1]])
    return "".join(out), (where[0], where[1])


def gold_labels(ref: Any) -> Dict[Tuple[Tuple[int, int], Tuple[int, int]], List[str]]:
    """{(head chars, tail chars): [CPR labels]}: the scorer's own reading of
    the reference's gold relations, restricted to the evaluated groups."""
    from spacy_biobert.evaluation.relations import _gold_mention_relations

    out: Dict[Tuple[Tuple[int, int], Tuple[int, int]], List[str]] = {}
    for head, tail, label in _gold_mention_relations(ref):
        if label in EVAL_LABELS and head[0] != "id":
            out.setdefault((tuple(head), tuple(tail)), []).append(label)
    return {k: sorted(set(v)) for k, v in out.items()}


def build_pairs(
    docs: Sequence[Any], get_candidates: Callable, markers: Tuple[str, str] = (CHEMICAL_MARKER, GENE_MARKER)
) -> Tuple[List[Pair], Dict[str, Any]]:
    """Every candidate of every doc, anonymised or skipped, with its gold
    class, and the counts (skips by reason, gold relations reached)."""
    pairs: List[Pair] = []
    skipped: Counter = Counter()
    by_label: Counter = Counter()
    gold_total = gold_reached = gold_on_skipped = multi_label = marker_in_text = 0
    docs_with_candidates = 0
    for i, doc in enumerate(docs):
        gold = gold_labels(doc)
        gold_total += sum(len(v) for v in gold.values())
        candidates = get_candidates(doc)
        if not candidates:
            continue
        docs_with_candidates += 1
        sent_of, bounds = sentence_bounds(doc)
        reached, on_skipped = set(), set()
        for head, tail in candidates:
            h, t = (head.start_char, head.end_char), (tail.start_char, tail.end_char)
            labels = gold.get((h, t), [])
            reached.update((h, t, label) for label in labels)
            if len(labels) > 1:
                multi_label += 1
            pair = Pair(i, head, tail, labels[0] if labels else NEGATIVE)
            reason = overlap_reason(h, t)
            if reason is None and sent_of[head.start] != sent_of[tail.start]:
                reason = CROSS_SENTENCE
            if reason is not None:
                pair.skipped = reason
                skipped[reason] += 1
                on_skipped.update((h, t, label) for label in labels)
            else:
                sentence = bounds[sent_of[head.start]]
                if any(m in doc.text[sentence[0] : sentence[1]] for m in markers):
                    marker_in_text += 1
                pair.text, pair.markers = anonymise(doc.text, sentence, h, t, *markers)
                by_label[pair.label] += 1
            pairs.append(pair)
        gold_reached += len(reached)
        gold_on_skipped += len(on_skipped)
    counts = {
        "docs": len(docs),
        "docs_with_candidates": docs_with_candidates,
        "candidates": len(pairs),
        "pairs_used": len(pairs) - sum(skipped.values()),
        "skipped": dict(sorted(skipped.items())),
        "classes_of_used_pairs": dict(sorted(by_label.items())),
        "gold_relations": gold_total,
        "gold_on_candidates": gold_reached,
        "gold_on_skipped_pairs": gold_on_skipped,
        "pairs_with_several_gold_labels": multi_label,
        "sentences_already_holding_a_marker_string": marker_in_text,
    }
    return pairs, counts


# --- encoding ---------------------------------------------------------------------


def load_model(name: str, marker_tokens: str = "text") -> Tuple[Any, Any, str]:
    """Tokenizer and `AutoModelForSequenceClassification` over CLASSES for
    `name` (folder or alias), and the resolved source."""
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from spacy_biobert.models.base_models import (
        cap_model_max_length,
        has_safetensors,
        resolve_model_name,
    )
    from spacy_biobert.models.safe_loading import check_model_folder

    source, cased = resolve_model_name(name)
    if Path(source).is_dir():
        check_model_folder(source, f"the base model '{name}' ({source})")
    tok_cfg: Dict[str, Any] = {"use_fast": True}
    if cased is not None:
        tok_cfg["do_lower_case"] = not cased
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # "newly initialized classifier" is expected
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False, **tok_cfg)
        model = AutoModelForSequenceClassification.from_pretrained(
            source,
            num_labels=len(CLASSES),
            id2label=dict(enumerate(CLASSES)),
            label2id={c: i for i, c in enumerate(CLASSES)},
            trust_remote_code=False,
            use_safetensors=has_safetensors(source) or None,
        )
    finally:
        transformers.logging.set_verbosity(verbosity)
    cap_model_max_length(tokenizer, model.config)
    if marker_tokens == "special":
        tokenizer.add_special_tokens(
            {"additional_special_tokens": [CHEMICAL_MARKER, GENE_MARKER]}
        )
        model.resize_token_embeddings(len(tokenizer))
    return tokenizer, model, source


def encode(
    tokenizer: Any, text: str, markers: Sequence[Tuple[int, int]], max_length: int
) -> Tuple[List[int], str]:
    """Word-piece ids with the special tokens, at most `max_length`, and what
    was done: "whole", "window" (cut to a window holding both markers) or
    "cut" (the markers are further apart than the window: cut around the
    first)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    room = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    how = "whole"
    if len(ids) > room:
        pieces = [
            j for j, (a, b) in enumerate(offsets) for s, e in markers if a < e and s < b
        ]
        lo, hi = (min(pieces), max(pieces)) if pieces else (0, 0)
        if hi - lo + 1 <= room:
            start = max(0, min(lo - (room - (hi - lo + 1)) // 2, len(ids) - room))
            how = "window"
        else:
            start = max(0, min(lo, len(ids) - room))
            how = "cut"
        ids = ids[start : start + room]
    return tokenizer.build_inputs_with_special_tokens(ids), how


def encode_pairs(
    tokenizer: Any, pairs: Sequence[Pair], max_length: int
) -> Tuple[List[List[int]], Dict[str, int]]:
    features, how = [], Counter()
    for pair in pairs:
        ids, done = encode(tokenizer, pair.text or "", pair.markers, max_length)
        features.append(ids)
        how[done] += 1
    return features, {k: how[k] for k in ("whole", "window", "cut")}


def collate(batch: Sequence[List[int]], pad_id: int) -> Dict[str, Any]:
    import torch

    width = max(len(x) for x in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, x in enumerate(batch):
        ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, : len(x)] = 1
    return {"input_ids": ids, "attention_mask": mask}


# --- training and prediction ----------------------------------------------------------


def pass_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random, group_by_length: bool
) -> List[List[int]]:
    """One pass: the pairs shuffled into batches of `batch_size` (the last one
    may be smaller). With `group_by_length`, each run of 50 batches' worth of
    shuffled pairs is sorted by length before it is cut into batches, and the
    batches are shuffled (less padding; the `group_by_length` of transformers'
    Trainer). Either way a pass has ceil(n / batch_size) batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if not group_by_length:
        return [order[b : b + batch_size] for b in range(0, len(order), batch_size)]
    mega = 50 * batch_size
    batches = []
    for m in range(0, len(order), mega):
        chunk = sorted(order[m : m + mega], key=lambda i: -lengths[i])
        batches.extend(chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def train(
    model: Any,
    features: Sequence[List[int]],
    targets: Sequence[int],
    *,
    pad_id: int,
    steps: int,
    batch_size: int,
    lr: float,
    warmup: float,
    weight_decay: float,
    grad_clip: float,
    seed: int,
    group_by_length: bool = True,
    on_pass_end: Optional[Callable[[int, int], None]] = None,
    log_every: int = 50,
) -> Dict[str, Any]:
    """`steps` AdamW steps of `batch_size` pairs, reshuffled at every pass
    (`pass_batches`), linear warm-up over `warmup` of the steps then linear
    decay to 0, gradient norm clipped at `grad_clip`. `on_pass_end(pass,
    step)` runs after every full pass."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
         "weight_decay": weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
         "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=lr)
    schedule = get_linear_schedule_with_warmup(optimizer, int(round(warmup * steps)), steps)
    rng = random.Random(seed)
    y = torch.tensor(list(targets), dtype=torch.long)
    lengths = [len(x) for x in features]
    step = passes = seen = 0
    losses: List[float] = []
    pass_losses: List[float] = []
    start = time.perf_counter()
    model.train()
    while step < steps and features:
        run: List[float] = []
        batches = pass_batches(lengths, batch_size, rng, group_by_length)
        for idx in batches:
            batch = collate([features[i] for i in idx], pad_id)
            out = model(**batch, labels=y[idx])
            out.loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            seen += len(idx)
            run.append(out.loss.item())
            if log_every and step % log_every == 0:
                print(f"step {step}/{steps} loss {statistics.mean(run[-log_every:]):.4f}", flush=True)
            if step >= steps:
                break
        if len(run) == len(batches):  # a full pass
            passes += 1
            if on_pass_end is not None and step < steps:  # the last is scored anyway
                on_pass_end(passes, step)
                model.train()
        losses.extend(run)
        pass_losses.append(statistics.mean(run))
    return {
        "steps": step,
        "full_passes": passes,
        "passes": seen / len(features) if features else 0.0,
        "pairs_seen": seen,
        "seconds": time.perf_counter() - start,
        "mean_loss_per_pass": [round(x, 5) for x in pass_losses],
        "last_loss": round(losses[-1], 5) if losses else None,
    }


def predict(model: Any, features: Sequence[List[int]], pad_id: int, batch_size: int) -> Any:
    """Softmax probabilities (numpy, one row per feature), in batches of
    similar length."""
    import numpy
    import torch

    probs = numpy.zeros((len(features), len(CLASSES)), dtype="float32")
    order = sorted(range(len(features)), key=lambda i: len(features[i]))
    model.eval()
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            logits = model(**collate([features[i] for i in idx], pad_id)).logits
            probs[idx] = torch.softmax(logits.float(), dim=-1).numpy()
    return probs


# --- predictions on Docs, scored by the project's scorer -------------------------------


def pair_scores(prob_row: Optional[Sequence[float]], mode: str) -> Dict[str, float]:
    """{CPR label: score} for one pair: the softmax probabilities ("probability")
    or the argmax decision as 1.0 / 0.0 ("argmax"); a skipped pair (None) 0.0."""
    if prob_row is None:
        return {label: 0.0 for label in EVAL_LABELS}
    if mode == "argmax":
        best = CLASSES[max(range(len(CLASSES)), key=lambda j: prob_row[j])]
        return {label: 1.0 if label == best else 0.0 for label in EVAL_LABELS}
    return {label: float(prob_row[CLASSES.index(label)]) for label in EVAL_LABELS}


def annotate(
    refs: Sequence[Any], pairs: Sequence[Pair], probs: Any, mode: str
) -> List[Any]:
    """Examples (predicted Doc, gold Doc): the predicted Doc has the gold Doc's
    tokens and the pairs' scores as `biobert_relations` writes them
    (`doc._.relation_pairs`, `doc._.relations`, `doc._.relation_levels`).
    `probs` rows follow the used (not skipped) pairs in order."""
    from spacy.tokens import Doc
    from spacy.training import Example

    from spacy_biobert.extensions import install_extensions

    install_extensions()
    per_doc: Dict[int, List[Tuple[Pair, Dict[str, float]]]] = {}
    row = 0
    for pair in pairs:
        if pair.skipped is None:
            scores = pair_scores(probs[row], mode)
            row += 1
        else:
            scores = pair_scores(None, mode)
        per_doc.setdefault(pair.doc, []).append((pair, scores))
    examples = []
    for i, ref in enumerate(refs):
        doc = Doc(ref.vocab, words=[t.text for t in ref], spaces=[bool(t.whitespace_) for t in ref])
        doc._.doc_id = ref._.doc_id
        relations: Dict[Tuple[int, int], Dict[str, float]] = {}
        results = []
        for pair, scores in per_doc.get(i, []):
            h, t = pair.head, pair.tail
            key = (h.start, t.start)
            old = relations.get(key)
            relations[key] = scores if old is None else {k: max(v, old[k]) for k, v in scores.items()}
            results.append(
                ((h.start, h.end, h.label_, h.kb_id_), (t.start, t.end, t.label_, t.kb_id_), scores)
            )
        doc._.relations = relations
        doc._.relation_pairs = results
        doc._.kb_relations = {}
        doc._.relation_levels = {label: "mention" for label in EVAL_LABELS}
        examples.append(Example(doc, ref))
    return examples


def score(examples: Iterable[Any], threshold: float = 0.5) -> Dict[str, Any]:
    from spacy_biobert.evaluation.relations import score_relations

    return score_relations(list(examples), threshold, labels=list(EVAL_LABELS))


def evaluate(
    model: Any, refs: Sequence[Any], pairs: Sequence[Pair], features: Sequence[List[int]],
    pad_id: int, batch_size: int, thresholds: Sequence[float],
) -> Dict[str, Any]:
    """Predict the used pairs and score: argmax at 0.5, probabilities at each
    threshold, and the inference time."""
    start = time.perf_counter()
    probs = predict(model, features, pad_id, batch_size)
    seconds = time.perf_counter() - start
    return {
        "argmax": score(annotate(refs, pairs, probs, "argmax"), 0.5),
        "probability": {
            str(t): score(annotate(refs, pairs, probs, "probability"), t) for t in thresholds
        },
        "seconds": seconds,
    }


def pct(scores: Dict[str, Any]) -> str:
    return "/".join(f"{100 * scores[f'rel_micro_{k}']:.2f}" for k in "prf")


# --- main --------------------------------------------------------------------------


def full_run_command(args: argparse.Namespace) -> str:
    return (
        f"python bench/relation_baseline.py {args.train} {args.dev} --model {args.model} "
        f"--passes cfg --batch-size {args.batch_size} --lr {args.lr} --max-length "
        f"{args.max_length} --seed {args.seed} --threads 2 --eval-each-pass"
    )


def main(argv=None) -> Dict[str, Any]:
    import numpy
    import torch
    import transformers

    args = parse_args(argv)
    thresholds = [float(t) for t in args.thresholds.split(",") if t.strip()]
    if args.threads:
        torch.set_num_threads(args.threads)
    random.seed(args.seed)
    numpy.random.seed(args.seed)
    torch.manual_seed(args.seed)

    config = load_config(args.config)
    nlp = make_nlp(config)
    get_candidates = make_candidates(config)
    t0 = time.perf_counter()
    train_docs = read_docs(args.train, nlp, args.limit_docs)
    dev_docs = read_docs(args.dev, nlp, args.limit_docs)
    budget = config_budget(config, train_docs, seed=args.seed)
    train_pairs, train_counts = build_pairs(train_docs, get_candidates)
    dev_pairs, dev_counts = build_pairs(dev_docs, get_candidates)
    print(f"read and paired in {time.perf_counter() - t0:.1f}s: train {train_counts}", flush=True)
    print(f"dev {dev_counts}", flush=True)

    tokenizer, model, source = load_model(args.model, args.marker_tokens)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    used_train = [p for p in train_pairs if p.skipped is None]
    used_dev = [p for p in dev_pairs if p.skipped is None]
    train_x, train_cut = encode_pairs(tokenizer, used_train, args.max_length)
    t_encode = time.perf_counter()
    dev_x, dev_cut = encode_pairs(tokenizer, used_dev, args.max_length)
    encode_seconds = time.perf_counter() - t_encode
    train_counts["inputs"], dev_counts["inputs"] = train_cut, dev_cut
    train_y = [CLASSES.index(p.label) for p in used_train]
    steps_per_pass = math.ceil(len(train_x) / args.batch_size) if train_x else 0
    passes = budget["passes"] if args.passes == "cfg" else float(args.passes)
    steps = max(1, round(passes * steps_per_pass))
    if args.max_steps is not None:
        steps = min(steps, args.max_steps)
    print(
        f"budget: {budget['max_steps']} config steps = {budget['passes']:.3f} passes over "
        f"{budget['train_docs']} train docs ({budget['docs_per_step']:.2f} docs/step); "
        f"baseline: {passes:.3f} passes x {steps_per_pass} steps/pass -> {steps} steps",
        flush=True,
    )

    per_pass: List[Dict[str, Any]] = []

    def on_pass_end(n: int, step: int) -> None:
        if not args.eval_each_pass:
            return
        res = evaluate(model, dev_docs, dev_pairs, dev_x, pad_id, args.eval_batch_size, [0.5])
        per_pass.append(
            {"pass": n, "step": step, "argmax_f": res["argmax"]["rel_micro_f"],
             "probability_0.5_f": res["probability"]["0.5"]["rel_micro_f"]}
        )
        print(f"pass {n} (step {step}): dev argmax P/R/F {pct(res['argmax'])}", flush=True)

    training = train(
        model, train_x, train_y, pad_id=pad_id, steps=steps, batch_size=args.batch_size,
        lr=args.lr, warmup=args.warmup, weight_decay=args.weight_decay,
        grad_clip=args.grad_clip, seed=args.seed, group_by_length=args.group_by_length,
        on_pass_end=on_pass_end,
    )
    result_dev = evaluate(
        model, dev_docs, dev_pairs, dev_x, pad_id, args.eval_batch_size, thresholds
    )
    words = sum(1 for doc in dev_docs for t in doc if not t.is_space)
    model_seconds = result_dev.pop("seconds")
    seconds = model_seconds + encode_seconds
    result = {
        "settings": {
            **{k: v for k, v in vars(args).items()},
            "model_source": source,
            "classes": list(CLASSES),
            "markers": {"chemical": CHEMICAL_MARKER, "gene": GENE_MARKER,
                        "as": args.marker_tokens},
            "candidates": repr(get_candidates),
            "steps": steps,
            "passes_requested": passes,
            "precision": "fp32",
            "device": "cpu",
        },
        "budget": budget,
        "counts": {"train": train_counts, "dev": dev_counts},
        "training": training,
        "per_pass_dev": per_pass,
        "dev": result_dev,
        "inference": {
            "pairs": len(dev_x),
            "docs": len(dev_docs),
            "words": words,
            # word pieces of the anonymised sentences, then the forward passes
            "seconds_encoding": round(encode_seconds, 3),
            "seconds_model": round(model_seconds, 3),
            "seconds": round(seconds, 3),
            "pairs_per_second": round(len(dev_x) / seconds, 1) if seconds else None,
            "words_per_second": round(words / seconds, 1) if seconds else None,
        },
        "full_run_command": full_run_command(args),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    print(
        f"trained {training['steps']} steps ({training['passes']:.3f} passes) in "
        f"{training['seconds']:.1f}s; dev inference {result['inference']['pairs_per_second']} "
        f"pairs/s, {result['inference']['words_per_second']} words/s"
    )
    print(f"dev micro P/R/F1 over CPR:3,4,5,6,9, argmax: {pct(result_dev['argmax'])}")
    for t, s in result_dev["probability"].items():
        print(f"dev micro P/R/F1, softmax probability >= {t}: {pct(s)}")
    for label, s in result_dev["argmax"]["rel_micro_per_type"].items():
        print(f"  {label}: P/R/F1 {100 * s['p']:.2f}/{100 * s['r']:.2f}/{100 * s['f']:.2f}")
    print(f"wrote {out}")
    print(f"full run: {result['full_run_command']}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
