"""The document-level pair-aware relation model
(`spacy-biobert.EntityMarkedRelationModel.v1`): every mention marked once, one
encoding per document (windows when long), pairs from mention vectors.
Marking, windows, the pair context ("between"), gradient flow into the
shared transformer, overfitting, save/load, edge cases and settings."""

from pathlib import Path

import numpy
import pytest
import spacy
from relation_toys import (
    CP_ENTS,
    CP_WORDS,
    PAIRS,
    TYPE_WORDS,
    cp_examples,
    example,
    make_doc,
    pair_aware_nlp,
    relation_model_config,
    tiny_marker_bert,
)
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import fix_random_seed, load_config
from thinc.api import NumpyOps

import spacy_biobert  # noqa: F401
from spacy_biobert.extensions import install_extensions
from spacy_biobert.models import entity_marked_model as doc_marked
from spacy_biobert.models.entity_marked_model import (
    best_window,
    between_range,
    context_window,
    create_entity_marked_relation_model,
    mark_doc,
    mark_mentions,
    mention_gradient,
    window_starts,
)
from spacy_biobert.models.marked_relation_model import SKIPPED_LOGIT, wordpiece_batch
from spacy_biobert.models.shared_transformer import SharedTransformer

install_extensions()

ARCHITECTURE = "spacy-biobert.EntityMarkedRelationModel.v1"


@pytest.fixture(scope="session")
def marker_bert(tmp_path_factory) -> str:
    return tiny_marker_bert(tmp_path_factory.mktemp("tiny-bert-doc-markers"))


def model_config(**overrides):
    return relation_model_config(ARCHITECTURE, **overrides)


def make_nlp(bert, pairs=PAIRS, **overrides):
    return pair_aware_nlp(bert, ARCHITECTURE, pairs=pairs, **overrides)


def initialized(bert, **overrides):
    nlp = make_nlp(bert, **overrides)
    examples = cp_examples(nlp.vocab)
    nlp.initialize(lambda: examples)
    return nlp


def relation_model(nlp):
    return nlp.get_pipe("biobert_relations").model


def tokenizer_of(nlp):
    return relation_model(nlp).get_ref("encoder").tokenizer


@pytest.fixture(scope="module", params=["none", "between"])
def trained(tiny_bert, request):
    """The toy ChemProt-like task, learned in 30 steps; the losses on the way
    (a model of each `context`)."""
    fix_random_seed(0)
    nlp = make_nlp(tiny_bert, context=request.param)
    examples = cp_examples(nlp.vocab)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 1e-3
    losses = []
    for _ in range(30):
        losses.append(nlp.update(examples, sgd=optimizer, drop=0.0)["biobert_relations"])
    return nlp, examples, losses


# --- marking --------------------------------------------------------------------


def test_nested_and_overlapping_mentions_are_marked_like_brackets():
    doc = Doc(spacy.blank("en").vocab, words="the receptor gene kinase binds aspirin .".split())
    outer = Span(doc, 1, 4, label="GENE-Y")  # receptor gene kinase
    inner = Span(doc, 2, 3, label="CHEMICAL")  # gene
    left = Span(doc, 1, 3, label="CHEMICAL")  # receptor gene
    right = Span(doc, 2, 4, label="GENE-N")  # gene kinase (crosses `left`)
    drug = Span(doc, 5, 6, label="CHEMICAL")
    # Each mention once, however many pairs hold it.
    pairs = [(inner, outer), (left, right), (drug, outer), (drug, right)]
    marked = mark_doc(doc, pairs, type_words=TYPE_WORDS)
    assert marked.text == (
        "the @ * gene * @ * chemical * receptor @ * gene * @ * chemical * gene @ @ kinase @ @ "
        "binds @ * chemical * aspirin @ . "
    )
    assert marked.mentions == [
        (1, 4, "GENE-Y"),
        (1, 3, "CHEMICAL"),
        (2, 4, "GENE-N"),
        (2, 3, "CHEMICAL"),
        (5, 6, "CHEMICAL"),
    ]
    for (_, _, label), offset in zip(marked.mentions, marked.opening):
        assert marked.text[offset:].startswith(f"@ * {TYPE_WORDS[label]} *")


