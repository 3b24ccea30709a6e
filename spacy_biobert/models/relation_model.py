"""The relation model (`spacy-biobert.RelationModel.v2`): one row of label
logits for every candidate (head, tail) pair of every doc.

Its input is `(docs, candidates)`: the docs and, for each doc, the (head,
tail) spans to score, made once per batch by the candidate generator of
`biobert_relations` (like spaCy's spancat model, which takes the docs and the
suggester's spans). `spacy-biobert.RelationModel.v1`, the same model with the
generator inside (`get_candidates`), still loads the configs and pipelines
written with it; it is deprecated and goes in the next release.

Design (accuracy and CPU speed):

1. Token vectors come from `tok2vec`, normally a `TransformerListener` on the
   shared `biobert` component, pooled from each token's own wordpieces.
   They are projected once to `width` (a Linear layer), so every pooling
   below works on small vectors.
2. Each entity span is pooled once per batch (max and mean over its own
   tokens), however many pairs it takes part in.
3. A pair is
   `[head max, head mean, tail max, tail mean, head mean * tail mean,
   max and mean of the tokens between the spans, max and mean of the
   sentence(s) holding the pair, distance features]`. Context means come
   from prefix sums and context maxima from a sparse table (range-maximum
   in O(1)), so a pair costs O(width) whatever the distance: document-level
   pairs hundreds of tokens apart are as cheap as neighbours, and the table
   costs O(tokens * log(tokens) * width) per batch, not per pair. The
   maxima act as keyword detectors ("inhibitor of", "induced"), which a mean
   over a long context would dilute. Distance features: one-hot buckets of
   the signed token distance (tail.start - head.start), of the sentence
   distance, and an overlap flag.
4. A small MLP (Relu with layer norm and dropout, then Linear) gives one
   logit per label: labels are independent (sigmoid), so a pair can hold
   several relations or none.

Pairs are scored in chunks of `max_pairs_per_batch`: at prediction time the
memory of a document with thousands of candidates is bounded by the chunk
(activations of the chunk's features and hidden layer), not by the document.
During training the chunks' activations are kept for the backward pass.

The model returns logits (not probabilities): `biobert_relations` applies the
sigmoid, and pools logits over mention pairs for document-level labels.
"""

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Linear, Model, Relu, chain
from thinc.types import Floats2d

from ..errors import Errors
from .pairs import Candidates, GetCandidates, sentence_ids

# |tail.start - head.start| buckets: 0,1,2,3,4,5-7,8-15,16-31,32-63,64-127,128-255,256+
_DIST_EDGES = numpy.asarray([1, 2, 3, 4, 5, 8, 16, 32, 64, 128, 256], dtype="int64")
N_DIST_BUCKETS = len(_DIST_EDGES) + 1
N_SENT_BUCKETS = 4  # same sentence, 1, 2, 3+ apart
N_PAIR_FEATURES = 2 * N_DIST_BUCKETS + N_SENT_BUCKETS + 1
N_POOLED = 9  # pooled vectors per pair, each of `width`
# Context window (tokens either side) when a doc has no sentence boundaries.
_NO_SENTS_WINDOW = 32

RelationInput = Tuple[List[Doc], Sequence[Candidates]]


@registry.architectures("spacy-biobert.RelationModel.v2")
def create_relation_model_v2(
    tok2vec: Model[List[Doc], List[Floats2d]],
    width: int = 256,
    hidden_width: int = 256,
    dropout: float = 0.1,
    max_pairs_per_batch: Optional[int] = 4096,
    nO: Optional[int] = None,
) -> Model[RelationInput, Floats2d]:
    """Score the candidate pairs of each doc: input `(docs, candidates)` with
    `candidates[i]` the (head, tail) spans of `docs[i]`; output
    (n_pairs_in_batch, n_labels) logits, pairs in the order given, doc after doc.

    tok2vec: token vectors (a TransformerListener on `biobert`).
    width: token vectors are projected to this width before pooling.
    hidden_width: hidden layer of the pair classifier.
    dropout: dropout of the hidden layer.
    max_pairs_per_batch: pairs scored at once; None = all pairs of the batch.
    nO: number of labels; set by the component at initialize.
    """
    proj = Linear(nO=width)
    output = Linear(nO=nO, nI=hidden_width)
    scorer = chain(
        Relu(
            nO=hidden_width,
            nI=N_POOLED * width + N_PAIR_FEATURES,
            dropout=dropout,
            normalize=True,
        ),
        output,
    )
    return Model(
        "biobert-relation-model",
        _forward,
        init=_init,
        layers=[tok2vec, proj, scorer],
        refs={"tok2vec": tok2vec, "proj": proj, "scorer": scorer, "output": output},
        dims={"nO": nO, "width": width},
        attrs={
            "max_pairs_per_batch": max_pairs_per_batch,
        },
    )


