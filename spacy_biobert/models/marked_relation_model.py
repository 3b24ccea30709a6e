"""The pair-aware relation model (`spacy-biobert.MarkedRelationModel.v1`):
every candidate pair is encoded on its own, marked in its sentence(s), by the
transformer `ner` listens to (the same weights, not a copy).

`RelationModel.v2` pools token vectors of one encoding of the document, in
which no token knows which pair is asked about. The recipes the field reports
make the encoding pair-aware; this model builds two of them, chosen by
`marking` (drop-in for `biobert_relations`: input `(docs, candidates)`,
output (n_pairs, n_labels) logits, pairs in the order given):

- "typed_punct", typed entity markers in punctuation (Zhou & Chen 2021, "An
  Improved Baseline for Sentence-level Relation Extraction"): the head becomes
  `@ * chemical * <head text> @`, the tail `# ^ gene ^ <tail text> #`. Only
  characters every vocabulary has, so no new embeddings; the type word is the
  entity label lower-cased, or what `type_words` maps it to (ChemProt:
  CHEMICAL -> chemical, GENE-Y/GENE-N -> gene).
- "anonymise", BioBERT's relation fine-tuning: each mention's text is replaced
  by `@CHEMICAL$` / `@GENE$` (the type word upper-cased).

1. Text. The sentence(s) holding the pair: from the sentence of its first
   mention to the sentence of its last (`doc.sents`); without sentence
   boundaries, `window` tokens either side of the pair. Longer than the encoder
   can take, it is cut around both mentions (a window around the pair, or one
   around each mention when they are far apart: document-level pairs), first
   in tokens (so that no more than about `max_length` tokens either side of a
   mention are ever tokenized), then exactly in wordpieces.
2. Markers are inserted by character offsets of the mentions, never found by
   searching the text, so a text that already holds "@", "#" or "@CHEMICAL$"
   is marked like any other. Insertion order where markers meet: closing
   markers before opening ones; of two spans opening at one offset the longer
   (outer) opens first, of two closing at one offset the inner closes first.
   Nested and overlapping mentions are thus marked like brackets (crossing
   spans interleave: `@ A # B @ C #`). Anonymising cannot replace two
   overlapping mentions: such a pair is skipped, counted under "overlap"
   (`model.skipped`, logged at debug level) and given the logit
   `SKIPPED_LOGIT` (probability ~1e-13; no gradient).
3. Wordpieces: the upstream's fast tokenizer; the index of each opening marker
   (`@` of the head, `#` of the tail, `@` of a placeholder) is found with
   `char_to_token`; special tokens are added as the tokenizer adds them.
4. Encoding: `SharedTransformer` (see models/shared_transformer.py) runs the
   upstream's HF wrapper over sequences in chunks of `max_pairs_per_batch`
   (sequences sorted by length, so chunks pad little). At prediction nothing
   is kept between chunks. In training, with `recompute_chunks` (the
   default) each chunk is encoded without keeping its activations, and
   encoded again in the backward pass, with the same dropout (the random
   state of its first pass), and back-propagated at once: memory holds one
   chunk's activations whatever the number of pairs, for one more encoder
   forward per chunk. Without it every chunk's activations are kept until the
   backward pass (faster; memory grows with the pairs of a batch). Either way
   the gradient goes to the shared weights, which the `biobert` component's
   `finish_update` applies (once).
5. A pair is the concatenation of the hidden states at the head's and the
   tail's opening markers (`representation = "markers"`), of [CLS]
   (`"cls"`: BioBERT's sentence classification) or of both
   (`"markers+cls"`), fed to a small MLP (Relu with layer norm and dropout,
   then Linear, like v2's scorer): one logit per label (sigmoid in the
   component; logsumexp pooling per concept pair for document-level labels).

Cost: one encoder pass per candidate pair, on its sentence (ChemProt: 18
pairs per abstract, 91 wordpieces each marked, 4.1 times the abstract's
wordpieces), on top of the document pass `biobert` makes for its listeners.
A `biobert` that no listener reads skips its training forward
(`BiobertTransformer.update`), so a pipeline of `biobert` and this model
alone pays only the pair passes in training (at prediction `biobert` still
sets `doc._.trf_data`). Keeping every chunk's activations until the backward
pass (`recompute_chunks = false`) makes memory grow with the pairs of a batch
(ChemProt, batches of 1,500 padded tokens: peak RSS 5.2 GB on MiniLM-L6);
recomputing bounds it to one chunk for about a third more encoder time.

Choices, where the code told better than a first sketch:
- The shared layer returns `last_hidden_state` as an array (thinc's
  `Model[WordpieceBatch, Floats3d]`) and takes its gradient as one; the
  conversion to and from the transformers `ModelOutput` the HF wrapper speaks
  stays inside it.
- Sequences are built from wordpiece ids, not re-tokenized after cutting: the
  marked text is tokenized once without special tokens, cut in wordpieces
  around the markers, then given the tokenizer's own special tokens
  (`build_inputs_with_special_tokens`); [CLS] is the first position.
- Typed punctuation markers never need a skip: every pair is encodable. Only
  anonymising skips (overlapping mentions), and a tokenizer that would drop a
  marker character ("marker_not_tokenized"; none of the BERT family does).
- Gradient timing: spaCy's training loop runs every component's update, then
  every `finish_update`, so the marked pass's gradient is applied in its own
  step. With `nlp.update(..., sgd=optimizer)` spaCy steps `biobert` right
  after its own update, before later components backprop, so a step's
  gradient lands at the next update: the same as for its listeners.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc, Span
from spacy.util import registry
from thinc.api import Linear, Model, Relu, chain
from thinc.types import Floats2d, Floats3d

from ..errors import Errors
from .pairs import Candidates, sentence_ids
from .relation_model import RelationInput

logger = logging.getLogger("spacy_biobert.relations")

MARKINGS = ("typed_punct", "anonymise")
REPRESENTATIONS = ("markers", "cls", "markers+cls")
# Logit of a pair that cannot be encoded (sigmoid ~ 1e-13).
SKIPPED_LOGIT = -30.0
_MIN_LENGTH = 16


@registry.architectures("spacy-biobert.MarkedRelationModel.v1")
def create_marked_relation_model(
    encoder: Model,
    marking: str = "typed_punct",
    type_words: Optional[Dict[str, str]] = None,
    representation: str = "markers",
    hidden_width: int = 256,
    dropout: float = 0.1,
    max_length: Optional[int] = None,
    window: int = 32,
    max_pairs_per_batch: Optional[int] = 32,
    recompute_chunks: bool = True,
    nO: Optional[int] = None,
) -> Model[RelationInput, Floats2d]:
    """Score the candidate pairs of each doc, each encoded marked in its
    sentence(s): input `(docs, candidates)`, output (n_pairs_in_batch,
    n_labels) logits, pairs in the order given, doc after doc.

    encoder: spacy-biobert.SharedTransformer.v1, the `biobert` component's
        encoder (its weights, not a copy).
    marking: "typed_punct" (`@ * type * head @`, `# ^ type ^ tail #`) or
        "anonymise" (`@TYPE$` instead of each mention).
    type_words: entity label -> word in the markers; labels not in it are
        lower-cased. None: every label lower-cased.
    representation: "markers" (hidden states at the head's and the tail's
        opening markers), "cls" (at [CLS]) or "markers+cls".
    hidden_width, dropout: the classifier's hidden layer.
    max_length: wordpieces per sequence, special tokens included; None: what
        the encoder takes (the tokenizer's model_max_length, at most the
        model's max_position_embeddings).
    window: tokens either side of the pair when a doc has no sentences.
    max_pairs_per_batch: sequences encoded at once; None = all of a batch.
    recompute_chunks: in training, keep no chunk's activations between the
        forward and the backward pass (encode each chunk again there, with the
        same dropout): memory bounded by one chunk, for one more encoder
        forward per chunk. False: keep them all (faster, memory grows with the
        pairs of a batch).
    nO: number of labels; set by the component at initialize.
    """
    _check_choice("marking", MARKINGS, marking)
    _check_choice("representation", REPRESENTATIONS, representation)
    if max_length is not None:
        _check_int("max_length", max_length, _MIN_LENGTH, f"None or an integer >= {_MIN_LENGTH}")
    _check_int("window", window, 0, "an integer >= 0")
    if max_pairs_per_batch is not None:
        _check_int("max_pairs_per_batch", max_pairs_per_batch, 1, "None or an integer >= 1")
    check_type_words(type_words)
    return build_pair_classifier(
        MarkedRelationModel, "biobert-marked-relation-model", _forward, _init, encoder,
        hidden_width=hidden_width, dropout=dropout, nO=nO, recompute_chunks=recompute_chunks,
        attrs={
            "marking": marking,
            "type_words": dict(type_words or {}),
            "representation": representation,
            "max_length": max_length,
            "window": window,
            "max_pairs_per_batch": max_pairs_per_batch,
        },
    )


class SkipCountingModel(Model):
    """A thinc Model that also counts the pairs it skipped, by reason
    (`skipped`), since it was built (not saved). The pair-aware relation
    models are its subclasses, each named for its architecture."""

    def __init__(self, *args: Any, **kwargs: Any):
        Model.__init__(self, *args, **kwargs)
        self.skipped: Counter = Counter()


class MarkedRelationModel(SkipCountingModel):
    """`spacy-biobert.MarkedRelationModel.v1`."""


def build_pair_classifier(
    cls: type, name: str, forward: Callable, init: Callable, encoder: Model, *,
    hidden_width: int, dropout: float, nO: Optional[int], recompute_chunks: bool, attrs: Dict,
) -> SkipCountingModel:
    """The pair-aware models' shared shape: the shared `encoder`, then a
    scorer over each pair's vectors (Relu with layer norm and dropout, then
    Linear: one logit per label). `attrs` are the model's own settings;
    `recompute_chunks` is checked and added to them."""
    if not isinstance(recompute_chunks, bool):
        raise ValueError(
            Errors.E234.format(what="recompute_chunks", expected="true or false", value=recompute_chunks)
        )
    output = Linear(nO=nO, nI=hidden_width)
    scorer = chain(Relu(nO=hidden_width, dropout=dropout, normalize=True), output)
    return cls(
        name,
        forward,
        init=init,
        layers=[encoder, scorer],
        refs={"encoder": encoder, "scorer": scorer, "output": output},
        dims={"nO": nO},
        attrs={**attrs, "recompute_chunks": recompute_chunks},
    )


def init_pair_classifier(model: Model, vectors_per_pair: int) -> Model:
    """Initialize a `build_pair_classifier` model: the encoder first (its
    width comes from the linked transformer: E230/E231), then the scorer from
    a sample of `vectors_per_pair` encoder vectors a pair."""
    encoder = model.get_ref("encoder")
    encoder.initialize()
    if model.has_dim("nO"):
        model.get_ref("output").set_dim("nO", model.get_dim("nO"))
    model.get_ref("scorer").initialize(X=model.ops.alloc2f(2, vectors_per_pair * encoder.get_dim("nO")))
    return model


def _check_choice(what: str, options: Sequence[str], value: Any) -> None:
    if value not in options:
        raise ValueError(Errors.E233.format(what=what, options=tuple(options), value=value))


def _check_int(what: str, value: Any, minimum: int, expected: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(Errors.E234.format(what=what, expected=expected, value=value))


def _n_vectors(representation: str) -> int:
    return {"markers": 2, "cls": 1, "markers+cls": 3}[representation]


def _init(model: Model, X: Any = None, Y: Any = None) -> Model:
    return init_pair_classifier(model, _n_vectors(model.attrs["representation"]))


# --- marking ------------------------------------------------------------------------


@dataclass
class MarkedText:
    """One candidate pair as text: `text` with its markers, and the character
    offsets (in `text`) of the first character of the head's and the tail's
    opening and closing markers."""

    text: str
    head_open: int
    head_close: int
    tail_open: int
    tail_close: int
    cut: bool = False  # tokens were left out (too long for the encoder)


@dataclass
class MarkedBatch:
    """The encoder input of a batch: for every pair (batch order) either a
    sequence of wordpiece ids (special tokens included) with the positions of
    the head's and tail's opening markers, or None (skipped; reason counted)."""

    input_ids: List[Optional[numpy.ndarray]]  # int32, one array per pair
    head: List[int]
    tail: List[int]
    skipped: Counter = field(default_factory=Counter)
    cut: int = 0


def type_word(label: str, type_words: Dict[str, str]) -> str:
    return type_words.get(label, label.lower())


def mark_pair(
    doc: Doc,
    head: Span,
    tail: Span,
    *,
    marking: str = "typed_punct",
    type_words: Optional[Dict[str, str]] = None,
    window: int = 32,
    max_tokens: Optional[int] = None,
    sents: Any = "doc",
) -> Optional[MarkedText]:
    """The marked text of (head, tail) in `doc` (see the module docstring), or
    None when the pair cannot be marked (anonymise: the mentions overlap).

    max_tokens: keep at most this many tokens either side of each mention.
    sents: the doc's sentence ids (`pairs.sentence_ids(doc)`, None: no
        sentences), when the caller has them; by default computed here.
    """
    type_words = type_words or {}
    if isinstance(sents, str):
        sents = sentence_ids(doc)
    segments = _segments(doc, head, tail, sents, window, max_tokens)
    whole = _segments(doc, head, tail, sents, window, None)
    cut = segments != whole
    events: List[_Event] = []
    if marking == "anonymise":
        if head.start_char < tail.end_char and tail.start_char < head.end_char:
            return None
        for role, span in (("head", head), ("tail", tail)):
            word = type_word(span.label_, type_words).upper()
            events.append(_Event(span.start_char, 1, (0, 0), f"@{word}$", role, span.end_char))
    else:
        for rank, (role, span, opening, closing) in enumerate(
            (("head", head, "@ * {} *", "@"), ("tail", tail, "# ^ {} ^", "#"))
        ):
            word = type_word(span.label_, type_words)
            # At one offset: closings before openings; the outer (longer) span
            # opens first, the inner (later-starting) span closes first; for
            # two identical spans the head is outside.
            events.append(
                _Event(span.start_char, 1, (-span.end_char, rank), opening.format(word), role + "_open")
            )
            events.append(_Event(span.end_char, 0, (-span.start_char, -rank), closing, role + "_close"))
    events.sort(key=lambda e: (e.pos, e.kind, e.order))
    chars = [(doc[s].idx, doc[e - 1].idx + len(doc[e - 1].text)) for s, e in segments]
    return _render(doc.text, chars, events, cut)


@dataclass
class _Event:
    pos: int  # character offset in the doc
    kind: int  # 0 closing, 1 opening (closings first at one offset)
    order: Tuple[int, int]
    marker: str
    role: str  # head_open, head_close, tail_open, tail_close; "head"/"tail": replace
    end: int = -1  # replace: the end of the replaced text


def _segments(
    doc: Doc,
    head: Span,
    tail: Span,
    sents: Optional[numpy.ndarray],
    window: int,
    max_tokens: Optional[int],
) -> List[Tuple[int, int]]:
    """Token ranges of the text to mark: the sentence(s) holding the pair (or
    `window` tokens around it), at most `max_tokens` tokens either side of each
    mention; two ranges when the mentions are further apart than that."""
    (a0, a1), (b0, b1) = sorted([(head.start, head.end), (tail.start, tail.end)])
    lo, hi = a0, max(a1, b1)
    if sents is not None:
        start = int(numpy.searchsorted(sents, sents[lo], side="left"))
        end = int(numpy.searchsorted(sents, sents[hi - 1], side="right"))
    else:
        start, end = max(0, lo - window), min(len(doc), hi + window)
    if max_tokens is None:
        return [(start, end)]
    if hi - lo <= max_tokens:
        return [(max(start, lo - max_tokens), min(end, hi + max_tokens))]
    first = (max(start, a0 - max_tokens), min(end, a1 + max_tokens))
    second = (max(start, b0 - max_tokens), min(end, b1 + max_tokens))
    if second[0] <= first[1]:
        return [(first[0], max(first[1], second[1]))]
    return [first, second]


def _render(text: str, segments: List[Tuple[int, int]], events: List[_Event], cut: bool) -> MarkedText:
    """The character ranges `segments` of `text` (joined by a space) with the
    markers of `events` inserted, each with whitespace on both sides."""
    marked, found = render_events(text, segments, events)
    return MarkedText(
        text=marked,
        head_open=found["head_open"],
        head_close=found["head_close"],
        tail_open=found["tail_open"],
        tail_close=found["tail_close"],
        cut=cut,
    )


def render_events(
    text: str, segments: List[Tuple[int, int]], events: List[_Event]
) -> Tuple[str, Dict[str, int]]:
    """What `_render` writes, for markers of any roles: the marked text and
    the offset in it of each event's marker, by role (the document-level
    model marks every mention of a doc: models/entity_marked_model.py)."""
    pieces: List[str] = []
    length = 0
    last = " "
    pending_space = False
    found: Dict[str, int] = {}

    def emit(piece: str) -> None:
        nonlocal length, last
        if piece:
            pieces.append(piece)
            length += len(piece)
            last = piece[-1]

    def emit_text(piece: str) -> None:
        nonlocal pending_space
        if piece:
            if pending_space and not piece[0].isspace():
                emit(" ")
            pending_space = False
            emit(piece)

    def emit_marker(role: str, marker: str) -> None:
        nonlocal pending_space
        if not last.isspace():
            emit(" ")
        found[role] = length
        emit(marker)
        pending_space = True

    i = 0
    for k, (c0, c1) in enumerate(segments):
        if k and not last.isspace():
            emit(" ")
        cursor = c0
        while i < len(events) and events[i].pos <= c1:
            event = events[i]
            i += 1
            emit_text(text[cursor : event.pos])
            cursor = max(cursor, event.pos)
            if event.role in ("head", "tail"):  # anonymise: replace the mention
                emit_marker(event.role + "_open", event.marker)
                found[event.role + "_close"] = length - 1
                cursor = event.end
            else:
                emit_marker(event.role, event.marker)
        emit_text(text[cursor:c1])
    return "".join(pieces), found


def mark_batch(
    docs: Sequence[Doc],
    candidates: Sequence[Candidates],
    tokenizer: Any,
    *,
    marking: str = "typed_punct",
    type_words: Optional[Dict[str, str]] = None,
    window: int = 32,
    max_length: int = 512,
) -> MarkedBatch:
    """Wordpiece sequences of every candidate pair (batch order), at most
    `max_length` wordpieces each (special tokens included), with the
    positions of the head's and the tail's opening markers.

    The marked texts are tokenized `TOKENIZE_SLICE` at a time and each
    sequence kept as a compact int32 array: the fast tokenizer's encodings
    (offsets, tokens, masks per wordpiece) of every pair at once grow with
    the number of candidates, which an early, noisy NER head can make tens of
    thousands in one batch."""
    n_special = len(tokenizer.build_inputs_with_special_tokens([]))
    prefix = _prefix_length(tokenizer)
    budget = max_length - n_special
    n_pairs = sum(len(pairs) for pairs in candidates)
    batch = MarkedBatch(input_ids=[None] * n_pairs, head=[-1] * n_pairs, tail=[-1] * n_pairs)
    rows: List[int] = []
    marked: List[MarkedText] = []
    row = 0
    for doc, pairs in zip(docs, candidates):
        if not pairs:
            continue
        sents = sentence_ids(doc)
        for head, tail in pairs:
            m = mark_pair(
                doc,
                head,
                tail,
                marking=marking,
                type_words=type_words,
                window=window,
                max_tokens=budget,
                sents=sents,
            )
            if m is None:
                batch.skipped["overlap"] += 1
            else:
                rows.append(row)
                marked.append(m)
            row += 1
    for first in range(0, len(marked), TOKENIZE_SLICE):
        _encode_slice(
            batch, rows[first : first + TOKENIZE_SLICE], marked[first : first + TOKENIZE_SLICE],
            tokenizer, budget, prefix,
        )
    return batch


# Marked texts tokenized at once: bounds the tokenizer's per-wordpiece objects.
TOKENIZE_SLICE = 256


def _encode_slice(
    batch: MarkedBatch, rows: List[int], marked: List[MarkedText], tokenizer: Any, budget: int,
    prefix: int,
) -> None:
    """Tokenize marked texts and put their sequences and marker positions in `batch`."""
    if not marked:
        return
    encoding = tokenizer(
        [m.text for m in marked],
        add_special_tokens=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    for k, (row, m) in enumerate(zip(rows, marked)):
        ids = encoding["input_ids"][k]
        ho, hc, to, tc = (
            encoding.char_to_token(k, c) for c in (m.head_open, m.head_close, m.tail_open, m.tail_close)
        )
        if ho is None or to is None:  # a tokenizer that drops the marker character
            batch.skipped["marker_not_tokenized"] += 1
            continue
        hc = ho if hc is None else hc
        tc = to if tc is None else tc
        kept = _fit(len(ids), [(ho, hc), (to, tc)], budget)
        if m.cut or kept != [(0, len(ids))]:
            batch.cut += 1
        new_ids: List[int] = []
        for s, e in kept:
            new_ids.extend(ids[s:e])
        batch.input_ids[row] = numpy.asarray(
            tokenizer.build_inputs_with_special_tokens(new_ids), dtype="int32"
        )
        batch.head[row] = prefix + _new_position(ho, kept)
        batch.tail[row] = prefix + _new_position(to, kept)


def _prefix_length(tokenizer: Any) -> int:
    """How many special tokens the tokenizer puts before the text ([CLS])."""
    sentinel = -7
    return tokenizer.build_inputs_with_special_tokens([sentinel]).index(sentinel)


def _fit(n: int, spans: List[Tuple[int, int]], budget: int) -> List[Tuple[int, int]]:
    """Wordpiece ranges to keep of a sequence of `n` so that at most `budget`
    remain, keeping the two marked mentions [open, close] (at least their
    opening markers): one window around the pair, or one around each."""
    if n <= budget:
        return [(0, n)]
    (a0, a1), (b0, b1) = sorted(spans)
    hi = max(a1, b1) + 1
    if hi - a0 <= budget:
        return [_window(a0, hi, budget, n)]
    half = budget // 2
    first = _window(a0, a1 + 1, half, n)
    second = _window(b0, b1 + 1, budget - half, n)
    if second[0] <= first[1]:
        start = min(first[0], second[0])
        return [(start, min(max(first[1], second[1]), start + budget))]
    return [first, second]


def _window(r0: int, r1: int, size: int, n: int) -> Tuple[int, int]:
    """`size` positions of [0, n) holding [r0, r1) centred, or from r0 when
    [r0, r1) is longer."""
    if r1 - r0 >= size:
        return (r0, r0 + size)
    start = max(0, r0 - (size - (r1 - r0)) // 2)
    end = min(n, start + size)
    return (max(0, end - size), end)


def _new_position(position: int, kept: List[Tuple[int, int]]) -> int:
    offset = 0
    for s, e in kept:
        if s <= position < e:
            return offset + position - s
        offset += e - s
    raise AssertionError("an opening marker was cut")  # _fit keeps both


def wordpiece_batch(sequences: List[List[int]], tokenizer: Any) -> Any:
    """A spacy-transformers WordpieceBatch of id sequences, padded on the right."""
    from spacy_transformers.data_classes import WordpieceBatch

    n, width = len(sequences), max(len(s) for s in sequences)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = numpy.full((n, width), pad, dtype="int64")
    mask = numpy.zeros((n, width), dtype="float32")
    for i, seq in enumerate(sequences):
        input_ids[i, : len(seq)] = seq
        mask[i, : len(seq)] = 1.0
    token_types = numpy.zeros_like(input_ids) if "token_type_ids" in tokenizer.model_input_names else None
    return WordpieceBatch(
        strings=[tokenizer.convert_ids_to_tokens(seq) for seq in sequences],
        input_ids=input_ids,
        attention_mask=mask,
        lengths=[len(seq) for seq in sequences],
        token_type_ids=token_types,
    )


# --- the model's forward ----------------------------------------------------------------


def pair_model_inputs(X: Any, wrong_input: str) -> Tuple[List[Doc], Sequence[Candidates]]:
    """A pair-aware model's (docs, candidates), checked: `wrong_input` is the
    model's own error for anything else (E235, E240, E250)."""
    if not isinstance(X, tuple) or len(X) != 2:
        raise ValueError(getattr(Errors, wrong_input).format(value=f"a {type(X).__name__}"))
    docs, candidates = X
    docs = list(docs)
    if len(candidates) != len(docs):
        raise ValueError(Errors.E209.format(docs=len(docs), candidates=len(candidates)))
    return docs, candidates