def test_markers_land_on_their_wordpieces(marker_bert):
    """Nested, overlapping and identical spans, in a text that already holds
    "@" and "*": every mention's position is its own opening "@"."""
    nlp = initialized(marker_bert)
    words = "@ * chemical * x @ and * @ : the receptor gene kinase binds aspirin .".split()
    doc = make_doc(nlp.vocab, words)
    outer = Span(doc, 11, 14, label="GENE-Y")
    inner = Span(doc, 12, 13, label="CHEMICAL")
    left = Span(doc, 11, 13, label="CHEMICAL")
    right = Span(doc, 12, 14, label="GENE-N")
    same = Span(doc, 11, 14, label="CHEMICAL")  # outer's offsets, another label
    drug = Span(doc, 15, 16, label="CHEMICAL")
    pairs = [(inner, outer), (left, right), (same, outer), (drug, right), (drug, inner)]
    tokenizer = tokenizer_of(nlp)
    batch = mark_mentions([doc], [pairs], tokenizer, type_words=TYPE_WORDS)
    assert len(batch.sequences) == 1 and batch.n_windows == 1 and not batch.skipped
    pieces = tokenizer.convert_ids_to_tokens(batch.sequences[0])
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]"
    assert pieces[1:10] == ["@", "*", "chemical", "*", "x", "@", "and", "*", "@"]  # the text's own
    keys = mark_doc(doc, pairs, type_words=TYPE_WORDS).mentions
    assert len(keys) == 6 and len(set(batch.position.tolist())) == 6
    for (_, _, label), window, position in zip(keys, batch.window, batch.position):
        assert window == 0
        assert pieces[position : position + 4] == ["@", "*", TYPE_WORDS[label], "*"]
    # The pairs point at their own mentions.
    index = {key: i for i, key in enumerate(keys)}
    assert batch.head.tolist() == [index[(h.start, h.end, h.label_)] for h, _ in pairs]
    assert batch.tail.tolist() == [index[(t.start, t.end, t.label_)] for _, t in pairs]
    # The drug's marker is followed by its text.
    drug_at = batch.position[index[(15, 16, "CHEMICAL")]]
    assert pieces[drug_at + 4 : drug_at + 6] == ["aspirin", "@"]


def test_window_starts_and_the_most_centred_window():
    assert window_starts(20, 30, 22) == [0]
    assert window_starts(74, 30, 22) == [0, 22, 44]
    assert window_starts(53, 30, 22) == [0, 22, 23]  # the last one ends at the end
    starts = [0, 22, 44]
    assert best_window(5, starts, 30, 74) == 0  # only in the first
    assert best_window(25, starts, 30, 74) == 0  # 4 after it in 0, 3 before it in 1
    assert best_window(27, starts, 30, 74) == 1  # 2 after it in 0, 5 before it in 1
    assert best_window(50, starts, 30, 74) == 2  # 1 after it in 1; 6 before it in 2
    assert best_window(70, starts, 30, 74) == 2  # the document's end is no limit


def context(position, start, size, n):
    end = min(start + size, n)
    left = position - start if start > 0 else float("inf")
    right = end - 1 - position if end < n else float("inf")
    return min(left, right)


def test_a_long_doc_is_encoded_in_windows(marker_bert):
    nlp = initialized(marker_bert, max_length=32)
    filler = ["the", "cell", "of"]
    words, ents = [], []
    for i in range(12):
        words += filler * 2
        label = "CHEMICAL" if i % 2 == 0 else "GENE-Y"
        ents.append((len(words), len(words) + 1, label, f"T{i}"))
        words.append("aspirin" if label == "CHEMICAL" else "kinase")
    words.append(".")
    doc = make_doc(nlp.vocab, words, ents=ents, sents=[0])
    pairs = nlp.get_pipe("biobert_relations").make_candidates([doc])[0]
    assert len(pairs) == 36
    tokenizer = tokenizer_of(nlp)
    batch = mark_mentions([doc], [pairs], tokenizer, type_words=TYPE_WORDS, max_length=32)
    # The whole marked doc, and where the windows of 30 (32 less [CLS], [SEP]) start.
    marked = mark_doc(doc, pairs, type_words=TYPE_WORDS)
    encoding = tokenizer(marked.text, add_special_tokens=False)
    ids = encoding["input_ids"]
    starts = window_starts(len(ids), 30, 22)
    assert batch.n_windows == len(starts) > 3
    assert 1 < len(batch.sequences) <= len(starts)
    for sequence in batch.sequences:
        assert len(sequence) <= 32
    for key, window, position, offset in zip(marked.mentions, batch.window, batch.position, marked.opening):
        pieces = tokenizer.convert_ids_to_tokens(batch.sequences[window])
        assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]"
        assert 1 <= position < len(pieces) - 1
        assert pieces[position : position + 3] == ["@", "*", TYPE_WORDS[key[2]]]
        # The window it took is the most centred of those holding its marker.
        p = encoding.char_to_token(offset)
        doc_index, start = batch.origins[window]
        assert doc_index == 0 and start in starts
        assert batch.sequences[window][1:-1] == ids[start : start + 30]
        assert position == 1 + p - start
        holding = [s for s in starts if s <= p < s + 30]
        assert context(p, start, 30, len(ids)) == max(context(p, s, 30, len(ids)) for s in holding)
    # Through the model: every pair scored.
    scores = relation_model(nlp).predict(([doc], [pairs]))
    assert scores.shape == (36, 2) and (scores != SKIPPED_LOGIT).all()


