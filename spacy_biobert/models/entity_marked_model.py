"""The document-level pair-aware relation model
(`spacy-biobert.EntityMarkedRelationModel.v1`): every mention of a document is
marked once, the marked document is encoded once (in windows when long), and
a pair is classified from its two mentions' embeddings.

`MarkedRelationModel.v1` (models/marked_relation_model.py) encodes each
candidate pair in a sequence of its own. For BC5CDR's document-level CID
relation, where the candidates are every Chemical x Disease mention pair of an
abstract (often hundreds), one encoder pass per pair is unaffordable. This
model follows ATLOP (Zhou et al. 2021, "Document-Level Relation Extraction
with Adaptive Thresholding and Localized Context Pooling"): entity markers
around every mention, one encoder pass per document, each mention embedded at
its opening marker, a pair scored from its head and tail embeddings. Drop-in
for `biobert_relations`: input `(docs, candidates)`, output (n_pairs, n_labels)
logits, pairs in the order given, doc after doc; the component pools mention
pairs per concept pair (logsumexp) for document-level labels.

1. Marking ("typed_punct", the markers of MarkedRelationModel's head): every
   distinct mention among the doc's candidates (one per (start, end, label))
   becomes `@ * <type> * <text> @`, the type word being the label
   lower-cased or what `type_words` maps it to. Markers are inserted by
   character offsets (the marking machinery of marked_relation_model: the
   same bracket order where markers meet, closing before opening at one
   offset, the outer span opening first and the inner closing first), never
   found by searching the text, so a text that already holds "@" or "*" is
   marked like any other.
2. Wordpieces: the marked document is tokenized once (the upstream's fast
   tokenizer, no special tokens); `char_to_token` gives each mention's
   opening-marker wordpiece (and, with `context="between"`, its closing
   one).
3. Windows: a document longer than `max_length` less the special tokens is
   split into windows of that many wordpieces, `stride` apart (3/4 of a window
   by default; the last one ends at the document's end). Each mention takes
   its vector from the window in which its opening marker has the most
   context on its nearer side (a document edge counting as unlimited context):
   the most centred. Only windows some mention takes (or, with
   `context="between"`, some pair pools) are encoded. Each window gets the
   tokenizer's own special tokens (`build_inputs_with_special_tokens`).
4. Encoding: `SharedTransformer` (models/shared_transformer.py), the
   `biobert` component's own weights, over the windows of a batch in chunks of
   `max_sequences_per_batch` (sorted by length, so chunks pad little). In
   training, with `recompute_chunks` (the default), a chunk is encoded
   without keeping its activations and encoded again in the backward pass,
   with the random state (dropout) of its first pass, as MarkedRelationModel
   does: memory holds one chunk's activations whatever the size of the
   batch, for one more encoder forward per chunk. Without it every chunk's
   activations are kept until the backward pass (ChemProt, batches of 1,500
   padded tokens: 9.1 GB peak RSS on MiniLM-L6). Either way the gradient
   goes to the shared weights, which `biobert`'s `finish_update` applies.
5. A pair is [h; t; h * t] (h, t: its head's and tail's mention vectors),
   or [h; t; h * t; c] with `context="between"` (below), fed to the scorer
   of MarkedRelationModel (Relu with layer norm and dropout, then Linear):
   one logit per label. A mention serves many pairs, so its gradient is the
   sum over them (scattered with `scatter_add`).

Pair context (`context`, "none" by default: the model as first measured).
h and t are mention-centred: nothing in [h; t; h * t] is specific to the
pair, and on ChemProt, where a sentence holds several chemicals and genes,
that scored below RelationModel.v2, which pools the pair's context. ATLOP's
localized context pooling would need the encoder's attention maps, which the
spacy-transformers wrapper does not give cheaply; "between" is the cheap
stand-in: c is the mean of the hidden states of the wordpieces strictly
between the first mention's closing marker and the second one's opening
marker (in text order, whichever of head and tail comes first; other
mentions' markers in between included), taken in one window: the head's
window if it holds the whole range, else the tail's, else the window of the
doc holding most of the range (encoded for it if no mention takes it), of
which only the part inside is pooled. Adjacent, nested or overlapping
mentions have no wordpiece between them: c is zeros. The gradient of c is
spread evenly over its range's hidden states.

Left out of ATLOP: localized context pooling (the attention of the head and
the tail over the document, which would need the encoder's attention maps
through the spacy-transformers wrapper, for every window; `context="between"`
is the cheap stand-in), the entity-level embedding (logsumexp over an
entity's mentions: here the component pools pair logits per concept
instead), the grouped bilinear classifier (here the Relu-Linear scorer over
the pair vector) and the adaptive-threshold loss (the component trains
independent sigmoids with a fixed threshold).

Edge cases: a doc without candidates contributes no rows (a batch without any
gives a (0, n_labels) array). A pair of one span with itself (same offsets and
label; `EntityPairs` never proposes one) is scored from the same vector twice,
not skipped. Two spans with the same offsets and different labels are two
mentions, both marked. A pair whose mention lost its opening marker in
tokenization (a tokenizer that drops "@"; none of the BERT family does) gets
`SKIPPED_LOGIT`, no gradient, and is counted in `model.skipped`; with
`context="between"`, a lost closing marker (same tokenizers) leaves the pair
scored with c = 0.

Cost: one encoder pass per window of each document with candidates (a PubMed
abstract: one or two windows, whatever its number of pairs), on top of the
document pass `biobert` makes for its listeners, instead of one per pair.
"between" adds no pass for a doc of one window; a longer one may have a
window encoded only for the pairs that pool in it.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc, Span
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from ..errors import Errors
from .marked_relation_model import (
    _MIN_LENGTH,
    SKIPPED_LOGIT,
    SkipCountingModel,
    _check_choice,
    _check_int,
    _Event,
    _prefix_length,
    build_pair_classifier,
    check_type_words,
    encode_chunk,
    encoder_max_length,
    fast_tokenizer,
    init_pair_classifier,
    pair_model_inputs,
    render_events,
    type_word,
    wordpiece_batch,
)
from .pairs import Candidates
from .relation_model import RelationInput

logger = logging.getLogger("spacy_biobert.relations")

MARKINGS = ("typed_punct",)
CONTEXTS = ("none", "between")
MentionKey = Tuple[int, int, str]  # (start, end, label) of a span


@registry.architectures("spacy-biobert.EntityMarkedRelationModel.v1")
def create_entity_marked_relation_model(
    encoder: Model,
    marking: str = "typed_punct",
    type_words: Optional[Dict[str, str]] = None,
    hidden_width: int = 256,
    dropout: float = 0.1,
    max_length: Optional[int] = None,
    stride: Optional[int] = None,
    max_sequences_per_batch: Optional[int] = 8,
    context: str = "none",
    recompute_chunks: bool = True,
    nO: Optional[int] = None,
) -> Model[RelationInput, Floats2d]:
    """Score the candidate pairs of each doc from one encoding of the doc with
    every mention marked: input `(docs, candidates)`, output (n_pairs_in_batch,
    n_labels) logits, pairs in the order given, doc after doc.

    encoder: spacy-biobert.SharedTransformer.v1, the `biobert` component's
        encoder (its weights, not a copy).
    marking: "typed_punct" (`@ * type * mention @`).
    type_words: entity label -> word in the markers; labels not in it are
        lower-cased. None: every label lower-cased.
    hidden_width, dropout: the classifier's hidden layer.
    max_length: wordpieces per window, special tokens included; None: what
        the encoder takes (the tokenizer's model_max_length, at most the
        model's max_position_embeddings).
    stride: wordpieces between the starts of two windows of a long doc, at
        most a window; None: 3/4 of a window.
    max_sequences_per_batch: windows encoded at once; None = all of a batch.
    context: "none" (a pair is [h; t; h * t]) or "between" ([h; t; h * t; c],
        c the mean hidden state of the text between the two mentions; see
        the module docstring).
    recompute_chunks: in training, keep no chunk's activations between the
        forward and the backward pass (encode each chunk again, with the same
        dropout, in the backward pass): memory of one chunk for one more
        encoder forward per chunk. False keeps them (faster; memory grows
        with the windows of a batch). The gradients are the same.
    nO: number of labels; set by the component at initialize.
    """
    _check_choice("marking", MARKINGS, marking)
    _check_choice("context", CONTEXTS, context)
    if max_length is not None:
        _check_int("max_length", max_length, _MIN_LENGTH, f"None or an integer >= {_MIN_LENGTH}")
    if stride is not None:
        _check_int("stride", stride, 1, "None or an integer >= 1")
        if max_length is not None and stride > max_length:
            raise ValueError(
                Errors.E234.format(
                    what="stride", expected=f"None or at most max_length ({max_length})", value=stride
                )
            )
    if max_sequences_per_batch is not None:
        _check_int("max_sequences_per_batch", max_sequences_per_batch, 1, "None or an integer >= 1")
    check_type_words(type_words)
    return build_pair_classifier(
        EntityMarkedRelationModel, "biobert-entity-marked-relation-model", _forward, _init, encoder,
        hidden_width=hidden_width, dropout=dropout, nO=nO, recompute_chunks=recompute_chunks,
        attrs={
            "marking": marking,
            "type_words": dict(type_words or {}),
            "max_length": max_length,
            "stride": stride,
            "max_sequences_per_batch": max_sequences_per_batch,
            "context": context,
        },
    )


class EntityMarkedRelationModel(SkipCountingModel):
    """`spacy-biobert.EntityMarkedRelationModel.v1`."""


def _init(model: Model, X: Any = None, Y: Any = None) -> Model:
    # [h; t; h * t], and the context between them: [h; t; h * t; c]
    return init_pair_classifier(model, 4 if model.attrs["context"] == "between" else 3)


# --- marking ------------------------------------------------------------------------


@dataclass
class MarkedDoc:
    """A doc's text with every mention of its candidates marked: the mentions
    (keys, in marker order) and the offsets in `text` of each one's opening
    and closing markers."""

    text: str
    mentions: List[MentionKey]
    opening: List[int]
    closing: List[int]


def mention_key(span: Span) -> MentionKey:
    return (span.start, span.end, span.label_)


def mark_doc(doc: Doc, pairs: Candidates, *, type_words: Optional[Dict[str, str]] = None) -> MarkedDoc:
    """The text of `doc` with typed markers around every distinct mention of
    `pairs` (see the module docstring)."""
    type_words = type_words or {}
    spans = {mention_key(span): span for pair in pairs for span in pair}
    # Marker order: the rank breaks ties between spans with the same offsets.
    keys = sorted(spans, key=lambda k: (spans[k].start_char, -spans[k].end_char, k[2]))
    events: List[_Event] = []
    for rank, key in enumerate(keys):
        span = spans[key]
        opening = f"@ * {type_word(span.label_, type_words)} *"
        # As in mark_pair: at one offset closings come first; the outer
        # (longer) span opens first, the inner (later-starting) closes first.
        events.append(_Event(span.start_char, 1, (-span.end_char, rank), opening, f"open {rank}"))
        events.append(_Event(span.end_char, 0, (-span.start_char, -rank), "@", f"close {rank}"))
    events.sort(key=lambda e: (e.pos, e.kind, e.order))
    text, found = render_events(doc.text, [(0, len(doc.text))], events)
    ranks = range(len(keys))
    return MarkedDoc(
        text, keys, [found[f"open {rank}"] for rank in ranks], [found[f"close {rank}"] for rank in ranks]
    )


@dataclass
class MentionBatch:
    """The encoder input of a batch: the windows to encode (wordpiece ids,
    special tokens included) and, for every mention (batch order), the window
    it takes its vector from and the position of its opening marker there
    (-1, -1: its marker was lost, counted in `skipped`). Every pair (batch
    order) is a head and a tail mention index and, with `context="between"`,
    the window and the range [start, end) of positions it pools (-1, 0, 0:
    none, c = 0)."""

    sequences: List[List[int]]
    origins: List[Tuple[int, int]]  # per sequence: (doc in the batch, first wordpiece)
    window: numpy.ndarray  # (n_mentions,) int
    position: numpy.ndarray  # (n_mentions,) int
    head: numpy.ndarray  # (n_pairs,) int
    tail: numpy.ndarray  # (n_pairs,) int
    context_window: numpy.ndarray  # (n_pairs,) int
    context_start: numpy.ndarray  # (n_pairs,) int
    context_end: numpy.ndarray  # (n_pairs,) int
    n_windows: int = 0  # windows the docs were split into, encoded or not
    skipped: Counter = field(default_factory=Counter)


def mark_mentions(
    docs: Sequence[Doc],
    candidates: Sequence[Candidates],
    tokenizer: Any,
    *,
    type_words: Optional[Dict[str, str]] = None,
    max_length: int = 512,
    stride: Optional[int] = None,
    context: str = "none",
) -> MentionBatch:
    """The windows of the marked docs, where each mention is in them and,
    with `context="between"`, what each pair pools."""
    n_special = len(tokenizer.build_inputs_with_special_tokens([]))
    prefix = _prefix_length(tokenizer)
    size = max_length - n_special
    if stride is None:
        stride = max(1, size * 3 // 4)
    if stride > size:
        raise ValueError(Errors.E241.format(stride=stride, size=size, max_length=max_length))
    marked: List[MarkedDoc] = []
    heads: List[int] = []
    tails: List[int] = []
    n_mentions = 0  # mentions are numbered across the batch
    for doc, pairs in zip(docs, candidates):
        if not pairs:
            continue
        m = mark_doc(doc, pairs, type_words=type_words)
        index = {key: n_mentions + i for i, key in enumerate(m.mentions)}
        heads.extend(index[mention_key(h)] for h, _ in pairs)
        tails.extend(index[mention_key(t)] for _, t in pairs)
        marked.append(m)
        n_mentions += len(m.mentions)
    n_pairs = len(heads)
    batch = MentionBatch(
        sequences=[],
        origins=[],
        window=numpy.full((n_mentions,), -1, dtype="int64"),
        position=numpy.full((n_mentions,), -1, dtype="int64"),
        head=numpy.asarray(heads, dtype="int64"),
        tail=numpy.asarray(tails, dtype="int64"),
        context_window=numpy.full((n_pairs,), -1, dtype="int64"),
        context_start=numpy.zeros((n_pairs,), dtype="int64"),
        context_end=numpy.zeros((n_pairs,), dtype="int64"),
    )
    if not marked:
        return batch
    encoding = tokenizer(
        [m.text for m in marked],
        add_special_tokens=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    row = 0  # the first mention of the doc, in the batch
    pair = 0  # the first pair of the doc, in the batch
    docs_marked = [i for i, pairs in enumerate(candidates) if pairs]
    for k, m in enumerate(marked):
        ids = encoding["input_ids"][k]
        starts = window_starts(len(ids), size, stride)
        batch.n_windows += len(starts)
        # window of this doc -> its sequence, added to the batch at first use
        sequence = partial(_sequence, batch, {}, tokenizer, ids, starts, size, docs_marked[k])
        windows = []  # per mention of the doc: its window of the doc (-1: none)
        for i, offset in enumerate(m.opening):
            p = encoding.char_to_token(k, offset)
            if p is None:  # a tokenizer that drops the marker character
                batch.skipped["marker_not_tokenized"] += 1
                windows.append(-1)
            else:
                w = best_window(p, starts, size, len(ids))
                windows.append(w)
                batch.window[row + i] = sequence(w)
                batch.position[row + i] = prefix + p - starts[w]
        n_doc_pairs = len(candidates[docs_marked[k]])
        if context == "between":
            opening = [encoding.char_to_token(k, offset) for offset in m.opening]
            closing = [encoding.char_to_token(k, offset) for offset in m.closing]
            for j in range(pair, pair + n_doc_pairs):
                h, t = int(batch.head[j]) - row, int(batch.tail[j]) - row
                if windows[h] < 0 or windows[t] < 0:
                    continue  # the pair is skipped
                span = between_range(opening[h], closing[h], opening[t], closing[t])
                if span is None:
                    continue  # no wordpiece between: c = 0
                a, b = span
                w = context_window(a, b, windows[h], windows[t], starts, size)
                s = starts[w]
                batch.context_window[j] = sequence(w)
                batch.context_start[j] = prefix + max(a, s) - s
                batch.context_end[j] = prefix + min(b, s + size) - s
        row += len(m.mentions)
        pair += n_doc_pairs
    return batch


def _sequence(
    batch: MentionBatch,
    used: Dict[int, int],
    tokenizer: Any,
    ids: List[int],
    starts: List[int],
    size: int,
    doc_index: int,
    w: int,
) -> int:
    """The sequence of window `w` of a doc (wordpieces `ids`, windows
    `starts`), added to the batch unless the doc's `used` windows hold it."""
    if w not in used:
        used[w] = len(batch.sequences)
        s = starts[w]
        batch.sequences.append(tokenizer.build_inputs_with_special_tokens(ids[s : s + size]))
        batch.origins.append((doc_index, s))
    return used[w]


def between_range(
    open_a: Optional[int], close_a: Optional[int], open_b: Optional[int], close_b: Optional[int]
) -> Optional[Tuple[int, int]]:
    """The wordpieces [start, end) strictly between two mentions, given by the
    positions of their opening and closing markers: after the closing marker
    of the one that comes first, before the opening marker of the other. None
    when there is none (adjacent, nested or overlapping mentions, or a marker
    lost in tokenization)."""
    if None in (open_a, close_a, open_b, close_b):
        return None
    if close_a < open_b:
        start, end = close_a + 1, open_b
    elif close_b < open_a:
        start, end = close_b + 1, open_a
    else:
        return None
    return (start, end) if start < end else None


def context_window(start: int, end: int, head: int, tail: int, starts: List[int], size: int) -> int:
    """The window (index in `starts`) a pair pools the range [start, end)
    from: its head's window if that holds the whole range, else its tail's,
    else the window holding most of it (the first of equals)."""
    for w in (head, tail):
        if starts[w] <= start and end <= starts[w] + size:
            return w
    overlap = [min(end, s + size) - max(start, s) for s in starts]
    return overlap.index(max(overlap))


def window_starts(n: int, size: int, stride: int) -> List[int]:
    """Starts of windows of `size` covering [0, n), `stride` apart; the last
    ends at n, so every window is full (a sequence of at most `size`: one)."""
    if n <= size:
        return [0]
    return list(range(0, n - size, stride)) + [n - size]


def best_window(position: int, starts: List[int], size: int, n: int) -> int:
    """The window (index in `starts`) holding `position` with the most context
    on its nearer side; a side at the document's edge has unlimited context.
    The first of equals."""
    return best_window_of_range(position, position, starts, size, n)


def best_window_of_range(lo: int, hi: int, starts: List[int], size: int, n: int) -> int:
    """The window (index in `starts`) holding positions [lo, hi] with the most
    context on its nearer side (a document edge counting as unlimited); -1
    when no window holds both ends. The first of equals."""
    best, best_context = -1, -1.0
    for w, s in enumerate(starts):
        e = min(s + size, n)
        if not (s <= lo and hi < e):
            continue
        left = lo - s if s > 0 else float("inf")
        right = e - 1 - hi if e < n else float("inf")
        context = min(left, right)
        if context > best_context:
            best, best_context = w, context
    return best


# --- the model's forward ----------------------------------------------------------------


def _forward(model: Model, X: RelationInput, is_train: bool) -> Tuple[Floats2d, Callable]:
    docs, candidates = pair_model_inputs(X, "E240")
    encoder = model.get_ref("encoder")
    scorer = model.get_ref("scorer")
    ops = model.ops
    xp = ops.xp
    nO = model.get_ref("output").get_dim("nO")
    n_pairs = sum(len(pairs) for pairs in candidates)
    if n_pairs == 0:
        return ops.alloc2f(0, nO), lambda dY: []
    tokenizer = fast_tokenizer(encoder)
    batch = mark_mentions(
        docs,
        candidates,
        tokenizer,
        type_words=model.attrs["type_words"],
        max_length=encoder_max_length(model, encoder, tokenizer),
        stride=model.attrs["stride"],
        context=model.attrs["context"],
    )
    width = encoder.get_dim("nO")
    between = model.attrs["context"] == "between"
    M, C, chunks = _mention_vectors(model, encoder, batch, tokenizer, width, is_train)
    # Pairs whose mentions both have a vector; the others keep SKIPPED_LOGIT.
    found = batch.window >= 0
    scored = numpy.flatnonzero(found[batch.head] & found[batch.tail])
    if len(scored) < n_pairs:
        counts = getattr(model, "skipped", None)
        if counts is not None:  # pairs, by reason (batch.skipped counts mentions)
            counts["marker_not_tokenized"] += n_pairs - len(scored)
        logger.debug(
            "entity-marked relation pass: %d of %d pairs skipped (mentions: %s)",
            n_pairs - len(scored),
            n_pairs,
            dict(batch.skipped),
        )
    Y = xp.full((n_pairs, nO), SKIPPED_LOGIT, dtype="float32")
    if not len(scored):
        return Y, lambda dY: []
    heads = ops.asarray1i(batch.head[scored])
    tails = ops.asarray1i(batch.tail[scored])
    Mh, Mt = M[heads], M[tails]
    rows = ops.asarray1i(scored)
    parts = [Mh, Mt, Mh * Mt] + ([C[rows]] if between else [])
    F = ops.asarray2f(xp.concatenate(parts, axis=1))
    if not is_train:
        Y[rows] = scorer.predict(F)
        return Y, lambda dY: []
    Z, backprop_scorer = scorer(F, is_train)
    Y[rows] = Z

    def backprop(dY: Floats2d) -> List[Doc]:
        dF = backprop_scorer(xp.ascontiguousarray(dY[rows]))
        dM = mention_gradient(ops, dF, heads, tails, Mh, Mt, M.shape[0])
        dC = None
        if between:  # per pair of the batch (skipped ones: zeros)
            dC = ops.alloc2f(n_pairs, width)
            dC[rows] = dF[:, 3 * width :]
        for chunk in chunks:
            members, seqs, positions, shape, backprop_encoder = chunk[:5]
            # Flat (sequence, position) indices: scatter, so that two mentions
            # at one position (never with "@" markers) would add up.
            dH = xp.zeros((shape[0] * shape[1], shape[2]), dtype="float32")
            ops.scatter_add(dH, seqs * shape[1] + positions, dM[members])
            dH = dH.reshape(shape)
            if dC is not None:
                dH += spread_context(ops, dC, shape, *chunk[5:])
            backprop_encoder(dH)
        return []

    return Y, backprop


def _mention_vectors(
    model: Model, encoder: Model, batch: MentionBatch, tokenizer: Any, width: int, is_train: bool
) -> Tuple[Floats2d, Optional[Floats2d], List[Tuple[Any, ...]]]:
    """(n_mentions, width): each mention's hidden state at its opening marker
    (zeros for a mention without one); with `context="between"`, (n_pairs,
    width): each pair's mean hidden state over its range (zeros without one),
    else None; in training, per chunk, what the backward pass needs."""
    from thinc.api import get_array_module

    ops = model.ops
    between = model.attrs["context"] == "between"
    recompute = is_train and model.attrs.get("recompute_chunks", False)
    M = ops.alloc2f(len(batch.window), width)
    C = ops.alloc2f(len(batch.head), width) if between else None
    order = sorted(range(len(batch.sequences)), key=lambda i: len(batch.sequences[i]))
    size = model.attrs["max_sequences_per_batch"] or max(len(order), 1)
    local = numpy.full((len(batch.sequences),), -1, dtype="int64")  # sequence -> row in its chunk
    chunks = []
    for start in range(0, len(order), size):
        chunk = order[start : start + size]
        local[chunk] = numpy.arange(len(chunk))
        members = numpy.flatnonzero(numpy.isin(batch.window, chunk))
        wordpieces = wordpiece_batch([batch.sequences[i] for i in chunk], tokenizer)
        H, backprop_encoder = encode_chunk(encoder, wordpieces, is_train, recompute)
        hx = get_array_module(H)
        seqs = hx.asarray(local[batch.window[members]])
        positions = hx.asarray(batch.position[members])
        M[ops.asarray1i(members)] = ops.asarray2f(H[seqs, positions].astype("float32"))
        saved: Tuple[Any, ...] = ()
        if between:
            pairs = numpy.flatnonzero(numpy.isin(batch.context_window, chunk))
            ranges = (
                local[batch.context_window[pairs]],
                batch.context_start[pairs],
                batch.context_end[pairs],
            )
            if len(pairs):
                C[ops.asarray1i(pairs)] = ops.asarray2f(segment_means(H, *ranges))
            saved = (ops.asarray1i(pairs), *(ops.asarray1i(r) for r in ranges))
        if is_train:
            chunks.append(
                (
                    ops.asarray1i(members),
                    ops.asarray1i(seqs),
                    ops.asarray1i(positions),
                    H.shape,
                    backprop_encoder,
                    *saved,
                )
            )
        del H  # nothing of the chunk's encoding is kept (but its backprop, if kept)
    return M, C, chunks


def segment_means(H: Any, seqs: Any, starts: Any, ends: Any) -> Any:
    """(n, width) float32: the mean of H[seqs[i], starts[i] : ends[i]] for
    each i (non-empty ranges), from cumulative sums over the positions (in
    float64, so that a short range late in a long window loses nothing to
    cancellation)."""
    from thinc.api import get_array_module

    hx = get_array_module(H)
    n, length, width = H.shape
    sums = hx.zeros((n, length + 1, width), dtype="float64")
    sums[:, 1:] = hx.cumsum(H, axis=1, dtype="float64")
    seqs, starts, ends = (hx.asarray(a) for a in (seqs, starts, ends))
    means = (sums[seqs, ends] - sums[seqs, starts]) / (ends - starts)[:, None]
    return means.astype("float32")


def spread_context(ops: Any, dC: Floats2d, shape: Tuple[int, ...], pairs, seqs, starts, ends) -> Any:
    """The gradient of a chunk's hidden states (`shape`) from that of the
    context vectors `dC` (per pair of the batch): each of the chunk's `pairs`
    gives dC / len to every position of its range. A difference table (+g at
    a range's start, -g at its end), summed along the positions (in float64,
    so that what leaves a range cancels what entered it)."""
    xp = ops.xp
    n, length, width = shape
    table = xp.zeros((n * (length + 1), width), dtype="float64")
    if len(pairs):
        share = dC[pairs].astype("float64") / (ends - starts)[:, None]
        ops.scatter_add(table, seqs * (length + 1) + starts, share)
        ops.scatter_add(table, seqs * (length + 1) + ends, -share)
    table = xp.cumsum(table.reshape(n, length + 1, width), axis=1)
    return table[:, :length].astype("float32")


def mention_gradient(ops, dF, heads, tails, Mh, Mt, n_mentions: int) -> Floats2d:
    """The gradient of the mention vectors from that of the pair vectors
    [h; t; h * t] (the first columns of dF; a context part after them is not
    the mentions'): a mention serving several pairs gets the sum of its share
    of each."""
    width = Mh.shape[1]
    d_product = dF[:, 2 * width : 3 * width]
    d_head = dF[:, :width] + d_product * Mt
    d_tail = dF[:, width : 2 * width] + d_product * Mh
    dM = ops.alloc2f(n_mentions, width)
    ops.scatter_add(dM, heads, d_head)
    ops.scatter_add(dM, tails, d_tail)
    return dM
