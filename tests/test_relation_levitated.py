"""The levitated-marker relation model (`spacy-biobert.LevitatedMarkerRelationModel.v1`):
markers at their mentions' positions after the text, the text encoded as if
alone and each pair's markers blind to the others', packing and windows, bad
input, gradients into the one transformer, save/load, overfitting, and the
prediction that reuses the `biobert` pass's per-layer states."""

import numpy
import pytest
import spacy
from relation_toys import (
    CP_ENTS,
    CP_WORDS,
    LISTENER,
    PAIRS,
    SHARED_ENCODER,
    cp_examples,
    make_doc,
    tiny_marker_bert,
)
from spacy.tokens import Span

import spacy_biobert  # noqa: F401
from spacy_biobert.extensions import install_extensions
from spacy_biobert.models.levitated_marker_model import (
    MARKERS,
    N_MARKERS,
    SKIPPED_LOGIT,
    create_levitated_marker_relation_model,
    levitate,
    positioned_wordpieces,
)

install_extensions()

ARCHITECTURE = "spacy-biobert.LevitatedMarkerRelationModel.v1"


@pytest.fixture(scope="session")
def marker_bert(tmp_path_factory) -> str:
    return tiny_marker_bert(tmp_path_factory.mktemp("tiny-bert-levitated"))


def build(bert, ner=False, pairs=PAIRS, **overrides):
    """`biobert` (+ a listening `ner`) + `biobert_relations` with this model."""
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": bert}})
    if ner:
        nlp.add_pipe("ner", config={"model": {"tok2vec": LISTENER}})
    model = {"@architectures": ARCHITECTURE, "encoder": SHARED_ENCODER, "hidden_width": 16, "dropout": 0.0}
    model.update(overrides)
    nlp.add_pipe(
        "biobert_relations",
        config={"candidates": {"@misc": "spacy-biobert.EntityPairs.v1", "allowed_pairs": pairs},
                "model": model},
    )
    return nlp


def initialized(bert, **overrides):
    nlp = build(bert, **overrides)
    nlp.initialize(lambda: cp_examples(nlp.vocab))
    return nlp


def parts(nlp):
    rel = nlp.get_pipe("biobert_relations")
    encoder = rel.model.get_ref("encoder")
    return rel, encoder, encoder.tokenizer


@pytest.fixture(scope="module")
def trained(marker_bert):
    spacy.util.fix_random_seed(0)
    nlp = build(marker_bert)
    examples = cp_examples(nlp.vocab)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 1e-3
    losses = []
    for _ in range(40):
        losses.append(nlp.update(examples, sgd=optimizer, drop=0.0)["biobert_relations"])
    return nlp, examples, losses


# --- packing ---------------------------------------------------------------------------


def test_markers_follow_the_text_at_their_mentions_positions(marker_bert):
    nlp = initialized(marker_bert)
    rel, _, tokenizer = parts(nlp)
    doc = make_doc(nlp.vocab, CP_WORDS, ents=CP_ENTS)
    pairs = rel.candidates(doc)
    batch = levitate([doc], [pairs], tokenizer, max_length=64)
    (seq,) = batch.sequences
    text = tokenizer(doc.text)["input_ids"]
    assert seq.input_ids[: seq.n_text] == text and seq.n_text == len(text)
    assert seq.position_ids[: seq.n_text] == list(range(len(text)))
    tokens = tokenizer.convert_ids_to_tokens(seq.input_ids)
    assert len(seq.input_ids) == len(text) + N_MARKERS * len(pairs)
    for row, (head, tail) in enumerate(pairs):
        assert batch.sequence[row] == 0
        a = int(batch.first_marker[row])
        assert tokens[a : a + N_MARKERS] == list(MARKERS)
        # each marker sits at the position of its mention's first / last wordpiece
        marked = [tokens[p] for p in seq.position_ids[a : a + N_MARKERS]]
        assert marked == [head.text, head.text, tail.text, tail.text]