def test_chunks_bound_the_windows_encoded_at_once(marker_bert, monkeypatch):
    nlp = initialized(marker_bert, max_length=32, max_sequences_per_batch=2)
    words = [w for i in range(8) for w in ("aspirin", "and", "the", "cell", "kinase", ",")]
    ents = [(6 * i, 6 * i + 1, "CHEMICAL", "") for i in range(8)]
    ents += [(6 * i + 4, 6 * i + 5, "GENE-Y", "") for i in range(8)]
    doc = make_doc(nlp.vocab, words, ents=sorted(ents))
    sizes = []
    real = doc_marked.wordpiece_batch

    def recording(sequences, tokenizer):
        sizes.append(len(sequences))
        return real(sequences, tokenizer)

    monkeypatch.setattr(doc_marked, "wordpiece_batch", recording)
    chunked = nlp(doc.copy())._.relation_pairs
    assert len(chunked) == 64 and len(sizes) > 1 and max(sizes) == 2
    n_windows = sum(sizes)
    relation_model(nlp).attrs["max_sequences_per_batch"] = None
    sizes.clear()
    whole = nlp(doc.copy())._.relation_pairs
    assert sizes == [n_windows]
    assert [(h, t) for h, t, _ in chunked] == [(h, t) for h, t, _ in whole]
    for (_, _, a), (_, _, b) in zip(chunked, whole):
        assert all(abs(a[k] - b[k]) < 1e-4 for k in a)


# --- pair context ("between") ----------------------------------------------------------


def decoded(tokenizer, batch, j):
    """The text of pair j's context range, "" when it has none."""
    w = batch.context_window[j]
    if w < 0:
        return ""
    return tokenizer.decode(batch.sequences[w][batch.context_start[j] : batch.context_end[j]])


def test_the_range_is_the_text_between_the_mentions(marker_bert):
    nlp = initialized(marker_bert, context="between")
    tokenizer = tokenizer_of(nlp)
    doc = make_doc(nlp.vocab, CP_WORDS, ents=CP_ENTS)
    aspirin, kinase, lithium, receptor = doc.ents
    pairs = [
        (aspirin, kinase),  # head first
        (receptor, lithium),  # tail first
        (kinase, lithium),
        (aspirin, receptor),  # other mentions' markers in between
    ]
    batch = mark_mentions([doc], [pairs], tokenizer, type_words=TYPE_WORDS, context="between")
    assert [decoded(tokenizer, batch, j) for j in range(len(pairs))] == [
        "inhibits",
        "activates",
        "and",
        "inhibits @ * gene * kinase @ and @ * chemical * lithium @ activates",
    ]
    # Without the setting, no pair pools anything.
    plain = mark_mentions([doc], [pairs], tokenizer, type_words=TYPE_WORDS)
    assert (plain.context_window == -1).all() and plain.sequences == batch.sequences


def test_adjacent_nested_and_overlapping_mentions_have_no_context(marker_bert):
    nlp = initialized(marker_bert, context="between")
    model = relation_model(nlp)
    tokenizer = tokenizer_of(nlp)
    doc = make_doc(nlp.vocab, "aspirin kinase binds the receptor gene kinase .".split())
    aspirin, kinase = Span(doc, 0, 1, "CHEMICAL"), Span(doc, 1, 2, "GENE-Y")
    outer, inner = Span(doc, 4, 7, "GENE-Y"), Span(doc, 5, 6, "CHEMICAL")
    left, right = Span(doc, 4, 6, "CHEMICAL"), Span(doc, 5, 7, "GENE-N")
    pairs = [
        (aspirin, kinase),
        (kinase, aspirin),
        (inner, outer),
        (outer, inner),
        (left, right),
        (aspirin, aspirin),
    ]
    batch = mark_mentions([doc], [pairs], tokenizer, type_words=TYPE_WORDS, context="between")
    assert (batch.context_window == -1).all()
    encoder = model.get_ref("encoder")
    _, C, _ = doc_marked._mention_vectors(model, encoder, batch, tokenizer, encoder.get_dim("nO"), False)
    assert C.shape == (len(pairs), 32) and not C.any()
    # Next to them, a pair with text between has it.
    far = mark_mentions([doc], [[(aspirin, outer)]], tokenizer, type_words=TYPE_WORDS, context="between")
    assert decoded(tokenizer, far, 0) == "kinase binds the"  # only candidates are marked
    assert between_range(3, 5, 6, 9) is None  # adjacent: a closing right before an opening
    assert between_range(3, 9, 4, 6) is None  # nested
    assert between_range(3, 7, 5, 9) is None  # overlapping
    assert between_range(6, 9, 1, 3) == (4, 6)  # the second mention first
    assert between_range(1, None, 6, 9) is None  # a lost marker


def test_the_context_vector_is_the_mean_over_the_range(marker_bert):
    nlp = initialized(marker_bert, context="between")
    model = relation_model(nlp)
    encoder, scorer = model.get_ref("encoder"), model.get_ref("scorer")
    tokenizer = encoder.tokenizer
    doc = make_doc(nlp.vocab, CP_WORDS, ents=CP_ENTS)
    aspirin, kinase, lithium, receptor = doc.ents
    pairs = [(aspirin, kinase), (receptor, aspirin), (lithium, receptor)]
    batch = mark_mentions([doc], [pairs], tokenizer, type_words=TYPE_WORDS, context="between")
    H = encoder.predict(wordpiece_batch(batch.sequences, tokenizer))[0]
    expected = numpy.stack(
        [H[batch.context_start[j] : batch.context_end[j]].mean(axis=0) for j in range(len(pairs))]
    )
    assert [batch.context_end[j] - batch.context_start[j] for j in range(3)] == [1, 15, 1]
    _, C, _ = doc_marked._mention_vectors(model, encoder, batch, tokenizer, 32, False)
    numpy.testing.assert_allclose(C, expected, rtol=1e-5, atol=1e-6)
    # The scorer sees [h; t; h * t; c].
    M = H[batch.position]
    h, t = M[batch.head], M[batch.tail]
    F = numpy.concatenate([h, t, h * t, expected], axis=1)
    numpy.testing.assert_allclose(model.predict(([doc], [pairs])), scorer.predict(F), rtol=1e-4, atol=1e-5)


