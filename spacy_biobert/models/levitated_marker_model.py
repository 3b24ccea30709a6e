"""Pair-aware relations with one text pass per document: levitated markers
(`spacy-biobert.LevitatedMarkerRelationModel.v1`).

`MarkedRelationModel.v1` encodes every candidate pair in a sequence of its
own: on BC5CDR (closest mention pair per concept pair) its marked pairs give
the encoder 3.3 to 3.8 times the text's wordpieces, on ChemProt 3.6 times
(`bench/training_data.py`). This model follows the packed levitated markers
of PL-Marker (Ye et al. 2022, "Packed Levitated Marker for Entity and
Relation Extraction"): the document's wordpieces are encoded once, and each
candidate pair adds four marker tokens after them, one at each end of its
head and of its tail:

- a marker takes the *position id* of the wordpiece it marks (the first or
  the last of its mention), so the position embedding ties it to its
  mention; head markers are "@", tail markers "#" (single wordpieces of
  BERT vocabularies; another vocabulary that splits them is E251);
- the attention mask (3-d, per sequence) lets the text attend to the text
  only, and a marker to the text and to the three other markers of its pair:
  no marker sees another pair's markers, and the text's hidden states are
  exactly those of the text encoded alone (tested);
- a pair is [head start; head end; tail start; tail end], the four markers'
  last hidden states, scored by MarkedRelationModel's scorer (Relu with layer
  norm and dropout, then Linear): one logit per label.

Packing: a doc's pairs are grouped into sequences of at most
`max_pairs_per_sequence` pairs (4 markers each) after the text, which each
sequence repeats; the markers do not use up positions, so the text window
can be as long as the encoder takes. A doc longer than `max_length` less the
special tokens is split into windows `stride` apart (3/4 of a window by
default), and each pair goes to the window holding both its mentions where
they sit most centred; a pair wider than any window is not scored
(`SKIPPED_LOGIT`, counted in `model.skipped`), as is a pair whose mention has
no wordpiece (a tokenizer that drops its characters).

Encoding: `SharedTransformer` (the `biobert` component's own weights) over
the sequences of a batch in chunks of `max_sequences_per_batch`, with
`recompute_chunks` as in the other marked models (default true: a chunk's
activations are not kept, it is encoded again in the backward pass with the
same dropout). Cost per document: one pass over the text plus 4 wordpieces
a pair, the text repeated in each sequence of `max_pairs_per_sequence` pairs
(`bench/training_data.py`, BC5CDR train: closest pairs 1.31 times the text;
every mention pair 4.82, or 2.52 with 128 pairs a sequence), instead of one
sequence per pair. The text part repeats what the
`biobert` pass computes for its listeners.

At prediction that repetition is skipped where it can be: since the text
never attends to the markers, the markers only need each layer's input
states of the text, which the `biobert` pass leaves on the doc when its
transformer keeps every layer's output (`transformer_config =
{"output_hidden_states": true}` under `[components.biobert.model]`). Then
the markers go through the encoder's layers alone, attending to the text's
states of each layer (keys and values computed from them) and to their own
pair: per layer, two projections of the text and a full layer for the
markers, where the separate pass costs a full layer for both (about a sixth
of it for the text). The result is the separate pass's (tested), on
`biobert`'s own windows (for a pair in two, the one where it sits most
centred, by the separate pass's rule); a pair whose mentions share no window of it is
encoded by the separate pass, and a doc without those states or an encoder
other than BERT's layer layout sends the whole batch there.

Edge cases: a doc without candidates contributes no rows; a pair of nested
or overlapping mentions, or a pair of one span with itself, is scored like
any other (its markers share positions, which is harmless); a marker string
already in the text changes nothing (markers are never inserted into the
text).
"""

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from ..errors import Errors
from .entity_marked_model import best_window_of_range, window_starts
from .marked_relation_model import (
    _MIN_LENGTH,
    SKIPPED_LOGIT,
    SkipCountingModel,
    _check_int,
    _prefix_length,
    build_pair_classifier,
    encode_chunk,
    encoder_max_length,
    fast_tokenizer,
    init_pair_classifier,
    pair_model_inputs,
)
from .pairs import Candidates
from .relation_model import RelationInput
from .shared_transformer import PositionedWordpieces

logger = logging.getLogger("spacy_biobert.relations")

