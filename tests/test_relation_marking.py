"""The pair-aware relation model (`spacy-biobert.MarkedRelationModel.v1`) and
its shared encoder (`spacy-biobert.SharedTransformer.v1`): marking, wordpieces,
bad input, gradient flow into the one transformer, save/load, overfitting."""

import numpy
import pytest
import spacy
import srsly
from relation_toys import (
    CP_ENTS,
    CP_WORDS,
    PAIRS,
    SHARED_ENCODER,
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

import spacy_biobert  # noqa: F401
from spacy_biobert.extensions import MENTIONS_KEY, install_extensions
from spacy_biobert.models import marked_relation_model as marked
from spacy_biobert.models.marked_relation_model import (
    SKIPPED_LOGIT,
    create_marked_relation_model,
    mark_batch,
    mark_pair,
)
from spacy_biobert.models.shared_transformer import SharedTransformer

install_extensions()

ARCHITECTURE = "spacy-biobert.MarkedRelationModel.v1"


@pytest.fixture(scope="session")
def marker_bert(tmp_path_factory) -> str:
    return tiny_marker_bert(tmp_path_factory.mktemp("tiny-bert-markers"))


def model_config(**overrides):
    return relation_model_config(ARCHITECTURE, **overrides)


def make_nlp(bert, ner=False, **overrides):
    return pair_aware_nlp(bert, ARCHITECTURE, ner=ner, **overrides)


def train(nlp, examples, steps, lr=1e-3):
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = lr
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    return nlp


@pytest.fixture(scope="module")
def trained(tiny_bert):
    nlp = make_nlp(tiny_bert)
    examples = cp_examples(nlp.vocab)
    return train(nlp, examples, steps=30), examples


def tokenizer_of(nlp):
    return nlp.get_pipe("biobert_relations").model.get_ref("encoder").tokenizer


def marked_wordpieces(nlp, doc, pairs, **settings):
    tokenizer = tokenizer_of(nlp)
    settings.setdefault("type_words", TYPE_WORDS)
    batch = mark_batch([doc], [pairs], tokenizer, **settings)
    out = []
    for ids, head, tail in zip(batch.input_ids, batch.head, batch.tail):
        if ids is None:
            out.append(None)
        else:
            out.append((tokenizer.convert_ids_to_tokens(ids), head, tail))
    return out, batch


def initialized(bert, **overrides):
    nlp = make_nlp(bert, **overrides)
    examples = cp_examples(nlp.vocab)
    nlp.initialize(lambda: examples)
    return nlp


# --- marking --------------------------------------------------------------------


def test_typed_markers_land_on_their_wordpieces(marker_bert):
    nlp = initialized(marker_bert)
    doc = make_doc(nlp.vocab, CP_WORDS, ents=CP_ENTS)
    head, tail = doc.ents[0], doc.ents[1]
    assert mark_pair(doc, head, tail, type_words=TYPE_WORDS).text == (
        "@ * chemical * aspirin @ inhibits # ^ gene ^ kinase # "
        "and lithium activates receptor gene expression ."
    )
    [(pieces, h, t)], batch = marked_wordpieces(nlp, doc, [(head, tail)])
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]"
    assert pieces[h : h + 6] == ["@", "*", "chemical", "*", "aspirin", "@"]
    assert pieces[t : t + 6] == ["#", "^", "gene", "^", "kinase", "#"]
    assert not batch.skipped and batch.cut == 0


def test_anonymised_mentions_land_on_their_wordpieces(marker_bert):
    nlp = initialized(marker_bert, marking="anonymise")
    doc = make_doc(nlp.vocab, CP_WORDS, ents=CP_ENTS)
    head, tail = doc.ents[2], doc.ents[3]
    text = mark_pair(doc, head, tail, marking="anonymise", type_words=TYPE_WORDS).text
    assert text == "aspirin inhibits kinase and @CHEMICAL$ activates @GENE$ gene expression ."
    [(pieces, h, t)], _ = marked_wordpieces(nlp, doc, [(head, tail)], marking="anonymise")
    assert pieces[h : h + 3] == ["@", "chemical", "$"]
    assert pieces[t : t + 3] == ["@", "gene", "$"]
    assert "lithium" not in pieces and "receptor" not in pieces