def long_doc(vocab, n_mentions=12):
    """Mentions (chemical, gene alternately) 6 filler words apart."""
    filler = ["the", "cell", "of"]
    words, ents = [], []
    for i in range(n_mentions):
        words += filler * 2
        label = "CHEMICAL" if i % 2 == 0 else "GENE-Y"
        ents.append((len(words), len(words) + 1, label, f"T{i}"))
        words.append("aspirin" if label == "CHEMICAL" else "kinase")
    words.append(".")
    return make_doc(vocab, words, ents=ents, sents=[0])


def test_a_range_across_windows_is_pooled_in_one_window(marker_bert):
    """max_length 32: windows of 30 wordpieces, 22 apart. Each pair pools in
    its head's window if that holds the whole range, else in its tail's, else
    in the window holding most of it (the first of equals), only the part
    inside it."""
    nlp = initialized(marker_bert, max_length=32, context="between")
    tokenizer = tokenizer_of(nlp)
    doc = long_doc(nlp.vocab)
    pairs = nlp.get_pipe("biobert_relations").make_candidates([doc])[0]
    pairs = pairs + [(t, h) for h, t in pairs]  # either one first
    batch = mark_mentions([doc], [pairs], tokenizer, type_words=TYPE_WORDS, max_length=32, context="between")
    marked = mark_doc(doc, pairs, type_words=TYPE_WORDS)
    encoding = tokenizer(marked.text, add_special_tokens=False)
    ids = encoding["input_ids"]
    starts = window_starts(len(ids), 30, 22)
    opening = [encoding.char_to_token(o) for o in marked.opening]
    closing = [encoding.char_to_token(c) for c in marked.closing]
    cases = set()
    for j, (h, t) in enumerate(zip(batch.head, batch.tail)):
        a, b = (closing[h] + 1, opening[t]) if closing[h] < opening[t] else (closing[t] + 1, opening[h])
        assert a < b
        holds = [s for s in starts if s <= a and b <= s + 30]
        head_start = batch.origins[batch.window[h]][1]
        tail_start = batch.origins[batch.window[t]][1]
        if head_start in holds:
            case, start = "head", head_start
        elif tail_start in holds:
            case, start = "tail", tail_start
        else:
            overlaps = [len(set(range(a, b)) & set(range(s, s + 30))) for s in starts]
            case, start = "most", starts[overlaps.index(max(overlaps))]
            if b - a > 30:
                case = "partial"
        cases.add(case)
        w = batch.context_window[j]
        assert batch.origins[w] == (0, start)
        # The positions (after [CLS]) are the range's wordpieces in that window.
        pooled = batch.sequences[w][batch.context_start[j] : batch.context_end[j]]
        assert pooled == ids[max(a, start) : min(b, start + 30)]
    assert cases == {"head", "tail", "most", "partial"}
    assert context_window(10, 20, 1, 0, [0, 22], 30) == 0  # the tail's when the head's lacks it
    assert context_window(10, 40, 0, 0, [0, 8, 22], 30) == 1  # most: 22 of 30
    assert context_window(10, 80, 0, 0, [0, 22, 44], 30) == 1  # equals: the first


def test_a_window_only_a_pair_pools_is_encoded(marker_bert):
    """Two mentions 60 words apart: each takes the window at its end of the
    doc, the pair pools the first window wholly inside the text between."""
    nlp = initialized(marker_bert, max_length=32, context="between")
    model = relation_model(nlp)
    encoder = model.get_ref("encoder")
    tokenizer = encoder.tokenizer
    words = ["aspirin"] + ["the", "cell", "of"] * 20 + ["kinase", "."]
    doc = make_doc(nlp.vocab, words, ents=[(0, 1, "CHEMICAL", "T1"), (61, 62, "GENE-Y", "T2")])
    pairs = [(doc.ents[0], doc.ents[1])]
    plain = mark_mentions([doc], [pairs], tokenizer, type_words=TYPE_WORDS, max_length=32)
    batch = mark_mentions([doc], [pairs], tokenizer, type_words=TYPE_WORDS, max_length=32, context="between")
    assert len(plain.sequences) == 2 and len(batch.sequences) == 3
    assert batch.origins[:2] == plain.origins and batch.origins[2] == (0, 22)
    assert batch.context_window[0] == 2
    assert (batch.context_start[0], batch.context_end[0]) == (1, 31)  # the whole window
    H = encoder.predict(wordpiece_batch(batch.sequences, tokenizer))
    _, C, _ = doc_marked._mention_vectors(model, encoder, batch, tokenizer, 32, False)
    numpy.testing.assert_allclose(C[0], H[2, 1:31].mean(axis=0), rtol=1e-5, atol=1e-6)
    assert (model.predict(([doc], [pairs])) != SKIPPED_LOGIT).all()