@registry.architectures("spacy-biobert.RelationModel.v1")
def create_relation_model(
    tok2vec: Model[List[Doc], List[Floats2d]],
    get_candidates: GetCandidates,
    width: int = 256,
    hidden_width: int = 256,
    dropout: float = 0.1,
    max_pairs_per_batch: Optional[int] = 4096,
    nO: Optional[int] = None,
) -> Model[Union[List[Doc], RelationInput], Floats2d]:
    """Deprecated (kept one release, for configs and saved pipelines written
    with it): RelationModel.v2 carrying its candidate generator. Set the
    generator as `[components.biobert_relations.candidates]` with
    RelationModel.v2 instead.

    The model is RelationModel.v2's (same layers, so saved weights load);
    `biobert_relations` takes `get_candidates` from it, and a bare list of docs
    as input is paired with `get_candidates`.
    """
    model = create_relation_model_v2(
        tok2vec,
        width=width,
        hidden_width=hidden_width,
        dropout=dropout,
        max_pairs_per_batch=max_pairs_per_batch,
        nO=nO,
    )
    model.attrs["get_candidates"] = get_candidates
    return model


def _inputs(model: Model, X) -> RelationInput:
    """`(docs, candidates)`; a bare list of docs (RelationModel.v1 only) is
    paired with the model's own generator."""
    if isinstance(X, tuple):
        docs, candidates = X
        if len(candidates) != len(docs):
            raise ValueError(Errors.E209.format(docs=len(docs), candidates=len(candidates)))
        return list(docs), candidates
    get_candidates = model.attrs.get("get_candidates")
    if get_candidates is None:
        raise ValueError(Errors.E210)
    docs = list(X)
    return docs, [get_candidates(doc) for doc in docs]


def _init(model: Model, X=None, Y=None) -> Model:
    tok2vec = model.get_ref("tok2vec")
    proj = model.get_ref("proj")
    docs = _inputs(model, X)[0] if X is not None else None
    if docs is not None:
        tok2vec.initialize(X=docs)
    if not proj.has_dim("nI"):
        t2v_width = _output_width(tok2vec, docs)
        if t2v_width is not None:
            proj.set_dim("nI", t2v_width)
    proj.initialize()
    if model.has_dim("nO"):
        model.get_ref("output").set_dim("nO", model.get_dim("nO"))
    model.get_ref("scorer").initialize()
    return model


def _output_width(tok2vec: Model, X: Optional[List[Doc]]) -> Optional[int]:
    if tok2vec.has_dim("nO"):
        return tok2vec.get_dim("nO")
    for node in tok2vec.walk():  # e.g. the TransformerListener inside a chain
        if node.has_dim("nO"):
            return node.get_dim("nO")
    if X:
        return tok2vec.predict(X[:1])[0].shape[1]
    return None


@dataclass
class PairLayout:
    """Index arrays describing the candidate pairs of a batch. Token indices are
    global (into the batch's concatenated token matrix)."""

    n_pairs: int
    span_starts: numpy.ndarray  # unique entity spans of the batch
    span_ends: numpy.ndarray
    head: numpy.ndarray  # per pair: index into the unique spans
    tail: numpy.ndarray
    between_start: numpy.ndarray  # per pair: token range between the spans
    between_end: numpy.ndarray
    context_start: numpy.ndarray  # per pair: the sentence(s) holding the pair
    context_end: numpy.ndarray
    features: numpy.ndarray  # per pair: distance features (float32)