def test_the_mask_keeps_the_text_to_itself_and_each_pair_to_its_markers(marker_bert):
    nlp = initialized(marker_bert)
    rel, _, tokenizer = parts(nlp)
    doc = make_doc(nlp.vocab, CP_WORDS, ents=CP_ENTS)
    batch = levitate([doc], [rel.candidates(doc)], tokenizer, max_length=64)
    short = levitate([doc], [rel.candidates(doc)[:1]], tokenizer, max_length=64)
    X = positioned_wordpieces(short.sequences + batch.sequences, tokenizer)
    n_text, length = batch.sequences[0].n_text, len(batch.sequences[0].input_ids)
    mask = X.attention_mask[1]
    assert (mask[:n_text, :n_text] == 1).all() and (mask[:n_text, n_text:] == 0).all()
    assert (mask[n_text:length, :n_text] == 1).all()
    for a in range(n_text, length, N_MARKERS):
        block = mask[a : a + N_MARKERS, n_text:length]
        assert block.sum() == N_MARKERS * N_MARKERS
        assert (block[:, a - n_text : a - n_text + N_MARKERS] == 1).all()
    # the shorter sequence is padded: its padding attends to position 0 only
    padded = X.attention_mask[0, len(short.sequences[0].input_ids):]
    assert (padded[:, 0] == 1).all() and padded[:, 1:].sum() == 0


def test_the_text_is_encoded_as_if_alone_and_pairs_do_not_see_each_other(marker_bert):
    """The levitated property: markers change nothing of the text's hidden
    states, and a pair's marker states do not depend on the other pairs."""
    from spacy_transformers.data_classes import WordpieceBatch

    nlp = initialized(marker_bert)
    rel, encoder, tokenizer = parts(nlp)
    doc = make_doc(nlp.vocab, CP_WORDS, ents=CP_ENTS)
    pairs = rel.candidates(doc)
    every = levitate([doc], [pairs], tokenizer, max_length=64)
    alone = levitate([doc], [pairs[-1:]], tokenizer, max_length=64)
    H_every = encoder.predict(positioned_wordpieces(every.sequences, tokenizer))
    H_alone = encoder.predict(positioned_wordpieces(alone.sequences, tokenizer))
    ids = numpy.asarray([tokenizer(doc.text)["input_ids"]])
    plain = encoder.predict(WordpieceBatch(
        strings=[], input_ids=ids, attention_mask=numpy.ones(ids.shape, dtype="float32"),
        lengths=[ids.shape[1]], token_type_ids=numpy.zeros_like(ids)))
    n = ids.shape[1]
    assert numpy.allclose(H_every[0, :n], plain[0], atol=1e-5)
    a, b = int(every.first_marker[len(pairs) - 1]), int(alone.first_marker[0])
    assert numpy.allclose(H_every[0, a : a + N_MARKERS], H_alone[0, b : b + N_MARKERS], atol=1e-5)
    assert not numpy.allclose(H_every[0, a], H_every[0, int(every.first_marker[0])], atol=1e-3)


def test_pairs_are_packed_into_sequences_that_repeat_the_text(marker_bert):
    nlp = initialized(marker_bert)
    rel, _, tokenizer = parts(nlp)
    doc = make_doc(nlp.vocab, CP_WORDS, ents=CP_ENTS)
    pairs = rel.candidates(doc)
    assert len(pairs) == 4
    batch = levitate([doc], [pairs], tokenizer, max_length=64, max_pairs_per_sequence=3)
    assert [len(s.input_ids) - s.n_text for s in batch.sequences] == [3 * N_MARKERS, N_MARKERS]
    assert batch.sequences[0].input_ids[: batch.sequences[0].n_text] == batch.sequences[1].input_ids[
        : batch.sequences[1].n_text]
    assert batch.sequence.tolist() == [0, 0, 0, 1]


def test_a_long_doc_is_windowed_and_a_pair_wider_than_a_window_is_skipped(marker_bert):
    nlp = initialized(marker_bert, max_length=16, stride=8)
    rel, _, tokenizer = parts(nlp)
    filler = "the of and in a to with was were".split()
    words = ["aspirin", "inhibits", "kinase"] + filler * 3 + ["lithium", "activates", "receptor", "."]
    doc = make_doc(nlp.vocab, words, ents=[(0, 1, "CHEMICAL", "T1"), (2, 3, "GENE-Y", "T2"),
                                           (30, 31, "CHEMICAL", "T3"), (32, 33, "GENE-N", "T4")])
    pairs = rel.candidates(doc)
    batch = levitate([doc], [pairs], tokenizer, max_length=16, stride=8)
    near = [i for i, (h, t) in enumerate(pairs) if abs(h.start - t.start) <= 2]
    far = [i for i in range(len(pairs)) if i not in near]
    assert near and far
    assert all(batch.sequence[i] >= 0 for i in near) and all(batch.sequence[i] < 0 for i in far)
    assert batch.skipped["pair_wider_than_a_window"] == len(far)
    assert all(len(s.input_ids[: s.n_text]) <= 16 for s in batch.sequences)
    assert len({tuple(s.input_ids[: s.n_text]) for s in batch.sequences}) == 2  # two windows
    Y = rel.model.predict(([doc], [pairs]))
    assert (Y[far] == SKIPPED_LOGIT).all() and (Y[near] != SKIPPED_LOGIT).all()
    assert rel.model.skipped["pair_wider_than_a_window"] == len(far)