def fast_tokenizer(encoder: Any) -> Any:
    """The linked encoder's tokenizer (E230 / E231 when not linked or not
    initialized), which must be fast: markers are found by `char_to_token`."""
    tokenizer = encoder.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            Errors.E236.format(upstream=encoder.upstream_component, tokenizer=type(tokenizer).__name__)
        )
    return tokenizer


def check_type_words(type_words: Any) -> None:
    """E234 unless `type_words` is None or a {"LABEL": "word"} table."""
    if type_words is not None and (
        not isinstance(type_words, dict)
        or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in type_words.items())
    ):
        raise ValueError(
            Errors.E234.format(
                what="type_words",
                expected='a {"LABEL": "word"} table of non-empty strings, or None',
                value=type_words,
            )
        )


def encoder_max_length(model: Model, encoder: Any, tokenizer: Any) -> int:
    """The model's max_length, at most what the encoder takes."""
    limits = [tokenizer.model_max_length]
    limits.append(getattr(encoder.transformer.config, "max_position_embeddings", None))
    cap = min(x for x in limits if isinstance(x, int) and x > 0)
    wanted = model.attrs["max_length"]
    return cap if wanted is None else min(wanted, cap)


def _forward(model: Model, X: RelationInput, is_train: bool):
    docs, candidates = pair_model_inputs(X, "E235")
    encoder = model.get_ref("encoder")
    scorer = model.get_ref("scorer")
    ops = model.ops
    nO = model.get_ref("output").get_dim("nO")
    n_pairs = sum(len(pairs) for pairs in candidates)
    if n_pairs == 0:
        return ops.alloc2f(0, nO), lambda dY: []
    tokenizer = fast_tokenizer(encoder)
    batch = mark_batch(
        docs,
        candidates,
        tokenizer,
        marking=model.attrs["marking"],
        type_words=model.attrs["type_words"],
        window=model.attrs["window"],
        max_length=encoder_max_length(model, encoder, tokenizer),
    )
    if batch.skipped or batch.cut:
        counts = getattr(model, "skipped", None)
        if counts is not None:
            counts.update(batch.skipped)
            counts["cut (encoded, with context left out)"] += batch.cut
        logger.debug(
            "marked relation pass: %d of %d pairs skipped %s, %d cut to fit",
            sum(batch.skipped.values()),
            n_pairs,
            dict(batch.skipped),
            batch.cut,
        )
    representation = model.attrs["representation"]
    encoded = [r for r in range(n_pairs) if batch.input_ids[r] is not None]
    encoded.sort(key=lambda r: len(batch.input_ids[r]))  # chunks of similar length
    size = model.attrs["max_pairs_per_batch"] or max(len(encoded), 1)
    xp = ops.xp
    Y = xp.full((n_pairs, nO), SKIPPED_LOGIT, dtype="float32")
    recompute = is_train and model.attrs.get("recompute_chunks", False)
    chunks = []
    for start in range(0, len(encoded), size):
        rows = encoded[start : start + size]
        wordpieces = wordpiece_batch([batch.input_ids[r] for r in rows], tokenizer)
        heads = numpy.asarray([batch.head[r] for r in rows], dtype="int64")
        tails = numpy.asarray([batch.tail[r] for r in rows], dtype="int64")
        H, backprop_encoder = encode_chunk(encoder, wordpieces, is_train, recompute)
        F = _pair_vectors(ops, H, heads, tails, representation)
        if is_train:
            Z, backprop_scorer = scorer(F, is_train)
            chunks.append((rows, heads, tails, H.shape, backprop_encoder, backprop_scorer))
        else:
            Z = scorer.predict(F)
        Y[ops.asarray1i(rows)] = Z
        del H  # nothing of the chunk's encoding is kept (but its backprop, if kept)

    def backprop(dY: Floats2d) -> List[Doc]:
        for rows, heads, tails, shape, backprop_encoder, backprop_scorer in chunks:
            dF = backprop_scorer(xp.ascontiguousarray(dY[ops.asarray1i(rows)]))
            backprop_encoder(_scatter_pair_gradient(ops, dF, shape, heads, tails, representation))
        return []

    return Y, backprop