def test_nested_and_overlapping_mentions_are_marked_like_brackets(marker_bert):
    nlp = initialized(marker_bert)
    words = "the receptor gene kinase binds aspirin .".split()
    doc = make_doc(nlp.vocab, words)
    outer = Span(doc, 1, 4, label="GENE-Y")  # receptor gene kinase
    inner = Span(doc, 2, 3, label="CHEMICAL")  # gene
    left = Span(doc, 1, 3, label="CHEMICAL")  # receptor gene
    right = Span(doc, 2, 4, label="GENE-N")  # gene kinase (crosses `left`)
    same = Span(doc, 1, 4, label="CHEMICAL")  # the same characters as `outer`

    def text(h, t):
        return mark_pair(doc, h, t, type_words=TYPE_WORDS).text

    assert text(inner, outer) == (
        "the # ^ gene ^ receptor @ * chemical * gene @ kinase # binds aspirin ."
    )
    assert text(outer, inner) == (
        "the @ * gene * receptor # ^ chemical ^ gene # kinase @ binds aspirin ."
    )
    assert text(left, right) == (
        "the @ * chemical * receptor # ^ gene ^ gene @ kinase # binds aspirin ."
    )
    assert text(same, outer) == (
        "the @ * chemical * # ^ gene ^ receptor gene kinase # @ binds aspirin ."
    )
    pairs = [(inner, outer), (outer, inner), (left, right), (same, outer)]
    results, batch = marked_wordpieces(nlp, doc, pairs)
    for pieces, h, t in results:
        assert pieces[h] == "@" and pieces[t] == "#"
        assert pieces[h + 1] == "*" and pieces[t + 1] == "^"
    assert not batch.skipped
    # Anonymising cannot replace two overlapping mentions: skipped, counted.
    results, batch = marked_wordpieces(nlp, doc, pairs, marking="anonymise")
    assert results == [None] * 4 and batch.skipped == {"overlap": 4}


def test_overlapping_pairs_through_the_component(marker_bert):
    """Predicted (typed markers) or skipped with a very negative logit
    (anonymise), never a traceback; the component counts the skipped ones."""
    words = "the receptor gene kinase binds aspirin .".split()
    for marking in ("typed_punct", "anonymise"):
        nlp = initialized(marker_bert, marking=marking)
        rel = nlp.get_pipe("biobert_relations")
        doc = make_doc(nlp.vocab, words)
        outer, inner, drug = (
            Span(doc, 1, 4, "GENE-Y"),
            Span(doc, 2, 3, "CHEMICAL"),
            Span(doc, 5, 6, "CHEMICAL"),
        )
        doc.spans[MENTIONS_KEY] = [outer, inner, drug]
        pairs = [(inner, outer), (drug, outer)]
        scores = rel.model.predict(([doc], [pairs]))
        assert scores.shape == (2, 2)
        if marking == "anonymise":
            assert (scores[0] == SKIPPED_LOGIT).all() and (scores[1] != SKIPPED_LOGIT).all()
            assert rel.model.skipped["overlap"] == 1
        else:
            assert (scores != SKIPPED_LOGIT).all()
            assert not rel.model.skipped


def test_text_already_holding_the_marker_strings(marker_bert):
    """Markers are placed by offsets, never found in the text: a text that
    already holds them is marked (and encoded) at the pair's own mentions."""
    words = "@ * chemical * x @ and @CHEMICAL$ # ^ gene ^ y # : aspirin inhibits kinase .".split()
    nlp = initialized(marker_bert)
    doc = make_doc(nlp.vocab, words)
    head, tail = Span(doc, 15, 16, "CHEMICAL"), Span(doc, 17, 18, "GENE-Y")
    [(pieces, h, t)], _ = marked_wordpieces(nlp, doc, [(head, tail)])
    assert pieces.count("@") > 2 and pieces.count("#") > 2
    assert pieces[h : h + 6] == ["@", "*", "chemical", "*", "aspirin", "@"]
    assert pieces[t : t + 6] == ["#", "^", "gene", "^", "kinase", "#"]
    [(pieces, h, t)], _ = marked_wordpieces(nlp, doc, [(head, tail)], marking="anonymise")
    assert pieces.count("@") == 5  # "@", "@", "@CHEMICAL$" of the text, and our two
    assert pieces[h : h + 4] == ["@", "chemical", "$", "inhibits"]
    assert pieces[t : t + 4] == ["@", "gene", "$", "."]