# --- bad input --------------------------------------------------------------------------


def test_nested_overlapping_pairs_and_marker_strings_in_the_text(marker_bert):
    nlp = initialized(marker_bert)
    rel, _, _ = parts(nlp)
    words = "@ # and the receptor gene kinase binds aspirin .".split()
    doc = make_doc(nlp.vocab, words)
    outer = Span(doc, 4, 7, label="GENE-Y")  # receptor gene kinase
    inner = Span(doc, 5, 6, label="CHEMICAL")  # gene, inside it
    left = Span(doc, 4, 6, label="CHEMICAL")  # receptor gene, crossing `right`
    right = Span(doc, 5, 7, label="GENE-N")
    drug = Span(doc, 8, 9, label="CHEMICAL")
    pairs = [(inner, outer), (left, right), (drug, outer), (inner, inner)]
    Y = rel.model.predict(([doc], [pairs]))
    assert Y.shape == (4, len(rel.labels)) and (Y != SKIPPED_LOGIT).all()


def test_docs_without_candidates_and_empty_docs(trained):
    nlp, _, _ = trained
    docs = list(nlp.pipe(["", "aspirin and lithium .", "kinase ."]))
    assert all(doc._.relations == {} for doc in docs)
    rel = nlp.get_pipe("biobert_relations")
    Y = rel.model.predict((docs, [[] for _ in docs]))
    assert Y.shape == (0, len(rel.labels))


def test_a_vocabulary_without_the_markers_is_a_coded_error(tiny_bert):
    nlp = build(tiny_bert)  # conftest's tiny BERT has no "@" or "#"
    with pytest.raises(ValueError, match=r"\[E251\] the levitated marker '@' is not one wordpiece"):
        nlp.initialize(lambda: cp_examples(nlp.vocab))
        nlp(make_doc(nlp.vocab, CP_WORDS, ents=CP_ENTS))


@pytest.mark.parametrize("setting,match", [
    ({"max_pairs_per_sequence": 0}, r"\[E234\] max_pairs_per_sequence must be an integer >= 1"),
    ({"max_length": 8}, r"\[E234\] max_length must be None or an integer >= 16"),
    ({"max_length": 32, "stride": 40}, r"\[E234\] stride must be None or at most max_length"),
    ({"recompute_chunks": "yes"}, r"\[E234\] recompute_chunks must be true or false"),
])
def test_settings_are_checked(setting, match):
    from spacy_biobert.models.shared_transformer import create_shared_transformer

    with pytest.raises(ValueError, match=match):
        create_levitated_marker_relation_model(create_shared_transformer(), **setting)


def test_model_input_is_docs_and_candidates(trained):
    nlp, examples, _ = trained
    model = nlp.get_pipe("biobert_relations").model
    with pytest.raises(ValueError, match=r"\[E250\]"):
        model.predict([eg.reference for eg in examples])


# --- gradients into the one transformer ------------------------------------------------


def shared_gradients(bert, recompute):
    import torch

    spacy.util.fix_random_seed(0)
    nlp = initialized(bert, max_pairs_per_sequence=1, max_sequences_per_batch=2, recompute_chunks=recompute)
    rel = nlp.get_pipe("biobert_relations")
    trf = nlp.get_pipe("biobert").model.transformer
    docs = [eg.reference for eg in cp_examples(nlp.vocab)]
    candidates = [rel.candidates(doc) for doc in docs]
    torch.manual_seed(7)
    Y, backprop = rel.model((docs, candidates), is_train=True)
    for p in trf.parameters():
        p.grad = None
    backprop(rel.model.ops.xp.ones_like(Y))
    return Y, {n: p.grad.clone() for n, p in trf.named_parameters() if p.grad is not None}


def test_gradients_reach_the_shared_transformer_the_same_with_recomputed_chunks(marker_bert):
    import torch

    Y_kept, kept = shared_gradients(marker_bert, recompute=False)
    Y_re, recomputed = shared_gradients(marker_bert, recompute=True)
    assert numpy.allclose(Y_kept, Y_re, atol=1e-6)
    # the embeddings of the marker tokens and of the text's words get gradient
    nlp = initialized(marker_bert)
    _, _, tokenizer = parts(nlp)
    embeddings = kept["embeddings.word_embeddings.weight"].abs().sum(dim=1)
    for word in ("@", "#", "aspirin", "kinase"):
        assert embeddings[tokenizer.convert_tokens_to_ids(word)] > 0, word
    assert sorted(kept) == sorted(recomputed)
    for name in kept:
        assert torch.allclose(kept[name], recomputed[name], atol=1e-5, rtol=1e-4), name