def pair_layout(docs: List[Doc], candidates: Sequence[Candidates]) -> PairLayout:
    """The layout of `candidates[i]`, the (head, tail) pairs of `docs[i]`."""
    span_index = {}
    span_starts: List[int] = []
    span_ends: List[int] = []
    cols = {
        k: [] for k in ("head", "tail", "bs", "be", "cs", "ce", "dist", "sdist", "overlap")
    }
    offset = 0
    for doc, pairs in zip(docs, candidates):
        if pairs:
            sents = sentence_ids(doc)
            n = len(doc)
            hs = numpy.asarray([h.start for h, _ in pairs], dtype="int64")
            he = numpy.asarray([h.end for h, _ in pairs], dtype="int64")
            ts = numpy.asarray([t.start for _, t in pairs], dtype="int64")
            te = numpy.asarray([t.end for _, t in pairs], dtype="int64")
            for s, e in zip(numpy.concatenate([hs, ts]), numpy.concatenate([he, te])):
                key = (offset + int(s), offset + int(e))
                if key not in span_index:
                    span_index[key] = len(span_starts)
                    span_starts.append(key[0])
                    span_ends.append(key[1])
            cols["head"].append(
                [span_index[(offset + int(s), offset + int(e))] for s, e in zip(hs, he)]
            )
            cols["tail"].append(
                [span_index[(offset + int(s), offset + int(e))] for s, e in zip(ts, te)]
            )
            first_end = numpy.minimum(he, te)
            second_start = numpy.maximum(hs, ts)
            bs = first_end
            be = numpy.maximum(second_start, first_end)  # empty when overlapping/adjacent
            lo = numpy.minimum(hs, ts)
            hi = numpy.maximum(he, te)
            if sents is None:
                cs = numpy.maximum(lo - _NO_SENTS_WINDOW, 0)
                ce = numpy.minimum(hi + _NO_SENTS_WINDOW, n)
                sdist = numpy.zeros_like(hs)
            else:
                sent_start, sent_end = _sentence_bounds(sents)
                cs = sent_start[sents[lo]]
                ce = sent_end[sents[hi - 1]]
                sdist = numpy.abs(sents[hs].astype("int64") - sents[ts].astype("int64"))
            cols["bs"].append(bs + offset)
            cols["be"].append(be + offset)
            cols["cs"].append(cs + offset)
            cols["ce"].append(ce + offset)
            cols["dist"].append(ts - hs)
            cols["sdist"].append(sdist)
            cols["overlap"].append((hs < te) & (ts < he))
        offset += len(doc)

    def cat(key: str, dtype: str = "int64") -> numpy.ndarray:
        if not cols[key]:
            return numpy.zeros((0,), dtype=dtype)
        return numpy.concatenate([numpy.asarray(c) for c in cols[key]]).astype(dtype)

    dist = cat("dist")
    n_pairs = len(dist)
    features = numpy.zeros((n_pairs, N_PAIR_FEATURES), dtype="float32")
    if n_pairs:
        rows = numpy.arange(n_pairs)
        bucket = numpy.searchsorted(_DIST_EDGES, numpy.abs(dist), side="right")
        features[rows, bucket + N_DIST_BUCKETS * (dist < 0)] = 1.0
        sbucket = numpy.minimum(cat("sdist"), N_SENT_BUCKETS - 1)
        features[rows, 2 * N_DIST_BUCKETS + sbucket] = 1.0
        features[:, -1] = cat("overlap", "float32")
    return PairLayout(
        n_pairs=n_pairs,
        span_starts=numpy.asarray(span_starts, dtype="int64"),
        span_ends=numpy.asarray(span_ends, dtype="int64"),
        head=cat("head"),
        tail=cat("tail"),
        between_start=cat("bs"),
        between_end=cat("be"),
        context_start=cat("cs"),
        context_end=cat("ce"),
        features=features,
    )