def test_pairs_across_sentences_and_docs_without_sentences(marker_bert):
    nlp = initialized(marker_bert)
    words = "cocaine was given . aspirin inhibits it . kinase was high . lithium too .".split()
    doc = make_doc(nlp.vocab, words, sents=[0, 4, 8, 12])
    aspirin, kinase = Span(doc, 4, 5, "CHEMICAL"), Span(doc, 8, 9, "GENE-Y")
    cocaine = Span(doc, 0, 1, "CHEMICAL")
    # Same sentence: that sentence only; across: from the first mention's
    # sentence to the last one's.
    assert mark_pair(doc, aspirin, Span(doc, 6, 7, "GENE-Y"), type_words=TYPE_WORDS).text == (
        "@ * chemical * aspirin @ inhibits # ^ gene ^ it # ."
    )
    assert mark_pair(doc, kinase, aspirin, type_words=TYPE_WORDS).text == (
        "# ^ chemical ^ aspirin # inhibits it . @ * gene * kinase @ was high ."
    )
    assert mark_pair(doc, cocaine, kinase, type_words=TYPE_WORDS).text.startswith(
        "@ * chemical * cocaine @ was given . aspirin"
    )
    # No sentence boundaries: `window` tokens either side of the pair.
    bare = make_doc(nlp.vocab, words)
    text = mark_pair(bare, Span(bare, 4, 5, "CHEMICAL"), Span(bare, 6, 7, "GENE-Y"), window=2)
    assert text.text == "given . @ * chemical * aspirin @ inhibits # ^ gene-y ^ it # . kinase"
    results, _ = marked_wordpieces(nlp, doc, [(kinase, aspirin), (cocaine, kinase)])
    for pieces, h, t in results:
        assert pieces[h] == "@" and pieces[t] == "#"


def test_long_contexts_are_cut_around_both_mentions(marker_bert):
    nlp = initialized(marker_bert)
    filler = ["the", "cell"] * 60
    words = ["aspirin"] + filler + ["kinase"] + filler + ["lithium", "."]
    doc = make_doc(nlp.vocab, words, sents=[0])
    aspirin, kinase = Span(doc, 0, 1, "CHEMICAL"), Span(doc, 121, 122, "GENE-Y")
    lithium = Span(doc, 242, 243, "CHEMICAL")
    results, batch = marked_wordpieces(
        nlp, doc, [(aspirin, kinase), (lithium, kinase), (aspirin, lithium)], max_length=32
    )
    assert batch.cut == 3
    for pieces, h, t in results:
        assert len(pieces) <= 32 and pieces[0] == "[CLS]" and pieces[-1] == "[SEP]"
        assert pieces[h] == "@" and pieces[t] == "#"
        assert pieces[h + 4] in ("aspirin", "lithium") and pieces[h + 5] == "@"
    # Far apart: a window around each mention; the middle is left out.
    pieces, h, t = results[2]
    assert pieces[t + 4] == "lithium" and "kinase" not in pieces
    # Through the model: the encoder's limit by default, cut sequences encoded.
    rel = nlp.get_pipe("biobert_relations")
    scores = rel.model.predict(([doc], [[(aspirin, kinase), (aspirin, lithium)]]))
    assert scores.shape == (2, 2) and (scores != SKIPPED_LOGIT).all()


# --- the component ------------------------------------------------------------------


def test_docs_without_candidates_and_empty_docs(trained):
    nlp, _ = trained
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
    rel = nlp.get_pipe("biobert_relations")
    assert rel.model.predict(([], [])).shape == (0, 2)