def test_nlp_update_changes_the_shared_weights(marker_bert):
    nlp = build(marker_bert, ner=True)
    examples = cp_examples(nlp.vocab)
    optimizer = nlp.initialize(lambda: examples)
    trf = nlp.get_pipe("biobert").model.transformer
    before = {n: p.detach().clone() for n, p in trf.named_parameters()}
    nlp.update(examples, sgd=optimizer)
    nlp.update(examples, sgd=optimizer)
    assert any(not bool((before[n] == p).all()) for n, p in trf.named_parameters())


# --- learning, saving ----------------------------------------------------------------------


def test_overfits_a_toy_example(trained):
    nlp, examples, losses = trained
    assert losses[-1] < losses[0] / 3, losses
    for eg in examples:
        doc = nlp(eg.predicted.copy())
        gold = {(r["head"], r["tail"], r["label"]) for r in eg.reference._.gold_relations}
        ids = {e.start: e.id_ for e in eg.reference.ents}
        for (h, t), scores in doc._.relations.items():
            for label, p in scores.items():
                assert (p > 0.5) == ((ids[h], ids[t], label) in gold), (h, t, label, p)


def test_save_and_load_give_equal_predictions(trained, tmp_path):
    nlp, examples, _ = trained
    texts = [eg.predicted.copy() for eg in examples]
    expected = [d._.relation_pairs for d in nlp.pipe([t.copy() for t in texts])]
    nlp.to_disk(tmp_path / "pipeline")
    reloaded = spacy.load(tmp_path / "pipeline")
    got = [d._.relation_pairs for d in reloaded.pipe([t.copy() for t in texts])]
    for want, have in zip(expected, got):
        assert [(h, t) for h, t, _ in want] == [(h, t) for h, t, _ in have]
        for (_, _, a), (_, _, b) in zip(want, have):
            assert a == pytest.approx(b, abs=1e-5)



def test_the_marker_pass_runs_in_the_pipeline_precision(marker_bert):
    """Under bf16 (forced here, as on a CPU with native bfloat16) the levitated
    pass runs the shared encoder in bfloat16 too, and gives close scores."""
    from spacy_biobert.precision import set_precision

    nlp = initialized(marker_bert)
    rel, encoder, tokenizer = parts(nlp)
    doc = make_doc(nlp.vocab, CP_WORDS, ents=CP_ENTS)
    X = positioned_wordpieces(levitate([doc], [rel.candidates(doc)], tokenizer, max_length=64).sequences,
                              tokenizer)
    fp32 = encoder.predict(X)
    assert set_precision(nlp, "bf16", force=True) == "bf16"
    bf16 = encoder.predict(X)
    assert bf16.dtype == fp32.dtype == numpy.float32 and not numpy.array_equal(fp32, bf16)
    cos = (fp32 * bf16).sum(-1) / (numpy.linalg.norm(fp32, axis=-1) * numpy.linalg.norm(bf16, axis=-1))
    assert cos.min() >= 0.99, cos


# --- prediction from the `biobert` pass ---------------------------------------------------


def upstream_nlp(bert, **biobert_model):
    """This model beside a `biobert` that keeps every layer's states."""
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": dict(
        {"name": bert, "transformer_config": {"output_hidden_states": True}}, **biobert_model)})
    model = {"@architectures": ARCHITECTURE, "encoder": SHARED_ENCODER, "hidden_width": 16, "dropout": 0.0}
    nlp.add_pipe("biobert_relations", config={
        "candidates": {"@misc": "spacy-biobert.EntityPairs.v1", "allowed_pairs": PAIRS}, "model": model})
    nlp.initialize(lambda: cp_examples(nlp.vocab))
    return nlp


def spans(doc):
    return [(e.start, e.end, e.label_, e.id_) for e in doc.ents]


def encoded(nlp, words, ents):
    return nlp.get_pipe("biobert")(make_doc(nlp.vocab, words, ents=ents))