def record_encoder(encoder, monkeypatch):
    """Patch `encoder` to run without a graph and record, per call, its
    input ids, its output and the gradient it is given (a model with
    `recompute_chunks = false`, so that each chunk is one call)."""
    real = encoder._func
    calls = []

    def recording(layer, wordpieces, is_train):
        H, _ = real(layer, wordpieces, False)
        call = {"ids": wordpieces.input_ids.copy(), "H": H.copy()}
        calls.append(call)

        def backprop(dH):
            call["dH"] = dH.copy()
            return []

        return H, backprop

    monkeypatch.setattr(encoder, "_func", recording)
    return calls


def test_the_context_gradient_is_spread_over_the_range(marker_bert, monkeypatch):
    """With a linear scorer (dF = dY R^T), the gradient of the hidden states
    is each pair's head and tail share at their markers plus dc / len over
    its range, summed where they meet."""
    nlp = initialized(marker_bert, context="between", recompute_chunks=False)
    model = relation_model(nlp)
    encoder, scorer = model.get_ref("encoder"), model.get_ref("scorer")
    calls = record_encoder(encoder, monkeypatch)
    rng = numpy.random.default_rng(0)
    R = rng.normal(size=(4 * 32, 2)).astype("float32")
    monkeypatch.setattr(scorer, "_func", lambda layer, X, is_train: (X @ R, lambda dZ: dZ @ R.T))
    doc = make_doc(nlp.vocab, CP_WORDS, ents=CP_ENTS)
    aspirin, kinase, lithium, receptor = doc.ents
    # Ranges that overlap each other and hold other mentions' markers.
    pairs = [
        (aspirin, receptor),
        (receptor, aspirin),
        (lithium, kinase),
        (aspirin, kinase),
        (kinase, aspirin),
    ]
    Y, backprop = model.begin_update(([doc], [pairs]))
    dY = rng.normal(size=Y.shape).astype("float32")
    backprop(dY)
    (call,) = calls
    H, dH = call["H"][0], call["dH"][0]
    batch = mark_mentions([doc], [pairs], encoder.tokenizer, type_words=TYPE_WORDS, context="between")
    M = H[batch.position]
    dF = dY @ R.T
    expected = numpy.zeros_like(H)
    F = []
    for j, (h, t) in enumerate(zip(batch.head, batch.tail)):
        s, e = batch.context_start[j], batch.context_end[j]
        F.append(numpy.concatenate([M[h], M[t], M[h] * M[t], H[s:e].mean(axis=0)]))
        expected[batch.position[h]] += dF[j, :32] + dF[j, 64:96] * M[t]
        expected[batch.position[t]] += dF[j, 32:64] + dF[j, 64:96] * M[h]
        expected[s:e] += dF[j, 96:] / (e - s)
    numpy.testing.assert_allclose(Y, numpy.stack(F) @ R, rtol=1e-4, atol=1e-5)
    numpy.testing.assert_allclose(dH, expected, rtol=1e-4, atol=1e-6)
    # Outside the markers and the ranges, nothing (but float noise).
    touched = set(batch.position.tolist())
    for j in range(len(pairs)):
        touched |= set(range(batch.context_start[j], batch.context_end[j]))
    assert {int(i) for i in numpy.flatnonzero(numpy.abs(dH).max(axis=1) > 1e-7)} == touched


def test_chunks_give_the_same_scores_and_gradients(marker_bert, monkeypatch):
    """One window per chunk, so that a pair's context window is often in a
    chunk other than its mentions' ones: the scores and each window's
    gradient are those of one chunk for all."""
    nlp = initialized(
        marker_bert, max_length=32, context="between", max_sequences_per_batch=1, recompute_chunks=False
    )
    model = relation_model(nlp)
    calls = record_encoder(model.get_ref("encoder"), monkeypatch)
    doc = long_doc(nlp.vocab)
    pairs = nlp.get_pipe("biobert_relations").make_candidates([doc])[0]
    dY = numpy.random.default_rng(0).normal(size=(len(pairs), 2)).astype("float32")

    def run(limit):
        model.attrs["max_sequences_per_batch"] = limit
        calls.clear()
        Y, backprop = model.begin_update(([doc], [pairs]))
        backprop(dY)
        gradients = {}
        for call in calls:
            for ids, dH in zip(call["ids"], call["dH"]):
                gradients[tuple(ids.tolist())] = dH
        return Y, gradients, len(calls)

    chunked, chunked_dH, n_chunked = run(1)
    whole, whole_dH, n_whole = run(None)
    assert n_chunked == len(whole_dH) > 3 and n_whole == 1
    numpy.testing.assert_allclose(chunked, whole, rtol=1e-4, atol=1e-5)
    assert chunked_dH.keys() == whole_dH.keys()
    for ids, dH in whole_dH.items():
        numpy.testing.assert_allclose(chunked_dH[ids], dH, rtol=1e-4, atol=1e-6)


# --- gradients -----------------------------------------------------------------------