def test_overfits_a_toy_example(trained):
    nlp, examples = trained
    for eg in examples:
        doc = nlp(eg.predicted.copy())
        gold = {
            (r["head"], r["tail"], r["label"]) for r in eg.reference._.gold_relations
        }
        ids = {e.start: e.id_ for e in eg.reference.ents}
        for (h, t), scores in doc._.relations.items():
            for label, p in scores.items():
                if (ids[h], ids[t], label) in gold:
                    assert p > 0.5, (h, t, label, p)
                else:
                    assert p < 0.5, (h, t, label, p)


def test_anonymise_with_cls_overfits(tiny_bert):
    nlp = make_nlp(tiny_bert, marking="anonymise", representation="markers+cls")
    examples = cp_examples(nlp.vocab)
    train(nlp, examples, steps=30)
    doc = nlp(examples[0].predicted.copy())
    assert doc._.relations[(0, 2)]["CPR:4"] > 0.5
    assert doc._.relations[(4, 6)]["CPR:3"] > 0.5
    assert doc._.relations[(0, 6)]["CPR:4"] < 0.5


def test_chunks_bound_the_sequences_encoded_at_once(tiny_bert, monkeypatch):
    nlp = initialized(tiny_bert, max_pairs_per_batch=3)
    words = [w for i in range(6) for w in ("aspirin", "and", "kinase", ",")]
    ents = [(4 * i, 4 * i + 1, "CHEMICAL", "") for i in range(6)]
    ents += [(4 * i + 2, 4 * i + 3, "GENE-Y", "") for i in range(6)]
    doc = make_doc(nlp.vocab, words, ents=sorted(ents))
    sizes = []
    real = marked.wordpiece_batch

    def recording(sequences, tokenizer):
        sizes.append(len(sequences))
        return real(sequences, tokenizer)

    monkeypatch.setattr(marked, "wordpiece_batch", recording)
    chunked = nlp(doc.copy())._.relation_pairs
    assert sum(sizes) == 36 and max(sizes) == 3
    nlp.get_pipe("biobert_relations").model.attrs["max_pairs_per_batch"] = None
    sizes.clear()
    whole = nlp(doc.copy())._.relation_pairs
    assert sizes == [36]
    assert [(h, t) for h, t, _ in chunked] == [(h, t) for h, t, _ in whole]
    for (_, _, a), (_, _, b) in zip(chunked, whole):
        assert all(abs(a[k] - b[k]) < 1e-4 for k in a)


def test_many_candidates_are_tokenized_in_slices_to_the_same_sequences(tiny_bert, monkeypatch):
    """A batch with more pairs than a tokenizer slice (as an untrained NER
    head can give) is tokenized a slice at a time, each sequence kept as an
    int32 array: the same sequences and marker positions as in one call."""
    nlp = initialized(tiny_bert)
    words = [w for i in range(6) for w in ("aspirin", "and", "kinase", ",")]
    ents = [(4 * i, 4 * i + 1, "CHEMICAL", "") for i in range(6)]
    ents += [(4 * i + 2, 4 * i + 3, "GENE-Y", "") for i in range(6)]
    doc = make_doc(nlp.vocab, words, ents=sorted(ents))
    pairs = [(h, t) for h in doc.ents for t in doc.ents if h.label_ != t.label_]
    tokenizer = tokenizer_of(nlp)
    whole = mark_batch([doc], [pairs], tokenizer, type_words=TYPE_WORDS)
    calls = []
    real_call = type(tokenizer).__call__

    def counting(self, texts, **kwargs):
        calls.append(len(texts))
        return real_call(self, texts, **kwargs)

    monkeypatch.setattr(marked, "TOKENIZE_SLICE", 5)
    monkeypatch.setattr(type(tokenizer), "__call__", counting)
    sliced = mark_batch([doc], [pairs], tokenizer, type_words=TYPE_WORDS)
    assert len(pairs) == 72 and calls == [5] * 14 + [2]
    assert all(ids.dtype == numpy.int32 for ids in sliced.input_ids)
    assert [ids.tolist() for ids in sliced.input_ids] == [ids.tolist() for ids in whole.input_ids]
    assert (sliced.head, sliced.tail) == (whole.head, whole.tail)