# The four markers of a pair, in sequence order: head start, head end, tail start, tail end.
MARKERS = ("@", "@", "#", "#")
N_MARKERS = len(MARKERS)


@registry.architectures("spacy-biobert.LevitatedMarkerRelationModel.v1")
def create_levitated_marker_relation_model(
    encoder: Model,
    hidden_width: int = 256,
    dropout: float = 0.1,
    max_length: Optional[int] = None,
    stride: Optional[int] = None,
    max_pairs_per_sequence: int = 32,
    max_sequences_per_batch: Optional[int] = 8,
    recompute_chunks: bool = True,
    nO: Optional[int] = None,
) -> Model[RelationInput, Floats2d]:
    """Score the candidate pairs of each doc from one encoding of its text
    with four levitated markers per pair: input `(docs, candidates)`, output
    (n_pairs_in_batch, n_labels) logits, pairs in the order given, doc after
    doc (see the module docstring).

    encoder: spacy-biobert.SharedTransformer.v1, the `biobert` component's
        encoder (its weights, not a copy).
    hidden_width, dropout: the classifier's hidden layer.
    max_length: text wordpieces per window, special tokens included; None:
        what the encoder takes.
    stride: wordpieces between the starts of two windows of a long doc, at
        most a window; None: 3/4 of a window.
    max_pairs_per_sequence: pairs whose markers share one sequence (each
        sequence repeats the window's text).
    max_sequences_per_batch: sequences encoded at once; None = all of a batch.
    recompute_chunks: in training, encode each chunk again in the backward
        pass instead of keeping its activations (the same gradients).
    nO: number of labels; set by the component at initialize.
    """
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
    _check_int("max_pairs_per_sequence", max_pairs_per_sequence, 1, "an integer >= 1")
    if max_sequences_per_batch is not None:
        _check_int("max_sequences_per_batch", max_sequences_per_batch, 1, "None or an integer >= 1")
    return build_pair_classifier(
        LevitatedMarkerRelationModel, "biobert-levitated-marker-relation-model", _forward, _init,
        encoder, hidden_width=hidden_width, dropout=dropout, nO=nO,
        recompute_chunks=recompute_chunks,
        attrs={
            "max_length": max_length,
            "stride": stride,
            "max_pairs_per_sequence": max_pairs_per_sequence,
            "max_sequences_per_batch": max_sequences_per_batch,
        },
    )


class LevitatedMarkerRelationModel(SkipCountingModel):
    """`spacy-biobert.LevitatedMarkerRelationModel.v1`."""


def _init(model: Model, X: Any = None, Y: Any = None) -> Model:
    return init_pair_classifier(model, N_MARKERS)


# --- packing -------------------------------------------------------------------------


@dataclass
class LevitatedSequence:
    """One encoder sequence: a window's text (special tokens included) and
    the markers of some of its pairs after it."""

    input_ids: List[int]
    position_ids: List[int]
    n_text: int  # the text's wordpieces, special tokens included; markers follow


@dataclass
class LevitatedBatch:
    """The sequences of a batch and, per pair (batch order), its sequence and
    the index there of its first marker (-1, -1: not scored)."""

    sequences: List[LevitatedSequence]
    sequence: numpy.ndarray  # (n_pairs,) int
    first_marker: numpy.ndarray  # (n_pairs,) int
    skipped: Counter = field(default_factory=Counter)


def marker_ids(tokenizer: Any) -> List[int]:
    """The wordpiece id of each of MARKERS (E251 if one is not one wordpiece)."""
    ids = []
    for marker in MARKERS:
        pieces = tokenizer(marker, add_special_tokens=False, verbose=False)["input_ids"]
        if len(pieces) != 1 or pieces[0] == tokenizer.unk_token_id:
            pieces = tokenizer.convert_ids_to_tokens(pieces)
            raise ValueError(Errors.E251.format(marker=marker, pieces=pieces))
        ids.append(pieces[0])
    return ids