def test_mention_gradient_sums_over_the_pairs_of_a_mention():
    ops = NumpyOps()
    rng = numpy.random.default_rng(0)
    M = rng.normal(size=(3, 4)).astype("float32")
    heads = numpy.asarray([0, 0, 1], dtype="int32")
    tails = numpy.asarray([1, 2, 2], dtype="int32")
    dF = rng.normal(size=(3, 12)).astype("float32")
    dM = mention_gradient(ops, dF, heads, tails, M[heads], M[tails], 3)

    def share(k, role):  # d[h; t; h*t] / d(head or tail) of pair k
        h, t = M[heads[k]], M[tails[k]]
        if role == "head":
            return dF[k, :4] + dF[k, 8:] * t
        return dF[k, 4:8] + dF[k, 8:] * h

    numpy.testing.assert_allclose(dM[0], share(0, "head") + share(1, "head"), rtol=1e-5)
    numpy.testing.assert_allclose(dM[1], share(0, "tail") + share(2, "head"), rtol=1e-5)
    numpy.testing.assert_allclose(dM[2], share(1, "tail") + share(2, "tail"), rtol=1e-5)


def test_the_encoder_gets_the_summed_gradient_at_the_markers(tiny_bert, monkeypatch):
    """Through the model: the gradient of the hidden states is zero but at the
    mentions' opening markers, and a mention in two pairs gets the sum of
    what each pair gives it."""
    nlp = initialized(tiny_bert)
    model = relation_model(nlp)
    encoder = model.get_ref("encoder")
    real = encoder._func
    received = []

    def recording(layer, wordpieces, is_train):
        H, _ = real(layer, wordpieces, False)  # no graph: backprop is recorded only
        return H, lambda dH: received.append(dH.copy()) or []

    monkeypatch.setattr(encoder, "_func", recording)
    doc = make_doc(nlp.vocab, CP_WORDS, ents=CP_ENTS)
    aspirin, kinase, receptor = doc.ents[0], doc.ents[1], doc.ents[3]
    pairs = [(aspirin, kinase), (aspirin, receptor)]  # aspirin in both
    Y, backprop = model.begin_update(([doc], [pairs]))
    batch = mark_mentions([doc], [pairs], encoder.tokenizer, type_words=TYPE_WORDS)
    at = {key: int(p) for key, p in zip(mark_doc(doc, pairs).mentions, batch.position)}
    gradients = []
    for rows in ([0], [1], [0, 1]):
        dY = numpy.zeros_like(Y)
        dY[rows] = 1.0
        backprop(dY)
        gradients.append(received[-1][0])
    first, second, both = gradients
    numpy.testing.assert_allclose(both, first + second, rtol=1e-4, atol=1e-6)
    a = at[(0, 1, "CHEMICAL")]
    assert numpy.abs(first[a]).sum() > 0 and numpy.abs(second[a]).sum() > 0
    marked = {a, at[(2, 3, "GENE-Y")], at[(6, 7, "GENE-N")]}
    assert {int(i) for i in numpy.flatnonzero(numpy.abs(both).sum(axis=1))} == marked


@pytest.mark.parametrize("context", ["none", "between"])
def test_gradients_reach_the_shared_transformer(tiny_bert, context):
    nlp = make_nlp(tiny_bert, context=context)
    examples = cp_examples(nlp.vocab)
    nlp.initialize(lambda: examples)
    biobert = nlp.get_pipe("biobert")
    assert relation_model(nlp).get_ref("encoder").upstream_model is biobert.model
    trf = biobert.model.transformer
    nlp.update(examples, sgd=False)  # updates only (gradients), as spacy train does
    assert all(
        p.grad is not None and bool(p.grad.abs().sum() > 0)
        for name, p in trf.named_parameters()
        if "pooler" not in name
    )


def shared_gradients(bert, recompute, context):
    """The shared transformer's gradients after one backward pass, one window
    per chunk, with the transformer's dropout on; the tensors the forward
    saved for autograd, and the number of chunks."""
    import torch

    fix_random_seed(0)  # the same scorer weights for both settings
    nlp = initialized(
        bert, max_length=32, context=context, max_sequences_per_batch=1, recompute_chunks=recompute
    )
    model = relation_model(nlp)
    trf = nlp.get_pipe("biobert").model.transformer
    assert trf.config.hidden_dropout_prob > 0  # the two passes must draw the same masks
    doc = long_doc(nlp.vocab)
    pairs = nlp.get_pipe("biobert_relations").make_candidates([doc])[0]
    saved = []

    def pack(tensor):
        saved.append(tensor.numel())
        return tensor

    torch.manual_seed(7)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        Y, backprop = model(([doc], [pairs]), is_train=True)
    for p in trf.parameters():
        p.grad = None
    backprop(model.ops.xp.ones_like(Y))
    grads = {n: p.grad.clone() for n, p in trf.named_parameters() if p.grad is not None}
    return Y, grads, len(saved)


@pytest.mark.parametrize("context", ["none", "between"])
def test_recomputed_chunks_keep_no_activations_and_give_the_same_gradients(marker_bert, context):
    """recompute_chunks: the training forward keeps nothing for autograd, and
    the backward pass (each window encoded again, with the same dropout)
    gives the gradients of keeping every chunk's activations."""
    import torch

    Y_kept, kept, saved_kept = shared_gradients(marker_bert, False, context)
    Y_re, recomputed, saved_re = shared_gradients(marker_bert, True, context)
    assert saved_kept > 0 and saved_re == 0
    numpy.testing.assert_allclose(Y_kept, Y_re, rtol=1e-5, atol=1e-6)
    assert sorted(kept) == sorted(recomputed) and kept
    for name in kept:
        assert torch.allclose(kept[name], recomputed[name], atol=1e-5, rtol=1e-4), name