def shared_gradients(bert, recompute, seed=7, **overrides):
    """The shared transformer's gradients after one backward pass of the
    marked model, in chunks of 2 pairs, with the transformer's dropout on."""
    import torch

    spacy.util.fix_random_seed(0)  # the same scorer weights for both settings
    nlp = initialized(bert, max_pairs_per_batch=2, recompute_chunks=recompute, **overrides)
    rel = nlp.get_pipe("biobert_relations")
    trf = nlp.get_pipe("biobert").model.transformer
    assert trf.config.hidden_dropout_prob > 0  # the two passes must draw the same masks
    docs = [eg.reference for eg in cp_examples(nlp.vocab)]
    candidates = [rel.candidates(doc) for doc in docs]
    saved = []

    def pack(tensor):
        saved.append(tensor.numel())
        return tensor

    torch.manual_seed(seed)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        Y, backprop = rel.model((docs, candidates), is_train=True)
    kept_by_forward = len(saved)
    for p in trf.parameters():
        p.grad = None
    backprop(rel.model.ops.xp.ones_like(Y))
    grads = {n: p.grad.clone() for n, p in trf.named_parameters() if p.grad is not None}
    return Y, grads, kept_by_forward, sum(len(c) for c in candidates)


def test_recomputed_chunks_keep_no_activations_and_give_the_same_gradients(tiny_bert):
    """recompute_chunks: the training forward keeps nothing for autograd, and
    the backward pass (each chunk encoded again, with the same dropout) gives
    the gradients of keeping every chunk's activations."""
    import torch

    Y_kept, kept, saved_kept, n_pairs = shared_gradients(tiny_bert, recompute=False)
    Y_re, recomputed, saved_re, _ = shared_gradients(tiny_bert, recompute=True)
    assert n_pairs > 2  # several chunks
    assert saved_kept > 0 and saved_re == 0
    assert numpy.allclose(Y_kept, Y_re, atol=1e-6)
    assert sorted(kept) == sorted(recomputed) and kept
    for name in kept:
        assert torch.allclose(kept[name], recomputed[name], atol=1e-5, rtol=1e-4), name


@pytest.mark.parametrize("recompute", [False, True], ids=["kept", "recomputed"])
def test_grad_factor_scales_what_the_marked_pass_sends_the_shared_weights(tiny_bert, recompute):
    """encoder.grad_factor: the relation task's weight on the shared
    transformer beside the listeners' (its own scorer's gradient is unscaled)."""
    Y_one, one, _, _ = shared_gradients(tiny_bert, recompute)
    Y_three, three, _, _ = shared_gradients(
        tiny_bert, recompute, encoder=dict(SHARED_ENCODER, grad_factor=3.0)
    )
    assert numpy.allclose(Y_one, Y_three, atol=1e-6) and one
    scale = max(float(g.abs().max()) for g in one.values())
    for name in one:  # equal up to float rounding (some are zero but for it)
        assert float((three[name] - 3.0 * one[name]).abs().max()) <= 1e-5 * 3.0 * scale, name


@pytest.mark.parametrize("value", [-1.0, "4", True, float("nan")])
def test_grad_factor_is_checked(value):
    from spacy_biobert.models.shared_transformer import create_shared_transformer

    with pytest.raises(ValueError, match=r"\[E234\] encoder.grad_factor must be a number >= 0"):
        create_shared_transformer("biobert", grad_factor=value)


def test_recomputing_a_chunk_restores_the_random_state(tiny_bert):
    import torch

    nlp = initialized(tiny_bert, max_pairs_per_batch=2, recompute_chunks=True)
    rel = nlp.get_pipe("biobert_relations")
    docs = [eg.reference for eg in cp_examples(nlp.vocab)]
    candidates = [rel.candidates(doc) for doc in docs]
    Y, backprop = rel.model((docs, candidates), is_train=True)
    state = torch.get_rng_state()
    backprop(rel.model.ops.xp.ones_like(Y))
    assert torch.equal(state, torch.get_rng_state())