# --- recomputing a chunk in the backward pass ----------------------------------------------


def encode_chunk(encoder: Model, wordpieces: Any, is_train: bool, recompute: bool):
    """A chunk's hidden states and their backprop (None at prediction). With
    `recompute` (training only), the forward keeps no activations and the
    backprop encodes the chunk again with the same random state."""
    if is_train and recompute:
        random_state = _random_state(encoder)
        with _no_grad():
            H, _ = encoder(wordpieces, is_train)
        return H, _recomputing_backprop(encoder, wordpieces, random_state)
    if is_train:
        return encoder(wordpieces, is_train)
    return encoder.predict(wordpieces), None


def _no_grad():
    import torch

    return torch.no_grad()


def _random_state(encoder: Model) -> Tuple[Any, List[int], List[Any]]:
    """torch's random state (CPU, and the encoder's CUDA device), so that the
    chunk's second pass draws the same dropout masks as its first."""
    import torch

    devices = sorted(
        {p.device.index or 0 for p in encoder.transformer.parameters() if p.device.type == "cuda"}
    )
    cuda = [torch.cuda.get_rng_state(d) for d in devices]
    return torch.get_rng_state(), devices, cuda


def _recomputing_backprop(encoder: Model, wordpieces: Any, random_state):
    """The chunk's backprop: encode it again with gradients (same random
    state, restored afterwards) and back-propagate through it at once."""
    import torch

    cpu, devices, cuda = random_state

    def backprop(dH: Floats3d) -> None:
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(cpu)
            for device, state in zip(devices, cuda):
                torch.cuda.set_rng_state(state, device)
            _, backprop_encoder = encoder(wordpieces, True)
        backprop_encoder(dH)

    return backprop