def test_recomputing_restores_the_random_state(tiny_bert):
    import torch

    nlp = initialized(tiny_bert, max_sequences_per_batch=1, recompute_chunks=True)
    model = relation_model(nlp)
    docs = [eg.reference for eg in cp_examples(nlp.vocab)]
    candidates = nlp.get_pipe("biobert_relations").make_candidates(docs)
    Y, backprop = model((docs, candidates), is_train=True)
    state = torch.get_rng_state()
    backprop(model.ops.xp.ones_like(Y))
    assert torch.equal(state, torch.get_rng_state())


# --- learning ------------------------------------------------------------------------


def test_overfits_a_toy_example(trained):
    nlp, examples, losses = trained
    assert losses[-1] < losses[0] / 3, losses
    for eg in examples:
        doc = nlp(eg.predicted.copy())
        gold = {(r["head"], r["tail"], r["label"]) for r in eg.reference._.gold_relations}
        ids = {e.start: e.id_ for e in eg.reference.ents}
        for (h, t), scores in doc._.relations.items():
            for label, p in scores.items():
                if (ids[h], ids[t], label) in gold:
                    assert p > 0.5, (h, t, label, p)
                else:
                    assert p < 0.5, (h, t, label, p)


def test_learns_a_concept_level_label_across_sentences(tiny_bert):
    """BC5CDR's CID in miniature: mention pairs across sentences, pooled per
    kb id pair by the component."""
    fix_random_seed(0)
    nlp = make_nlp(tiny_bert, pairs=[["Chemical", "Disease"]], type_words=None)
    words = "cocaine induced seizures . later , cocaine and hypotension .".split()
    reference = Doc(nlp.vocab, words=words)
    for i, token in enumerate(reference):
        token.is_sent_start = i in (0, 4)
    reference.ents = [
        Span(reference, 0, 1, "Chemical", kb_id="D1"),
        Span(reference, 2, 3, "Disease", kb_id="D2"),
        Span(reference, 6, 7, "Chemical", kb_id="D1"),
        Span(reference, 8, 9, "Disease", kb_id="D3"),
    ]
    reference._.gold_relations = [{"level": "concept", "head": "D1", "tail": "D2", "label": "CID"}]
    predicted = reference.copy()
    predicted._.gold_relations = None
    examples = [Example(predicted, reference)]
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 1e-3
    for _ in range(25):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    doc = nlp(reference.copy())
    assert len(doc._.relation_pairs) == 4
    assert doc._.kb_relations[("D1", "D2")]["CID"] > 0.5
    assert doc._.kb_relations[("D1", "D3")]["CID"] < 0.5


# --- save and load ---------------------------------------------------------------------


def test_save_and_load_give_equal_predictions(trained, tmp_path):
    nlp, examples, _ = trained
    texts = [eg.predicted.copy() for eg in examples]
    expected = [d._.relation_pairs for d in nlp.pipe([t.copy() for t in texts])]
    assert all(expected)
    nlp.to_disk(tmp_path / "pipeline")
    reloaded = spacy.load(tmp_path / "pipeline")
    assert reloaded.config["components"]["biobert_relations"]["model"]["@architectures"] == (ARCHITECTURE)
    encoder = relation_model(reloaded).get_ref("encoder")
    assert encoder.upstream_model is reloaded.get_pipe("biobert").model
    assert [d._.relation_pairs for d in reloaded.pipe([t.copy() for t in texts])] == expected
    context = relation_model(nlp).attrs["context"]
    assert relation_model(reloaded).attrs["context"] == context
    fresh = make_nlp(nlp.get_pipe("biobert").model.attrs["name"], context=context)
    fresh.from_bytes(nlp.to_bytes())
    assert [d._.relation_pairs for d in fresh.pipe([t.copy() for t in texts])] == expected
    # The relation component holds the classifier and its settings, no transformer.
    assert not (tmp_path / "pipeline" / "biobert_relations" / "model").is_dir()
    sizes = {p.parent.name: p.stat().st_size for p in (tmp_path / "pipeline").glob("*/model")}
    assert sizes["biobert_relations"] < sizes["biobert"] / 5


# --- edge cases ------------------------------------------------------------------------