# --- one transformer ------------------------------------------------------------------


class CountingOptimizer:
    """Counts the optimizer's calls per parameter key."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.calls = {}

    def __call__(self, key, param, grad):
        self.calls[key] = self.calls.get(key, 0) + 1
        return self.optimizer(key, param, grad)


def transformer_weights(nlp):
    trf = nlp.get_pipe("biobert").model.transformer
    return {name: p.detach().clone() for name, p in trf.named_parameters()}


def changed(before, after):
    return [name for name in before if not bool((before[name] == after[name]).all())]


@pytest.mark.parametrize("with_ner", [False, True])
def test_gradients_reach_the_shared_transformer_once(tiny_bert, with_ner):
    """One training step as spaCy's loop makes it (every component's update,
    then every finish_update): the marked pass puts gradients on the
    transformer's own parameters, the relation component's finish_update does
    not touch them, and the `biobert` component steps each exactly once."""
    nlp = make_nlp(tiny_bert, ner=with_ner)
    examples = cp_examples(nlp.vocab)
    optimizer = nlp.initialize(lambda: examples)
    biobert, rel = nlp.get_pipe("biobert"), nlp.get_pipe("biobert_relations")
    assert biobert.listening_components == (["ner"] if with_ner else [])
    encoder = rel.model.get_ref("encoder")
    assert encoder.upstream_model is biobert.model
    trf = biobert.model.transformer
    before = transformer_weights(nlp)
    nlp.update(examples, sgd=False)  # updates only (gradients), as spacy train does
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0)
               for name, p in trf.named_parameters() if "pooler" not in name)
    counting = CountingOptimizer(optimizer)
    rel.finish_update(counting)
    assert changed(before, transformer_weights(nlp)) == []
    shim_id = biobert.model.layers[0].shims[0].id
    assert not [k for k in counting.calls if k[0] == shim_id]
    if with_ner:
        nlp.get_pipe("ner").finish_update(counting)
        assert changed(before, transformer_weights(nlp)) == []
    biobert.finish_update(counting)
    stepped = {k[1]: n for k, n in counting.calls.items() if k[0] == shim_id}
    trained = [name for name, p in trf.named_parameters() if "pooler" not in name]
    assert sorted(stepped) == sorted(trained)  # (the pooler is not used: no gradient)
    assert set(stepped.values()) == {1}
    assert set(changed(before, transformer_weights(nlp))) >= set(trained)


def test_nlp_update_changes_the_shared_weights(tiny_bert):
    """With nlp.update(sgd=...), spaCy steps `biobert` before the later
    components backprop, so a step's gradients land at the next update."""
    nlp = make_nlp(tiny_bert)
    examples = cp_examples(nlp.vocab)
    optimizer = nlp.initialize(lambda: examples)
    before = transformer_weights(nlp)
    losses = nlp.update(examples, sgd=optimizer)
    assert losses["biobert"] == 0.0 and losses["biobert_relations"] > 0
    nlp.update(examples, sgd=optimizer)
    assert changed(before, transformer_weights(nlp))


def test_biobert_without_listeners_skips_its_training_pass(tiny_bert, monkeypatch):
    calls = []
    for ner in (False, True):
        nlp = make_nlp(tiny_bert, ner=ner)
        examples = cp_examples(nlp.vocab)
        nlp.initialize(lambda: examples)  # noqa: B023
        model = nlp.get_pipe("biobert").model
        real = model.begin_update
        calls.clear()
        monkeypatch.setattr(model, "begin_update", lambda X, real=real: calls.append(1) or real(X))
        nlp.update(examples, sgd=False)
        assert len(calls) == (1 if ner else 0)