def levitate(
    docs: Sequence[Doc],
    candidates: Sequence[Candidates],
    tokenizer: Any,
    *,
    max_length: int = 512,
    stride: Optional[int] = None,
    max_pairs_per_sequence: int = 32,
) -> LevitatedBatch:
    """The encoder sequences of a batch: each window's text, then the four
    markers of up to `max_pairs_per_sequence` of its pairs (see the module
    docstring)."""
    n_special = len(tokenizer.build_inputs_with_special_tokens([]))
    prefix = _prefix_length(tokenizer)
    size = max_length - n_special
    if stride is None:
        stride = max(1, size * 3 // 4)
    if stride > size:
        raise ValueError(Errors.E241.format(stride=stride, size=size, max_length=max_length))
    markers = marker_ids(tokenizer)
    n_pairs = sum(len(pairs) for pairs in candidates)
    batch = LevitatedBatch(
        sequences=[],
        sequence=numpy.full((n_pairs,), -1, dtype="int64"),
        first_marker=numpy.full((n_pairs,), -1, dtype="int64"),
    )
    with_pairs = [i for i, pairs in enumerate(candidates) if pairs]
    if not with_pairs:
        return batch
    encoding = tokenizer(
        [docs[i].text for i in with_pairs],
        add_special_tokens=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    first_row = numpy.cumsum([0] + [len(pairs) for pairs in candidates])
    for k, i in enumerate(with_pairs):
        ids = encoding["input_ids"][k]
        starts = window_starts(len(ids), size, stride)
        # window -> [(pair row, its four wordpieces)], in pair order
        by_window: Dict[int, List[Tuple[int, List[int]]]] = {}
        for j, (head, tail) in enumerate(candidates[i]):
            row = int(first_row[i]) + j
            ends = [
                encoding.char_to_token(k, char)
                for span in (head, tail)
                for char in (span.start_char, span.end_char - 1)
            ]
            if None in ends:
                batch.skipped["mention_not_tokenized"] += 1
                continue
            w = best_window_of_range(min(ends), max(ends), starts, size, len(ids))
            if w < 0:
                batch.skipped["pair_wider_than_a_window"] += 1
                continue
            by_window.setdefault(w, []).append((row, ends))
        for w, pairs in sorted(by_window.items()):
            s = starts[w]
            text = tokenizer.build_inputs_with_special_tokens(ids[s : s + size])
            for first in range(0, len(pairs), max_pairs_per_sequence):
                sequence = LevitatedSequence(list(text), list(range(len(text))), len(text))
                for row, ends in pairs[first : first + max_pairs_per_sequence]:
                    batch.sequence[row] = len(batch.sequences)
                    batch.first_marker[row] = len(sequence.input_ids)
                    sequence.input_ids.extend(markers)
                    sequence.position_ids.extend(prefix + p - s for p in ends)
                batch.sequences.append(sequence)
    return batch


def positioned_wordpieces(sequences: List[LevitatedSequence], tokenizer: Any) -> PositionedWordpieces:
    """The sequences padded on the right, with their attention mask: the text
    attends to the text, a pair's markers to the text and to each other, a
    padding position to the first position only (no row is empty)."""
    n, width = len(sequences), max(len(s.input_ids) for s in sequences)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = numpy.full((n, width), pad, dtype="int64")
    position_ids = numpy.zeros((n, width), dtype="int64")
    mask = numpy.zeros((n, width, width), dtype="float32")
    for i, seq in enumerate(sequences):
        length, text = len(seq.input_ids), seq.n_text
        input_ids[i, :length] = seq.input_ids
        position_ids[i, :length] = seq.position_ids
        mask[i, :length, :text] = 1.0
        for a in range(text, length, N_MARKERS):
            mask[i, a : a + N_MARKERS, a : a + N_MARKERS] = 1.0
        mask[i, length:, 0] = 1.0
    token_types = numpy.zeros_like(input_ids) if "token_type_ids" in tokenizer.model_input_names else None
    return PositionedWordpieces(input_ids, position_ids, mask, token_types)


# --- the model's forward ----------------------------------------------------------------


def _forward(model: Model, X: RelationInput, is_train: bool) -> Tuple[Floats2d, Callable]:
    docs, candidates = pair_model_inputs(X, "E250")
    encoder = model.get_ref("encoder")
    scorer = model.get_ref("scorer")
    ops = model.ops
    xp = ops.xp
    nO = model.get_ref("output").get_dim("nO")
    n_pairs = sum(len(pairs) for pairs in candidates)
    if n_pairs == 0:
        return ops.alloc2f(0, nO), lambda dY: []
    tokenizer = fast_tokenizer(encoder)
    width = encoder.get_dim("nO")
    F = ops.alloc2f(n_pairs, N_MARKERS * width)
    scored = numpy.zeros((n_pairs,), dtype=bool)
    rest = numpy.arange(n_pairs)  # the pairs the separate pass encodes (batch rows)
    if not is_train:  # the text's states of the `biobert` pass, where the docs have them
        upstream = pair_vectors_from_upstream(encoder, docs, candidates, tokenizer)
        if upstream is not None:
            vectors, rest = upstream
            done = numpy.setdiff1d(numpy.arange(n_pairs), rest)
            F[ops.asarray1i(done)] = ops.asarray2f(vectors[done])
            scored[done] = True
    chunks: List[Tuple[Any, ...]] = []
    if len(rest):
        batch = levitate(
            docs,
            only_rows(candidates, rest),
            tokenizer,
            max_length=encoder_max_length(model, encoder, tokenizer),
            stride=model.attrs["stride"],
            max_pairs_per_sequence=model.attrs["max_pairs_per_sequence"],
        )
        if batch.skipped:
            counts = getattr(model, "skipped", None)
            if counts is not None:
                counts.update(batch.skipped)
            logger.debug("levitated relation pass: %d of %d pairs skipped %s",
                         sum(batch.skipped.values()), n_pairs, dict(batch.skipped))
        F_rest, chunks = _pair_vectors(model, encoder, batch, tokenizer, width, is_train)
        encoded = batch.sequence >= 0
        F[ops.asarray1i(rest[encoded])] = F_rest[ops.asarray1i(numpy.flatnonzero(encoded))]
        scored[rest[encoded]] = True
    Y = xp.full((n_pairs, nO), SKIPPED_LOGIT, dtype="float32")
    if not scored.any():
        return Y, lambda dY: []
    rows = ops.asarray1i(numpy.flatnonzero(scored))
    if not is_train:
        Y[rows] = scorer.predict(F[rows])
        return Y, lambda dY: []
    Z, backprop_scorer = scorer(ops.asarray2f(xp.ascontiguousarray(F[rows])), is_train)
    Y[rows] = Z
    rest_rows = ops.asarray1i(rest)

    def backprop(dY: Floats2d) -> List[Doc]:
        dF = ops.alloc2f(n_pairs, N_MARKERS * width)
        dF[rows] = backprop_scorer(xp.ascontiguousarray(dY[rows]))
        dF = dF[rest_rows]  # rows of the separate pass's batch (in training: all)
        for members, seqs, positions, shape, backprop_encoder in chunks:
            # the four marker slices of each member pair, at its four positions
            d_markers = dF[members].reshape(len(members) * N_MARKERS, width)
            dH = xp.zeros((shape[0] * shape[1], shape[2]), dtype="float32")
            ops.scatter_add(dH, seqs * shape[1] + positions, d_markers)
            backprop_encoder(dH.reshape(shape))
        return []

    return Y, backprop


def only_rows(candidates: Sequence[Candidates], rows: Any) -> List[Candidates]:
    """Per doc, its pairs whose batch rows are in `rows` (sorted), in order."""
    kept, first = set(int(r) for r in rows), 0
    out = []
    for pairs in candidates:
        out.append([pair for j, pair in enumerate(pairs) if first + j in kept])
        first += len(pairs)
    return out


def _pair_vectors(
    model: Model, encoder: Model, batch: LevitatedBatch, tokenizer: Any, width: int, is_train: bool
) -> Tuple[Floats2d, List[Tuple[Any, ...]]]:
    """(n_pairs, 4 * width): each pair's four marker states (zeros for a pair
    not scored); in training, per chunk, what the backward pass needs."""
    from thinc.api import get_array_module

    ops = model.ops
    recompute = is_train and model.attrs.get("recompute_chunks", False)
    F = ops.alloc2f(len(batch.sequence), N_MARKERS * width)
    order = sorted(range(len(batch.sequences)), key=lambda i: len(batch.sequences[i].input_ids))
    size = model.attrs["max_sequences_per_batch"] or max(len(order), 1)
    local = numpy.full((len(batch.sequences),), -1, dtype="int64")  # sequence -> row in its chunk
    chunks = []
    for start in range(0, len(order), size):
        chunk = order[start : start + size]
        local[chunk] = numpy.arange(len(chunk))
        members = numpy.flatnonzero(numpy.isin(batch.sequence, chunk))
        wordpieces = positioned_wordpieces([batch.sequences[i] for i in chunk], tokenizer)
        H, backprop_encoder = encode_chunk(encoder, wordpieces, is_train, recompute)
        hx = get_array_module(H)
        # (n_members * 4,): each member's sequence row, and its four marker indices
        seqs = numpy.repeat(local[batch.sequence[members]], N_MARKERS)
        positions = (batch.first_marker[members][:, None] + numpy.arange(N_MARKERS)).ravel()
        states = H[hx.asarray(seqs), hx.asarray(positions)].astype("float32")
        F[ops.asarray1i(members)] = ops.asarray2f(states.reshape(len(members), N_MARKERS * width))
        if is_train:
            chunks.append(
                (ops.asarray1i(members), ops.asarray1i(seqs), ops.asarray1i(positions), H.shape,
                 backprop_encoder)
            )
        del H  # nothing of the chunk's encoding is kept (but its backprop, if kept)
    return F, chunks


# --- prediction from the `biobert` pass -------------------------------------------------


def pair_vectors_from_upstream(
    encoder: Any, docs: Sequence[Doc], candidates: Sequence[Candidates], tokenizer: Any
) -> Optional[Tuple[Any, Any]]:
    """(n_pairs, 4 * width) float32: each pair's four marker states, computed
    against the per-layer text states the `biobert` pass left in
    `doc._.trf_data` (see the module docstring), and the batch rows of the
    pairs left to the separate pass (whose mentions share none of that pass's
    windows; their rows are zeros); None when a doc with pairs lacks those
    states or the encoder's layers are not BERT's (then the separate pass
    encodes every pair)."""
    import torch

    transformer = encoder.transformer
    layers = _bert_layers(transformer)
    if layers is None:
        return None
    planned = _upstream_plan(docs, candidates, len(layers) + 1)
    if planned is None:
        return None
    plan, rest = planned
    markers = torch.tensor(marker_ids(tokenizer), dtype=torch.long)
    n_pairs = sum(len(pairs) for pairs in candidates)
    width = transformer.config.hidden_size
    out = torch.zeros((n_pairs, N_MARKERS * width), dtype=torch.float32)
    device = next(transformer.parameters()).device
    bf16 = getattr(encoder.encoder_layer()._func, "precision", "fp32") == "bf16" and device.type == "cpu"
    was_training = transformer.training
    transformer.eval()
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for hidden, window, length, rows, positions in plan:
                states = _marker_states(transformer, layers, hidden, window, length,
                                        markers.repeat(len(rows)).to(device), positions.to(device))
                out[rows] = states.float().reshape(len(rows), N_MARKERS * width).cpu()
    finally:
        transformer.train(was_training)
    return out.numpy(), numpy.asarray(rest, dtype="int64")


def _bert_layers(transformer: Any) -> Optional[List[Any]]:
    """The encoder's layers when they have BERT's layout (absolute positions,
    self-attention with query/key/value, attention output, intermediate,
    output), else None."""
    try:
        layers = list(transformer.encoder.layer)
        embeddings = transformer.embeddings
    except AttributeError:
        return None
    if getattr(embeddings, "position_embedding_type", "absolute") != "absolute":
        return None
    for layer in layers:
        attention = getattr(layer, "attention", None)
        parts = (getattr(attention, "self", None), getattr(attention, "output", None),
                 getattr(layer, "intermediate", None), getattr(layer, "output", None))
        if None in parts or not all(hasattr(parts[0], name) for name in ("query", "key", "value")):
            return None
        if getattr(parts[0], "position_embedding_type", "absolute") != "absolute":
            return None
    return layers


def _upstream_plan(docs: Sequence[Doc], candidates: Sequence[Candidates], n_states: int):
    """Per (doc, window of its `biobert` pass) with pairs: the doc's per-layer
    states, the window, its length, the pairs' batch rows and their markers'
    positions in the window; and the rows of the pairs no window holds. None
    when a doc with pairs has no per-layer states."""
    import torch

    plan, rest = [], []
    row = 0
    for doc, pairs in zip(docs, candidates):
        if not pairs:
            continue
        trf = doc._.trf_data if doc.has_extension("trf_data") else None
        hidden = getattr(trf, "model_output", {}).get("hidden_states") if trf is not None else None
        if hidden is None or len(hidden) != n_states:
            return None
        lengths = list(trf.wordpieces.lengths)
        width = trf.wordpieces.input_ids.shape[1]
        by_window: Dict[int, Tuple[List[int], List[int]]] = {}
        for head, tail in pairs:
            ends = [_wordpieces(trf, head.start), _wordpieces(trf, head.end - 1),
                    _wordpieces(trf, tail.start), _wordpieces(trf, tail.end - 1)]
            shared = set.intersection(*({f // width for f in flat} for flat in ends))
            if not shared:  # the pair straddles the pass's windows: the separate pass encodes it
                rest.append(row)
                row += 1
                continue
            w, positions = _most_centred_window(sorted(shared), ends, width, lengths)
            rows, marks = by_window.setdefault(w, ([], []))
            rows.append(row)
            marks.extend(positions)
            row += 1
        for w, (rows, marks) in sorted(by_window.items()):
            plan.append((hidden, w, int(lengths[w]), rows, torch.tensor(marks, dtype=torch.long)))
    return plan, rest


def _most_centred_window(shared: List[int], ends: List[List[int]], width: int,
                         lengths: List[int]) -> Tuple[int, List[int]]:
    """Of the `biobert` windows holding all four marker ends (flat indices per
    end), the one with the most context on the pair's nearer side (a document
    edge counting as unlimited), as the separate pass chooses; the first of
    equals. Returns it and the four positions in it."""
    best, best_positions, best_context = shared[0], [], -1.0
    for w in shared:
        positions = [min(f % width for f in flat if f // width == w) if k % 2 == 0
                     else max(f % width for f in flat if f // width == w)
                     for k, flat in enumerate(ends)]
        # position 0 is [CLS], lengths[w] - 1 is [SEP]
        left = min(positions) - 1 if w > 0 else float("inf")
        right = lengths[w] - 2 - max(positions) if w < len(lengths) - 1 else float("inf")
        if min(left, right) > best_context:
            best, best_positions, best_context = w, positions, min(left, right)
    return best, best_positions


def _wordpieces(trf: Any, token: int) -> List[int]:
    """The flat (window * width + position) wordpiece indices of a token."""
    return [int(f) for f in trf.align[token].dataXd.ravel()]


def _split_heads(t: Any, heads: int, size: int) -> Any:
    """(rows, heads * size) -> (heads, rows, size)."""
    return t.view(t.shape[0], heads, size).transpose(0, 1)


def _marker_states(transformer: Any, layers: List[Any], hidden: List[Any], window: int, length: int,
                   marker_ids: Any, positions: Any) -> Any:
    """(n_markers, width): the markers' last states, run through the
    encoder's layers alone against the text's per-layer states `hidden`
    (layer l's input: hidden[l]) of `window`, its first `length` positions."""
    import torch

    n = len(marker_ids)
    x = transformer.embeddings(
        input_ids=marker_ids[None], position_ids=positions[None],
        token_type_ids=torch.zeros((1, n), dtype=torch.long, device=marker_ids.device),
    )[0]
    # each marker attends to the text and to the markers of its own pair
    pair = torch.arange(n, device=x.device) // N_MARKERS
    blocked = torch.full((n, length + n), float("-inf"), device=x.device)
    blocked[:, :length] = 0.0
    blocked[:, length:][pair[:, None] == pair[None, :]] = 0.0
    for depth, layer in enumerate(layers):
        text = torch.as_tensor(hidden[depth][window, :length]).to(device=x.device, dtype=x.dtype)
        attention = layer.attention.self
        heads, size = attention.num_attention_heads, attention.attention_head_size
        q = _split_heads(attention.query(x), heads, size)
        k = _split_heads(torch.cat([attention.key(text), attention.key(x)]), heads, size)
        v = _split_heads(torch.cat([attention.value(text), attention.value(x)]), heads, size)
        scores = q @ k.transpose(1, 2) / size**0.5 + blocked.to(q.dtype)
        context = torch.softmax(scores.float(), dim=-1).to(v.dtype) @ v
        a = layer.attention.output(context.transpose(0, 1).reshape(n, heads * size), x)
        x = layer.output(layer.intermediate(a), a)
    return x