def test_docs_without_candidates_and_empty_docs(trained):
    nlp, _, _ = trained
    docs = [
        nlp.make_doc(""),
        make_doc(nlp.vocab, ["aspirin", "."], ents=[(0, 1, "CHEMICAL", "T1")]),
        make_doc(nlp.vocab, ["nothing", "here"]),
    ]
    for doc in nlp.pipe(docs):
        assert doc._.relations == {} and doc._.relation_pairs == []
    eg = example(nlp.vocab, ["aspirin", "."], ents=[(0, 1, "CHEMICAL", "T1")], relations=[])
    losses = nlp.update([eg], sgd=None)
    assert losses["biobert_relations"] == 0.0
    model = relation_model(nlp)
    assert model.predict(([], [])).shape == (0, 2)
    # A batch mixing docs with and without candidates keeps the pair order.
    doc = make_doc(nlp.vocab, CP_WORDS, ents=CP_ENTS)
    pairs = [(doc.ents[0], doc.ents[1]), (doc.ents[2], doc.ents[3])]
    alone = model.predict(([doc], [pairs]))
    mixed = model.predict(([docs[1], doc, docs[2]], [[], pairs, []]))
    numpy.testing.assert_allclose(mixed, alone, rtol=1e-5)


def test_identical_spans_and_pairs_across_sentences(tiny_bert):
    nlp = initialized(tiny_bert)
    model = relation_model(nlp)
    words = "aspirin was given . kinase was high . lithium inhibits receptor .".split()
    doc = make_doc(nlp.vocab, words, sents=[0, 4, 8])
    aspirin, kinase = Span(doc, 0, 1, "CHEMICAL"), Span(doc, 4, 5, "GENE-Y")
    lithium, receptor = Span(doc, 8, 9, "CHEMICAL"), Span(doc, 10, 11, "GENE-N")
    twin = Span(doc, 0, 1, "CHEMICAL")  # another Span object, the same mention
    pairs = [
        (aspirin, kinase),
        (aspirin, twin),
        (lithium, receptor),
        (aspirin, receptor),
        (aspirin, aspirin),
    ]
    scores = model.predict(([doc], [pairs]))
    assert scores.shape == (5, 2) and (scores != SKIPPED_LOGIT).all()
    assert not model.skipped
    # One span with itself (or its twin) is scored, from the same vector twice.
    numpy.testing.assert_allclose(scores[1], scores[4], rtol=1e-6)
    # Through the component: the pairs of doc.ents, across sentences.
    doc.ents = [aspirin, kinase, lithium, receptor]
    rel = nlp.get_pipe("biobert_relations")
    rel.set_annotations([doc], rel.predict([doc]))
    assert len(doc._.relation_pairs) == 4  # 2 chemicals x 2 genes, across sentences


# --- settings and errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    "setting,match",
    [
        ({"marking": "anonymise"}, r"\[E233\] marking must be one of \('typed_punct',\)"),
        ({"max_length": 8}, r"\[E234\] max_length must be None or an integer >= 16"),
        ({"stride": 0}, r"\[E234\] stride must be None or an integer >= 1"),
        ({"stride": 40, "max_length": 32}, r"\[E234\] stride must be None or at most max_length"),
        ({"max_sequences_per_batch": 0}, r"\[E234\] max_sequences_per_batch"),
        ({"type_words": {"CHEMICAL": ""}}, r"\[E234\] type_words"),
        ({"context": "bad"}, r"\[E233\] context must be one of \('none', 'between'\), not 'bad'"),
        ({"recompute_chunks": "yes"}, r"\[E234\] recompute_chunks must be true or false"),
    ],
)
def test_settings_are_checked(setting, match):
    with pytest.raises(ValueError, match=match):
        create_entity_marked_relation_model(SharedTransformer("biobert"), **setting)


@pytest.mark.parametrize("context,parts", [(None, 3), ("none", 3), ("between", 4)])
def test_the_scorer_is_sized_from_the_context(tiny_bert, context, parts):
    """The default (no `context` in the config) is "none": [h; t; h * t]."""
    nlp = initialized(tiny_bert, **({} if context is None else {"context": context}))
    model = relation_model(nlp)
    assert model.attrs["context"] == (context or "none")
    assert nlp.config["components"]["biobert_relations"]["model"]["context"] == (context or "none")
    assert model.get_ref("scorer").layers[0].get_dim("nI") == parts * 32


@pytest.mark.parametrize(
    "name,context", [("chemprot_doc_marked.cfg", "between"), ("cid_marked.cfg", "none")]
)
def test_the_marked_configs_keep_the_measured_context(name, context):
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / name)
    model = config["components"]["biobert_relations"]["model"]
    assert model["@architectures"] == ARCHITECTURE and model["context"] == context


def test_a_stride_longer_than_a_window_is_a_coded_error(tiny_bert):
    nlp = initialized(tiny_bert, max_length=32, stride=31)
    doc = make_doc(nlp.vocab, CP_WORDS, ents=CP_ENTS)
    with pytest.raises(ValueError, match=r"\[E241\] stride 31 is longer than a window \(30"):
        nlp(doc)


def test_model_input_is_docs_and_candidates(trained):
    nlp, examples, _ = trained
    model = relation_model(nlp)
    docs = [eg.predicted for eg in examples]
    with pytest.raises(ValueError, match=r"\[E240\] spacy-biobert.EntityMarkedRelationModel.v1"):
        model.predict(docs)
    with pytest.raises(ValueError, match=r"\[E209\]"):
        model.predict((docs, []))


def test_no_upstream_transformer_is_a_coded_error():
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert_relations", config={"model": model_config()})
    examples = cp_examples(nlp.vocab)
    with pytest.raises(ValueError, match=r"\[E230\]"):
        nlp.initialize(lambda: examples)