def _sentence_bounds(sents: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
    n_sents = int(sents[-1]) + 1
    starts = numpy.searchsorted(sents, numpy.arange(n_sents), side="left")
    ends = numpy.searchsorted(sents, numpy.arange(n_sents), side="right")
    return starts.astype("int64"), ends.astype("int64")


def _forward(model: Model, X: RelationInput, is_train: bool):
    docs, candidates = _inputs(model, X)
    tok2vec = model.get_ref("tok2vec")
    proj = model.get_ref("proj")
    scorer = model.get_ref("scorer")
    ops = model.ops
    xp = ops.xp
    nO = model.get_ref("output").get_dim("nO")
    layout = pair_layout(docs, candidates)
    if layout.n_pairs == 0 and (not is_train or not any(len(doc) for doc in docs)):
        # Nothing to score, and no listener to answer (a batch of empty docs
        # cannot go through the listener's pooling).
        return ops.alloc2f(0, nO), lambda dY: []
    tokvecs, bp_tokvecs = tok2vec(docs, is_train)
    if layout.n_pairs == 0:

        def backprop_empty(dY: Floats2d) -> List[Doc]:
            # The last listener must still backprop: it triggers the
            # transformer's update with the other listeners' gradients.
            bp_tokvecs([ops.alloc2f(*x.shape) for x in tokvecs])
            return []

        return ops.alloc2f(0, nO), backprop_empty

    lengths = [x.shape[0] for x in tokvecs]
    X = ops.flatten(tokvecs)
    P, bp_proj = proj(X, is_train)
    n_tokens, width = P.shape
    # Entity spans: max and mean over their own tokens, once per unique span.
    span_lengths = ops.asarray1i((layout.span_ends - layout.span_starts).astype("int32"))
    gather = ops.asarray1i(
        numpy.concatenate(
            [numpy.arange(s, e) for s, e in zip(layout.span_starts, layout.span_ends)]
        ).astype("int32")
    )
    gathered = xp.ascontiguousarray(P[gather])
    span_max, which = ops.reduce_max(gathered, span_lengths)
    span_mean = ops.reduce_mean(gathered, span_lengths)
    # Prefix sums (float64: long documents) for O(1) range means, and a
    # sparse table for O(1) range maxima.
    C = xp.zeros((n_tokens + 1, width), dtype="float64")
    C[1:] = xp.cumsum(P, axis=0, dtype="float64")
    longest = max(
        int((layout.between_end - layout.between_start).max()),
        int((layout.context_end - layout.context_start).max()),
    )
    table = _sparse_table(P, xp, longest)

    idx = {
        k: ops.asarray1i(getattr(layout, k).astype("int32"))
        for k in (
            "head",
            "tail",
            "between_start",
            "between_end",
            "context_start",
            "context_end",
        )
    }
    pair_features = ops.asarray2f(layout.features)
    inv = {}
    for name in ("between", "context"):
        size = (idx[name + "_end"] - idx[name + "_start"]).astype("float32")
        inv[name] = xp.where(size > 0, 1.0 / xp.maximum(size, 1.0), 0.0).astype("float32")

    def range_mean(name: str, sl: slice) -> Floats2d:
        s = idx[name + "_start"][sl]
        e = idx[name + "_end"][sl]
        return ((C[e] - C[s]) * inv[name][sl, None]).astype("float32")

    def features(sl: slice):
        h, t = idx["head"][sl], idx["tail"][sl]
        h_mean, t_mean = span_mean[h], span_mean[t]
        between_max, between_which = _range_max(
            table, idx["between_start"][sl], idx["between_end"][sl], xp
        )
        context_max, context_which = _range_max(
            table, idx["context_start"][sl], idx["context_end"][sl], xp
        )
        F = xp.concatenate(
            [
                span_max[h],
                h_mean,
                span_max[t],
                t_mean,
                h_mean * t_mean,
                between_max,
                range_mean("between", sl),
                context_max,
                range_mean("context", sl),
                pair_features[sl],
            ],
            axis=1,
        )
        return F, (between_which, context_which)

    chunk = model.attrs["max_pairs_per_batch"] or layout.n_pairs
    slices = [
        slice(i, min(i + chunk, layout.n_pairs)) for i in range(0, layout.n_pairs, chunk)
    ]
    outputs = []
    callbacks = []
    for sl in slices:
        F, which_max = features(sl)
        if is_train:
            Y_sl, bp_sl = scorer(F, is_train)
            callbacks.append((bp_sl, which_max))
        else:
            Y_sl = scorer.predict(F)
        outputs.append(Y_sl)
    Y = xp.concatenate(outputs, axis=0) if len(outputs) > 1 else outputs[0]

    def backprop(dY: Floats2d) -> List[Doc]:
        d_span_max = ops.alloc2f(*span_max.shape)
        d_span_mean = ops.alloc2f(*span_mean.shape)
        dC = ops.alloc2f(n_tokens + 1, width)
        d_flat = xp.zeros((n_tokens * width,), dtype="float64")  # from the range maxima
        for sl, (bp_sl, which_max) in zip(slices, callbacks):
            dF = bp_sl(xp.ascontiguousarray(dY[sl]))
            h, t = idx["head"][sl], idx["tail"][sl]
            parts = [
                xp.ascontiguousarray(dF[:, i * width : (i + 1) * width])
                for i in range(N_POOLED)
            ]
            (
                d_h_max,
                d_h_mean,
                d_t_max,
                d_t_mean,
                d_prod,
                d_between_max,
                d_between,
                d_context_max,
                d_context,
            ) = parts
            for rows_max, d_max in zip(which_max, (d_between_max, d_context_max)):
                valid = rows_max >= 0
                flat = (rows_max * width + xp.arange(width)[None, :])[valid]
                d_flat += xp.bincount(
                    flat, weights=d_max[valid], minlength=n_tokens * width
                )
            d_h_mean = d_h_mean + d_prod * span_mean[t]
            d_t_mean = d_t_mean + d_prod * span_mean[h]
            ops.scatter_add(d_span_max, h, d_h_max)
            ops.scatter_add(d_span_max, t, d_t_max)
            ops.scatter_add(d_span_mean, h, xp.ascontiguousarray(d_h_mean))
            ops.scatter_add(d_span_mean, t, xp.ascontiguousarray(d_t_mean))
            for name, d_range in (("between", d_between), ("context", d_context)):
                scaled = xp.ascontiguousarray(d_range * inv[name][sl, None])
                ops.scatter_add(dC, idx[name + "_end"][sl], scaled)
                ops.scatter_add(dC, idx[name + "_start"][sl], xp.ascontiguousarray(-scaled))
        # C[j] = sum of P[:j], so dP[i] = sum of dC[j] for j > i.
        dP = xp.cumsum(dC[::-1], axis=0, dtype="float64")[::-1][1:]
        dP = (dP + d_flat.reshape((n_tokens, width))).astype("float32")
        d_gathered = ops.backprop_reduce_max(d_span_max, which, span_lengths)
        d_gathered += ops.backprop_reduce_mean(d_span_mean, span_lengths)
        ops.scatter_add(dP, gather, xp.ascontiguousarray(d_gathered, dtype="float32"))
        dX = bp_proj(xp.ascontiguousarray(dP))
        bp_tokvecs(ops.unflatten(dX, ops.asarray1i(lengths)))
        return []

    return Y, backprop


def _sparse_table(
    P: Floats2d, xp, longest: Optional[int] = None
) -> List[Tuple[Floats2d, "numpy.ndarray"]]:
    """Level k holds, for every start i, the maximum of P[i : i + 2**k] and the
    row it came from (per column); levels up to the longest range queried."""
    n, width = P.shape
    rows = xp.broadcast_to(xp.arange(n, dtype="int32")[:, None], (n, width))
    levels = [(P, xp.ascontiguousarray(rows))]
    k = 1
    limit = n if longest is None else min(n, longest)
    while (1 << k) <= limit:
        half = 1 << (k - 1)
        prev, prev_rows = levels[-1]
        m = n - (1 << k) + 1
        left, right = prev[:m], prev[half : half + m]
        take_right = right > left
        levels.append(
            (
                xp.where(take_right, right, left),
                xp.where(take_right, prev_rows[half : half + m], prev_rows[:m]),
            )
        )
        k += 1
    return levels


def _range_max(table, starts, ends, xp):
    """Maximum of P[s:e] per pair and column, and the row it came from; zeros
    (row -1) for empty ranges."""
    width = table[0][0].shape[1]
    out = xp.zeros((len(starts), width), dtype="float32")
    which = xp.full((len(starts), width), -1, dtype="int64")
    lengths = ends - starts
    nonempty = lengths > 0
    if not bool(nonempty.any()):
        return out, which
    k = xp.zeros_like(lengths)
    k[nonempty] = xp.floor(xp.log2(lengths[nonempty])).astype(lengths.dtype)
    for level in range(len(table)):
        sel = xp.nonzero(nonempty & (k == level))[0]
        if len(sel) == 0:
            continue
        values, rows = table[level]
        a = starts[sel]
        b = ends[sel] - (1 << level)
        left, right = values[a], values[b]
        take_right = right > left
        out[sel] = xp.where(take_right, right, left)
        which[sel] = xp.where(take_right, rows[b], rows[a])
    return out, which