def _slots(representation: str) -> List[str]:
    return {"markers": ["head", "tail"], "cls": ["cls"], "markers+cls": ["cls", "head", "tail"]}[
        representation
    ]


def _pair_vectors(ops, H, heads, tails, representation: str) -> Floats2d:
    """(n_sequences, n_vectors * width): the hidden states at the slots."""
    from thinc.api import get_array_module

    xp = get_array_module(H)
    rows = xp.arange(H.shape[0])
    where = {"cls": xp.zeros_like(rows), "head": xp.asarray(heads), "tail": xp.asarray(tails)}
    parts = [H[rows, where[slot]] for slot in _slots(representation)]
    return ops.asarray2f(xp.concatenate(parts, axis=1).astype("float32"))


def _scatter_pair_gradient(ops, dF, shape, heads, tails, representation: str):
    """The gradient of the hidden states (zeros but at the slots)."""
    xp = ops.xp
    width = shape[-1]
    dH = xp.zeros(shape, dtype="float32")
    rows = xp.arange(shape[0])
    where = {"cls": xp.zeros_like(rows), "head": xp.asarray(heads), "tail": xp.asarray(tails)}
    for i, slot in enumerate(_slots(representation)):
        # One statement per slot: rows are unique within it, so += accumulates
        # even where two slots share a position.
        dH[rows, where[slot]] += dF[:, i * width : (i + 1) * width]
    return dH