def test_prediction_reuses_the_biobert_pass_and_equals_the_separate_pass(marker_bert):
    from spacy_biobert.models.levitated_marker_model import pair_vectors_from_upstream

    nlp = upstream_nlp(marker_bert)
    rel, encoder, tokenizer = parts(nlp)
    second = "lithium inhibits receptor and aspirin activates kinase .".split()
    docs = [encoded(nlp, CP_WORDS, CP_ENTS), encoded(nlp, "kinase .".split(), [(0, 1, "GENE-Y", "T9")]),
            encoded(nlp, second, CP_ENTS)]
    candidates = [rel.candidates(doc) for doc in docs]
    assert [len(c) for c in candidates] == [4, 0, 4]
    reused, rest = pair_vectors_from_upstream(encoder, docs, candidates, tokenizer)
    assert reused.shape == (8, N_MARKERS * encoder.get_dim("nO")) and len(rest) == 0
    # the separate pass: the same docs without the biobert pass's states
    bare = [make_doc(nlp.vocab, [t.text for t in doc], ents=spans(doc))
            for doc in docs]
    assert pair_vectors_from_upstream(encoder, bare, candidates, tokenizer) is None
    Y_reused = rel.model.predict((docs, candidates))
    Y_separate = rel.model.predict((bare, [rel.candidates(doc) for doc in bare]))
    assert numpy.allclose(Y_reused, Y_separate, atol=1e-4), abs(Y_reused - Y_separate).max()


def test_prediction_falls_back_to_the_separate_pass(marker_bert):
    """Without every layer's states (the factory's default) the separate pass
    encodes every pair; a pair whose mentions share no window of the biobert
    pass is encoded by it, the others from the biobert pass's states."""
    from spacy_biobert.models.levitated_marker_model import pair_vectors_from_upstream

    plain = initialized(marker_bert)
    rel, encoder, tokenizer = parts(plain)
    doc = plain.get_pipe("biobert")(make_doc(plain.vocab, CP_WORDS, ents=CP_ENTS))
    assert pair_vectors_from_upstream(encoder, [doc], [rel.candidates(doc)], tokenizer) is None
    # biobert windows of 4 tokens, 2 apart: (aspirin, receptor) share none
    windowed = upstream_nlp(marker_bert, get_spans={
        "@span_getters": "spacy-transformers.strided_spans.v1", "window": 4, "stride": 2})
    rel, encoder, tokenizer = parts(windowed)
    doc = encoded(windowed, CP_WORDS, CP_ENTS)
    pairs = rel.candidates(doc)
    near = [(h, t) for h, t in pairs if t.start - h.start < 3]
    assert len(near) < len(pairs)
    assert len(pair_vectors_from_upstream(encoder, [doc], [near], tokenizer)[1]) == 0
    vectors, rest = pair_vectors_from_upstream(encoder, [doc], [pairs], tokenizer)
    far = [i for i, (h, t) in enumerate(pairs) if t.start - h.start >= 3]
    assert rest.tolist() == far and not vectors[far].any() and vectors[[
        i for i in range(len(pairs)) if i not in far]].all(axis=1).all()
    Y = rel.model.predict(([doc], [pairs]))
    assert Y.shape == (len(pairs), len(rel.labels)) and (Y != SKIPPED_LOGIT).all()
    # the far pairs: what the separate pass gives them alone
    bare = make_doc(windowed.vocab, CP_WORDS, ents=CP_ENTS)
    alone = rel.model.predict(([bare], [[pairs[i] for i in far]]))
    assert numpy.allclose(Y[far], alone, atol=1e-5)


def test_a_pair_in_two_biobert_windows_reads_the_one_where_it_is_centred(marker_bert):
    """biobert windows of 6 tokens, 2 apart, over 10 tokens: [0, 6), [2, 8),
    [4, 10). A pair at tokens 4-5 lies in all three; the middle one gives it
    two tokens of context on either side, the others none on one side."""
    from spacy_biobert.models.levitated_marker_model import _upstream_plan

    nlp = upstream_nlp(marker_bert, get_spans={
        "@span_getters": "spacy-transformers.strided_spans.v1", "window": 6, "stride": 2})
    rel, encoder, tokenizer = parts(nlp)
    doc = encoded(nlp, CP_WORDS, [(4, 5, "CHEMICAL", "T3"), (5, 6, "GENE-Y", "T4")])
    pairs = rel.candidates(doc)
    assert [(h.start, t.start) for h, t in pairs] == [(4, 5)]
    assert len(doc._.trf_data.wordpieces.lengths) == 3
    n_states = len(doc._.trf_data.model_output["hidden_states"])
    plan, rest = _upstream_plan([doc], [pairs], n_states)
    assert rest == [] and [window for _, window, _, _, _ in plan] == [1]
    Y = rel.model.predict(([doc], [pairs]))
    assert Y.shape == (1, len(rel.labels)) and (Y != SKIPPED_LOGIT).all()