def test_relation_component_saves_no_transformer_weights(trained):
    nlp, _ = trained
    rel_bytes = nlp.get_pipe("biobert_relations").to_bytes()
    trf_bytes = nlp.get_pipe("biobert").to_bytes()
    model_msg = srsly.msgpack_loads(srsly.msgpack_loads(rel_bytes)["model"])
    assert all(shims == [] for shims in model_msg["shims"])
    n_weights = sum(p.numel() for p in nlp.get_pipe("biobert").model.transformer.parameters())
    n_scorer = sum(
        node.get_param(name).size
        for node in nlp.get_pipe("biobert_relations").model.walk()
        for name in node.param_names
        if node.has_param(name)
    )
    assert len(rel_bytes) < 4 * n_scorer + 20_000  # the classifier and settings
    assert len(rel_bytes) < 4 * n_weights / 5 < len(trf_bytes)


def test_save_and_load_give_equal_predictions(trained, tmp_path):
    nlp, examples = trained
    texts = [eg.predicted.copy() for eg in examples]
    expected = [d._.relation_pairs for d in nlp.pipe([t.copy() for t in texts])]
    nlp.to_disk(tmp_path / "pipeline")
    reloaded = spacy.load(tmp_path / "pipeline")
    encoder = reloaded.get_pipe("biobert_relations").model.get_ref("encoder")
    assert encoder.upstream_model is reloaded.get_pipe("biobert").model
    assert [d._.relation_pairs for d in reloaded.pipe([t.copy() for t in texts])] == expected
    fresh = make_nlp(nlp.get_pipe("biobert").model.attrs["name"])
    fresh.from_bytes(nlp.to_bytes())
    assert [d._.relation_pairs for d in fresh.pipe([t.copy() for t in texts])] == expected
    # Component by component: the relation bytes on a pipeline whose `biobert`
    # got the trained weights.
    other = make_nlp(nlp.get_pipe("biobert").model.attrs["name"])
    other.get_pipe("biobert").from_bytes(nlp.get_pipe("biobert").to_bytes())
    other.get_pipe("biobert_relations").from_bytes(nlp.get_pipe("biobert_relations").to_bytes())
    assert [d._.relation_pairs for d in other.pipe([t.copy() for t in texts])] == expected


def test_ner_and_marked_relations_share_one_transformer(tiny_bert, tmp_path):
    nlp = make_nlp(tiny_bert, ner=True)
    examples = cp_examples(nlp.vocab)
    train(nlp, examples, steps=3)
    assert nlp.get_pipe("biobert").listening_components == ["ner"]
    doc = examples[0].predicted.copy()
    expected = nlp(doc.copy())._.relation_pairs
    nlp.to_disk(tmp_path / "joint")
    reloaded = spacy.load(tmp_path / "joint")
    assert reloaded(doc.copy())._.relation_pairs == expected
    assert not (tmp_path / "joint" / "biobert_relations" / "model").is_dir()
    sizes = {p.parent.name: p.stat().st_size for p in (tmp_path / "joint").glob("*/model")}
    assert sizes["biobert_relations"] < sizes["biobert"] / 5


# --- errors --------------------------------------------------------------------------


def test_no_upstream_transformer_is_a_coded_error(tiny_bert):
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert_relations", config={"model": model_config()})
    examples = cp_examples(nlp.vocab)
    with pytest.raises(ValueError, match=r"\[E230\].*add the `biobert` component"):
        nlp.initialize(lambda: examples)
    nlp = make_nlp(tiny_bert, encoder={
        "@architectures": "spacy-biobert.SharedTransformer.v1", "upstream": "other"})
    with pytest.raises(ValueError, match=r"\[E230\] .*upstream 'other'"):
        nlp.initialize(lambda: examples)
    # Loaded without its transformer.
    nlp = make_nlp(tiny_bert)
    nlp.initialize(lambda: examples)
    rel = nlp.get_pipe("biobert_relations")
    bare = spacy.blank("en")
    bare.add_pipe("biobert_relations", config={"model": model_config()})
    bare.get_pipe("biobert_relations").from_bytes(rel.to_bytes())
    doc = make_doc(bare.vocab, CP_WORDS, ents=CP_ENTS)
    with pytest.raises(ValueError, match=r"\[E230\]"):
        bare(doc)


def test_relations_initialized_before_the_transformer_is_a_coded_error(tiny_bert):
    nlp = make_nlp(tiny_bert)
    examples = cp_examples(nlp.vocab)
    with pytest.raises(ValueError, match=r"\[E231\] the transformer of 'biobert'"):
        nlp.get_pipe("biobert_relations").initialize(lambda: examples, nlp=nlp)


@pytest.mark.parametrize(
    "setting,match",
    [
        ({"marking": "brackets"}, r"\[E233\] marking must be one of"),
        ({"representation": "mean"}, r"\[E233\] representation"),
        ({"max_length": 8}, r"\[E234\] max_length must be None or an integer >= 16"),
        ({"max_pairs_per_batch": 0}, r"\[E234\] max_pairs_per_batch"),
        ({"window": -1}, r"\[E234\] window"),
        ({"recompute_chunks": "yes"}, r"\[E234\] recompute_chunks"),
        ({"type_words": {"CHEMICAL": ""}}, r"\[E234\] type_words"),
    ],
)
def test_settings_are_checked(setting, match):
    with pytest.raises(ValueError, match=match):
        create_marked_relation_model(SharedTransformer("biobert"), **setting)


def test_model_input_is_docs_and_candidates(trained):
    nlp, examples = trained
    model = nlp.get_pipe("biobert_relations").model
    docs = [eg.predicted for eg in examples]
    with pytest.raises(ValueError, match=r"\[E235\].*not a list"):
        model.predict(docs)
    with pytest.raises(ValueError, match=r"\[E209\]"):
        model.predict((docs, []))


def test_replace_listeners_is_not_supported_and_harmless(trained, tmp_path):
    """spaCy only replaces TransformerListener layers: the shared encoder is
    not one, so replace_listeners finds nothing to replace (spaCy's E887) and
    the relation component keeps running the shared weights."""
    nlp, examples = trained
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    doc = examples[0].predicted.copy()
    expected = loaded(doc.copy())._.relation_pairs
    with pytest.raises(ValueError, match=r"E887"):
        loaded.replace_listeners("biobert", "biobert_relations", ["model.encoder"])
    loaded.replace_listeners("biobert", "biobert_relations", [])
    assert loaded(doc.copy())._.relation_pairs == expected


def test_marked_pass_scores_concept_level_labels(tiny_bert):
    """Document-level labels (BC5CDR CID): mention pairs across sentences are
    encoded and pooled per kb id pair by the component."""
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}})
    nlp.add_pipe(
        "biobert_relations",
        config={
            "candidates": {
                "@misc": "spacy-biobert.EntityPairs.v1",
                "allowed_pairs": [["Chemical", "Disease"]],
            },
            "model": model_config(type_words=None),
        },
    )
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
    train(nlp, examples, steps=25)
    doc = nlp(reference.copy())
    assert len(doc._.relation_pairs) == 4
    assert doc._.kb_relations[("D1", "D2")]["CID"] > 0.5
    assert doc._.kb_relations[("D1", "D3")]["CID"] < 0.5


def test_config_names_the_architecture_and_its_encoder(tiny_bert):
    nlp = make_nlp(tiny_bert)
    cfg = nlp.config["components"]["biobert_relations"]["model"]
    assert cfg["@architectures"] == "spacy-biobert.MarkedRelationModel.v1"
    assert cfg["encoder"] == {
        "@architectures": "spacy-biobert.SharedTransformer.v1",
        "upstream": "biobert",
        "grad_factor": 1.0,
    }


def test_a_slow_tokenizer_is_a_coded_error(tiny_bert):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "biobert",
        config={"model": {"name": tiny_bert, "tokenizer_config": {"use_fast": False}}},
    )
    nlp.add_pipe(
        "biobert_relations",
        config={
            "candidates": {"@misc": "spacy-biobert.EntityPairs.v1", "allowed_pairs": PAIRS},
            "model": model_config(),
        },
    )
    examples = cp_examples(nlp.vocab)
    nlp.initialize(lambda: examples)
    with pytest.raises(ValueError, match=r"\[E236\].*use_fast"):
        nlp(make_doc(nlp.vocab, CP_WORDS, ents=CP_ENTS))
