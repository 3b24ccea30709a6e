"""`biobert_relations`: candidates, model gradients, training, serialisation,
helpers and scoring, on hand-made Docs and the tiny random BERT."""

import io

import numpy
import pytest
import spacy
from relation_toys import LISTENER
from spacy.tokens import Doc, Span
from spacy.training import Example
from thinc.api import Model, fix_random_seed

import spacy_biobert  # noqa: F401
from spacy_biobert.evaluation.relations import score_cid, score_relations
from spacy_biobert.extensions import MENTIONS_KEY, install_extensions
from spacy_biobert.models import (
    EntityPairs,
    create_entity_pairs,
    create_relation_model_v2,
)
from spacy_biobert.pipeline.relations import (
    aggregate_by_kb_id,
    kb_relation_triples,
    relation_triples,
    relations_to_displacy,
)

install_extensions()



def make_doc(vocab, words, ents=(), sents=None, mentions=None, relations=None, doc_id=None):
    """ents / mentions: (start, end, label, kb_id, id_) token spans."""
    doc = Doc(vocab, words=words)
    if sents is not None:
        for i, token in enumerate(doc):
            token.is_sent_start = i in sents
    doc.ents = [
        Span(doc, s, e, label=lab, kb_id=kb, span_id=mid) for s, e, lab, kb, mid in ents
    ]
    if mentions is not None:
        doc.spans[MENTIONS_KEY] = [
            Span(doc, s, e, label=lab, kb_id=kb, span_id=mid)
            for s, e, lab, kb, mid in mentions
        ]
    doc._.gold_relations = relations
    doc._.doc_id = doc_id
    return doc


def example(vocab, words, **kwargs):
    """Gold entities on both sides (a relation benchmark); relations on the reference."""
    reference = make_doc(vocab, words, **kwargs)
    kwargs["relations"] = None
    return Example(make_doc(vocab, words, **kwargs), reference)


def make_nlp(tiny_bert, candidates=None, gold_entities=False, **model_cfg):
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}})
    cfg = {"tok2vec": LISTENER, "width": 16, "hidden_width": 32, "dropout": 0.0}
    cfg.update(model_cfg)
    config = {"model": cfg, "gold_entities": gold_entities}
    if candidates is not None:  # EntityPairs.v1 settings, or a whole block
        config["candidates"] = dict({"@misc": "spacy-biobert.EntityPairs.v1"}, **candidates)
    nlp.add_pipe("biobert_relations", config=config)
    return nlp


def reader_example(nlp, words, **kwargs):
    """Like the corpus readers: the predicted doc is bare text; the reference
    holds mentions, entities, sentences and relations."""
    reference = make_doc(nlp.vocab, words, **kwargs)
    predicted = nlp.make_doc(reference.text)
    predicted._.doc_id = reference._.doc_id
    return Example(predicted, reference)


# ChemProt-like: mention-level labels between CHEMICAL and GENE mentions.
CP_WORDS = (
    "aspirin inhibits kinase and lithium activates receptor gene expression .".split()
)
CP_ENTS = [
    (0, 1, "CHEMICAL", "", "T1"),
    (2, 3, "GENE", "", "T2"),
    (4, 5, "CHEMICAL", "", "T3"),
    (6, 7, "GENE", "", "T4"),
]
CP_RELS = [
    {"level": "mention", "head": "T1", "tail": "T2", "label": "CPR:4"},
    {"level": "mention", "head": "T3", "tail": "T4", "label": "CPR:3"},
]
CP_PAIRS = {"allowed_pairs": [["CHEMICAL", "GENE"]]}

# BC5CDR-like: concept-level CID between MeSH ids, cross-sentence mentions.
CID_WORDS = (
    "cocaine induced seizures in rats . naloxone was given . "
    "cocaine toxicity and seizures were associated with hypotension ."
).split()
CID_ENTS = [
    (0, 1, "Chemical", "D003042", "M1"),
    (2, 3, "Disease", "D012640", "M2"),
    (6, 7, "Chemical", "D009270", "M3"),
    (10, 11, "Chemical", "D003042", "M4"),
    (11, 12, "Disease", "D064420", "M5"),
    (13, 14, "Disease", "D012640", "M6"),
    (17, 18, "Disease", "D007022", "M7"),
]
CID_RELS = [{"level": "concept", "head": "D003042", "tail": "D012640", "label": "CID"}]
CID_PAIRS = {"allowed_pairs": [["Chemical", "Disease"]]}


def train(nlp, examples, steps, lr=1e-3):
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = lr
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    return nlp


def predict_relations(nlp, examples):
    return [doc._.relations for doc in nlp.pipe([eg.predicted.copy() for eg in examples])]


@pytest.fixture(scope="module")
def chemprot_trained(tiny_bert):
    nlp = make_nlp(tiny_bert, candidates=CP_PAIRS)
    examples = [example(nlp.vocab, CP_WORDS, ents=CP_ENTS, relations=CP_RELS, doc_id="1")]
    return train(nlp, examples, steps=60), examples


@pytest.fixture(scope="module")
def cid_trained(tiny_bert):
    """Gold-entity training from reader-style examples (bare predicted docs)."""
    nlp = make_nlp(tiny_bert, candidates=CID_PAIRS, gold_entities=True)
    sents = [0, 6, 10]
    examples = [
        reader_example(
            nlp, CID_WORDS, ents=CID_ENTS, sents=sents, relations=CID_RELS, doc_id="9"
        )
    ]
    return train(nlp, examples, steps=60), examples


# --- candidates ------------------------------------------------------------------


def test_entity_pairs_types_order_and_distance():
    vocab = spacy.blank("en").vocab
    doc = make_doc(vocab, CP_WORDS, ents=CP_ENTS)
    pairs = EntityPairs()(doc)
    assert len(pairs) == 12  # ordered pairs of 4 entities, no self pairs
    typed = create_entity_pairs(allowed_pairs=[["CHEMICAL", "GENE"]])(doc)
    assert [(h.text, t.text) for h, t in typed] == [
        ("aspirin", "kinase"),
        ("aspirin", "receptor"),
        ("lithium", "kinase"),
        ("lithium", "receptor"),
    ]
    near = create_entity_pairs(allowed_pairs=[["CHEMICAL", "GENE"]], max_distance=1)(doc)
    assert [(h.text, t.text) for h, t in near] == [
        ("aspirin", "kinase"),
        ("lithium", "kinase"),  # "and" between them: one token
        ("lithium", "receptor"),
    ]


def test_entity_pairs_sentences_reach_across_sentences():
    vocab = spacy.blank("en").vocab
    doc = make_doc(vocab, CID_WORDS, ents=CID_ENTS, sents=[0, 6, 10])
    same = create_entity_pairs(CID_PAIRS["allowed_pairs"], 0, "sentences")(doc)
    one = create_entity_pairs(CID_PAIRS["allowed_pairs"], 1, "sentences")(doc)
    anywhere = create_entity_pairs(CID_PAIRS["allowed_pairs"])(doc)
    assert {(h.start, t.start) for h, t in same} == {(0, 2), (10, 11), (10, 13), (10, 17)}
    assert (6, 2) in {(h.start, t.start) for h, t in one}
    assert len(anywhere) == 3 * 4
    with pytest.raises(ValueError, match=r"\[E204\].*sentencizer"):
        create_entity_pairs(None, 1, "sentences")(make_doc(vocab, CID_WORDS, ents=CID_ENTS))


def test_closest_mention_pair_per_concept_pair():
    """Same sentence first, then fewest tokens between; one or k per pair of ids."""
    vocab = spacy.blank("en").vocab
    doc = make_doc(vocab, CID_WORDS, ents=CID_ENTS, sents=[0, 6, 10])
    closest = create_entity_pairs(CID_PAIRS["allowed_pairs"], closest_per_concept_pair=1)(doc)
    # 2 chemical ids x 3 disease ids; cocaine-seizures is mentioned in sentences 0 and 2
    assert [(h.start, t.start) for h, t in closest] == [
        (0, 2), (6, 2), (6, 11), (6, 17), (10, 11), (10, 17)
    ]
    two = create_entity_pairs(CID_PAIRS["allowed_pairs"], closest_per_concept_pair=2)(doc)
    assert (10, 13) in {(h.start, t.start) for h, t in two} and (0, 13) not in {
        (h.start, t.start) for h, t in two}
    assert len(two) == 10  # 4 concept pairs with two mention pairs or more, 2 with one
    # without sentences, tokens between decide: (0, 2) has one, (10, 13) two;
    # (0, 2) stays the closest
    flat = make_doc(vocab, CID_WORDS, ents=CID_ENTS)
    assert (0, 2) in {(h.start, t.start) for h, t in
                      create_entity_pairs(CID_PAIRS["allowed_pairs"], closest_per_concept_pair=1)(flat)}
    # a mention without a kb id is a concept of its own: both unlinked seizures stay
    unlinked = [e if e[3] != "D012640" else (*e[:3], "", e[4]) for e in CID_ENTS]
    doc = make_doc(vocab, CID_WORDS, ents=unlinked, sents=[0, 6, 10])
    pairs = create_entity_pairs(CID_PAIRS["allowed_pairs"], closest_per_concept_pair=1)(doc)
    assert {(0, 2), (10, 13)} <= {(h.start, t.start) for h, t in pairs}
    assert "closest_per_concept_pair=1" in repr(create_entity_pairs(closest_per_concept_pair=1))


def test_entity_pairs_span_group_with_nested_and_duplicate_spans():
    vocab = spacy.blank("en").vocab
    words = "KATP channels bind glibenclamide .".split()
    mentions = [
        (0, 1, "GENE", "", "T1"),
        (0, 2, "GENE", "", "T2"),
        (3, 4, "CHEMICAL", "", "T3"),
        (3, 4, "GENE", "", "T4"),  # same span, two types
    ]
    doc = make_doc(vocab, words, mentions=mentions)
    pairs = create_entity_pairs([["CHEMICAL", "GENE"]], spans_key=MENTIONS_KEY)(doc)
    assert [(h.text, t.text) for h, t in pairs] == [
        ("glibenclamide", "KATP"),
        ("glibenclamide", "KATP channels"),
    ]
    assert create_entity_pairs(spans_key=MENTIONS_KEY)(make_doc(vocab, words)) == []


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"distance_unit": "words"}, r"\[E201\].*'words'"),
        ({"max_distance": -1}, r"\[E202\].*-1"),
        ({"max_distance": 0.5}, r"\[E202\]"),
        ({"allowed_pairs": [["Chemical"]]}, r"\[E203\]"),
        ({"allowed_pairs": ["Chemical", "Disease"]}, r"\[E203\]"),
        ({"closest_per_concept_pair": 0}, r"\[E242\].*0"),
        ({"closest_per_concept_pair": True}, r"\[E242\]"),
    ],
)
def test_entity_pairs_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_entity_pairs(**kwargs)


# --- the model -------------------------------------------------------------------


def _fixed_tok2vec(arrays):
    def forward(model, docs, is_train):
        def backprop(d_arrays):
            model.attrs["grads"] = d_arrays
            return []

        return [arrays[i] for i in range(len(docs))], backprop

    return Model("fixed", forward, dims={"nO": arrays[0].shape[1]}, attrs={})


def test_relation_model_gradients_match_finite_differences():
    """Pooling by gathering, prefix sums and chunking backprop correctly."""
    fix_random_seed(0)
    vocab = spacy.blank("en").vocab
    docs = [
        make_doc(vocab, CID_WORDS, ents=CID_ENTS, sents=[0, 6, 10]),
        make_doc(vocab, CP_WORDS, ents=CP_ENTS),  # no sentences: window context
    ]
    rng = numpy.random.default_rng(0)
    arrays = [rng.normal(size=(len(d), 6)).astype("float32") for d in docs]
    tok2vec = _fixed_tok2vec(arrays)
    model = create_relation_model_v2(
        tok2vec, width=5, hidden_width=7, dropout=0.0, max_pairs_per_batch=7, nO=2
    )
    X = (docs, [create_entity_pairs()(doc) for doc in docs])
    model.initialize(X=X)
    Y, backprop = model.begin_update(X)
    assert Y.shape == (7 * 6 + 4 * 3, 2)
    R = rng.normal(size=Y.shape).astype("float32")
    backprop(R)
    grads = tok2vec.attrs["grads"]
    eps = 1e-3
    for d, i, j in [(0, 0, 0), (0, 3, 2), (0, 8, 4), (0, 17, 1), (1, 1, 5), (1, 5, 3)]:
        orig = arrays[d][i, j]
        here = float((model.predict(X) * R).sum())
        arrays[d][i, j] = orig + eps
        plus = float((model.predict(X) * R).sum())
        arrays[d][i, j] = orig - eps
        minus = float((model.predict(X) * R).sum())
        arrays[d][i, j] = orig
        # Where a ReLU or max-pool switch lies within eps, the central difference
        # averages two slopes and the gradient is the one-sided slope on its side.
        slopes = [(plus - minus) / (2 * eps), (plus - here) / eps, (here - minus) / eps]
        grad = pytest.approx(float(grads[d][i, j]), abs=2e-2, rel=2e-2)
        assert any(slope == grad for slope in slopes), (d, i, j, slopes, grad)


def test_range_max_matches_brute_force():
    from spacy_biobert.models.relation_model import _range_max, _sparse_table

    rng = numpy.random.default_rng(1)
    P = rng.normal(size=(37, 4)).astype("float32")
    starts = numpy.asarray([0, 3, 5, 36, 10, 0, 20], dtype="int64")
    ends = numpy.asarray([37, 4, 5, 37, 29, 16, 19], dtype="int64")
    values, rows = _range_max(_sparse_table(P, numpy, longest=37), starts, ends, numpy)
    assert len(_sparse_table(P, numpy, longest=5)) == 3  # levels 1, 2, 4
    for i, (s, e) in enumerate(zip(starts, ends)):
        if e <= s:
            assert not values[i].any() and (rows[i] == -1).all()
        else:
            numpy.testing.assert_array_equal(values[i], P[s:e].max(axis=0))
            numpy.testing.assert_array_equal(rows[i], s + P[s:e].argmax(axis=0))


# --- the component -----------------------------------------------------------------


def test_add_pipe_offline_with_defaults(tiny_bert):
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}})
    rel = nlp.add_pipe("biobert_relations")
    assert rel.labels == ()
    assert rel.candidates == EntityPairs() and rel.get_candidates is rel.candidates
    assert rel.spans_key is None
    assert nlp.config["components"]["biobert_relations"]["candidates"] == {
        "@misc": "spacy-biobert.EntityPairs.v1",
        "allowed_pairs": None,
        "max_distance": None,
        "distance_unit": "tokens",
        "spans_key": None,
        "closest_per_concept_pair": None,
    }
    assert (
        nlp.config["components"]["biobert_relations"]["model"]["@architectures"]
        == "spacy-biobert.RelationModel.v2"
    )


def test_relation_component_uses_the_registered_scorer(tiny_bert, cid_trained):
    from spacy_biobert.evaluation.relations import relations_score

    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}})
    rel = nlp.add_pipe("biobert_relations")
    assert rel.scorer is relations_score
    assert nlp.config["components"]["biobert_relations"]["scorer"] == {
        "@scorers": "spacy-biobert.relations_scorer.v1"
    }
    # The component's score is the scorer's, given the component's cfg.
    trained, examples = cid_trained
    component = trained.get_pipe("biobert_relations")
    scores = component.score(examples)  # gold_entities: predicts on the gold entities
    assert scores == relations_score(
        examples,
        threshold=component.threshold,
        labels=component.labels,
        concept_labels=component.concept_labels,
    )
    assert scores["rel_doc_f"] is not None and scores["rel_micro_f"] is None


@pytest.mark.parametrize(
    "config,match",
    [
        ({"threshold": 1.5}, r"\[E207\].*1.5"),
        ({"concept_pooling": "mean"}, r"\[E206\].*'mean'"),
    ],
)
def test_component_config_errors(tiny_bert, config, match):
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}})
    with pytest.raises(ValueError, match=match):
        nlp.add_pipe("biobert_relations", config=config)


def test_initialize_without_relations_or_labels_says_how_to_fix(tiny_bert):
    nlp = make_nlp(tiny_bert)
    examples = [example(nlp.vocab, CP_WORDS, ents=CP_ENTS, relations=[])]
    with pytest.raises(ValueError, match=r"\[E205\].*labels"):
        nlp.initialize(lambda: examples)


def test_labels_and_levels_from_gold(chemprot_trained, cid_trained):
    rel = chemprot_trained[0].get_pipe("biobert_relations")
    assert rel.labels == ("CPR:3", "CPR:4") and rel.concept_labels == ()
    rel = cid_trained[0].get_pipe("biobert_relations")
    assert rel.labels == ("CID",) and rel.concept_labels == ("CID",)


def test_listener_is_wired(chemprot_trained):
    assert chemprot_trained[0].get_pipe("biobert").listening_components == [
        "biobert_relations"
    ]


def test_overfits_mention_level_relations(chemprot_trained):
    nlp, examples = chemprot_trained
    (relations,) = predict_relations(nlp, examples)
    assert set(relations) == {(0, 2), (0, 6), (4, 2), (4, 6)}
    assert relations[(0, 2)]["CPR:4"] > 0.5 and relations[(0, 2)]["CPR:3"] < 0.5
    assert relations[(4, 6)]["CPR:3"] > 0.5 and relations[(4, 6)]["CPR:4"] < 0.5
    assert relations[(0, 6)]["CPR:3"] < 0.5 and relations[(0, 6)]["CPR:4"] < 0.5
    assert relations[(4, 2)]["CPR:3"] < 0.5 and relations[(4, 2)]["CPR:4"] < 0.5


def test_overfits_concept_level_relations_with_kb_aggregation(cid_trained):
    nlp, examples = cid_trained
    doc = examples[0].reference.copy()
    doc._.gold_relations = None
    doc = nlp(doc)
    kb = doc._.kb_relations
    assert set(kb) == {
        (c, d) for c in ("D003042", "D009270") for d in ("D012640", "D064420", "D007022")
    }
    assert kb[("D003042", "D012640")]["CID"] > 0.5
    assert all(p["CID"] < 0.5 for key, p in kb.items() if key != ("D003042", "D012640"))
    assert kb_relation_triples(doc) == [
        ("D003042", "D012640", "CID", kb[("D003042", "D012640")]["CID"])
    ]
    scores = score_cid([Example(doc, examples[0].reference)])
    assert scores["rel_doc_f"] == 1.0


def test_empty_docs_and_docs_with_too_few_entities(chemprot_trained):
    nlp, _ = chemprot_trained
    docs = [
        nlp.make_doc(""),
        nlp.make_doc("aspirin inhibits kinase ."),
        make_doc(nlp.vocab, ["aspirin", "inhibits"], ents=[(0, 1, "CHEMICAL", "", "")]),
        make_doc(
            nlp.vocab,
            ["aspirin", "kinase"],
            ents=[(0, 1, "GENE", "", ""), (1, 2, "GENE", "", "")],
        ),
    ]
    for doc in nlp.pipe(docs):
        assert (
            doc._.relations == {}
            and doc._.relation_pairs == []
            and doc._.kb_relations == {}
        )
    assert nlp("")._.relations == {}


def test_update_with_no_candidates_still_runs(chemprot_trained):
    nlp, _ = chemprot_trained
    eg = example(
        nlp.vocab, ["aspirin", "."], ents=[(0, 1, "CHEMICAL", "", "T1")], relations=[]
    )
    losses = nlp.update([eg], sgd=None)
    assert losses["biobert_relations"] == 0.0


def test_training_evaluations_predict_gold_entity_relations_once(cid_trained, monkeypatch):
    """With gold_entities, `score` predicts on the reference's entities; the
    training logger makes the pipeline pass skip its own prediction (on what
    `ner` found), which `score` overwrote unread: the same scores, one pass."""
    from spacy_biobert.training import create_training_logger

    nlp, _ = cid_trained
    rel = nlp.get_pipe("biobert_relations")
    example = reader_example(nlp, CID_WORDS, ents=CID_ENTS, sents=[0, 6, 10],
                             relations=CID_RELS, doc_id="9")
    # as if a `ner` before it had found the entities
    example.predicted.set_ents([example.predicted.char_span(e.start_char, e.end_char, label=e.label_)
                                for e in example.reference.ents])
    calls = []
    predict = rel.predict
    monkeypatch.setattr(rel, "predict", lambda docs: calls.append(len(list(docs))) or predict(docs))
    before = nlp.evaluate([example])
    assert len(calls) == 2  # the pipeline pass, then `score` on gold entities
    calls.clear()
    create_training_logger(progress_bar=False)(nlp, io.StringIO(), io.StringIO())
    assert rel.predict_only_in_score
    after = nlp.evaluate([example])
    assert len(calls) == 1
    assert {k: v for k, v in after.items() if k.startswith("rel_")} == {
        k: v for k, v in before.items() if k.startswith("rel_")}
    rel.predict_only_in_score = False  # the fixture is shared


def test_thousands_of_pairs_are_scored_in_bounded_batches(tiny_bert, monkeypatch):
    nlp = make_nlp(tiny_bert, max_pairs_per_batch=500)
    examples = [example(nlp.vocab, CP_WORDS, ents=CP_ENTS, relations=CP_RELS)]
    nlp.initialize(lambda: examples)
    words = [w for i in range(70) for w in (f"cell{i}", "and")]
    doc = make_doc(
        nlp.vocab, words, ents=[(2 * i, 2 * i + 1, "GENE", "", "") for i in range(70)]
    )
    rel = nlp.get_pipe("biobert_relations")
    scorer = rel.model.get_ref("scorer")
    sizes = []
    predict = Model.predict

    def recording_predict(self, X):
        if self is scorer:
            sizes.append(X.shape[0])
        return predict(self, X)

    monkeypatch.setattr(Model, "predict", recording_predict)
    doc = nlp(doc)
    monkeypatch.undo()
    assert len(doc._.relation_pairs) == 70 * 69
    assert len(doc._.relations) == 70 * 69
    assert sum(sizes) == 70 * 69 and max(sizes) == 500


def test_serialisation_round_trips_give_identical_predictions(chemprot_trained, tmp_path):
    nlp, examples = chemprot_trained
    texts = [eg.predicted.copy() for eg in examples]
    expected = [d._.relation_pairs for d in nlp.pipe([t.copy() for t in texts])]
    nlp.to_disk(tmp_path / "pipeline")
    reloaded = spacy.load(tmp_path / "pipeline")
    assert reloaded.get_pipe("biobert_relations").labels == ("CPR:3", "CPR:4")
    assert [
        d._.relation_pairs for d in reloaded.pipe([t.copy() for t in texts])
    ] == expected
    rel_bytes = nlp.get_pipe("biobert_relations").to_bytes()
    fresh = make_nlp(nlp.get_pipe("biobert").model.attrs["name"], candidates=CP_PAIRS)
    fresh.get_pipe("biobert").from_bytes(nlp.get_pipe("biobert").to_bytes())
    fresh.get_pipe("biobert_relations").from_bytes(rel_bytes)
    got = [d._.relations for d in fresh.pipe([t.copy() for t in texts])]
    assert got == [d._.relations for d in nlp.pipe([t.copy() for t in texts])]


def test_gold_matched_by_characters_across_tokenizations(chemprot_trained):
    """Positives are found by character offsets, so a predicted doc tokenized
    differently from the reference still gets its gold pairs."""
    nlp, _ = chemprot_trained
    rel = nlp.get_pipe("biobert_relations")
    text_words = ["aspirin", "-", "like", "drugs", "inhibit", "kinase", "."]
    spaces = [False, False, True, True, True, False, False]
    reference = Doc(
        nlp.vocab,
        words=["aspirin-like", "drugs", "inhibit", "kinase", "."],
        spaces=[True, True, True, False, False],
    )
    reference.spans[MENTIONS_KEY] = [
        Span(reference, 0, 2, label="CHEMICAL", span_id="T1"),
        Span(reference, 3, 4, label="GENE", span_id="T2"),
    ]
    reference._.gold_relations = [
        {"level": "mention", "head": "T1", "tail": "T2", "label": "CPR:4"}
    ]
    predicted = Doc(nlp.vocab, words=text_words, spaces=spaces)
    predicted.ents = [
        Span(predicted, 0, 4, label="CHEMICAL"),
        Span(predicted, 5, 6, label="GENE"),
    ]
    eg = Example(predicted, reference)
    logits = rel.model.ops.alloc2f(1, 2)
    _, d = rel.get_loss([eg], logits)
    # d = sigmoid(0) - y: negative for the gold label CPR:4 only
    assert rel.labels == ("CPR:3", "CPR:4")
    assert d[0, 1] < 0 < d[0, 0]


def test_concept_loss_pools_over_mention_pairs():
    """A concept pair's gradient is spread over its mention pairs (logsumexp)
    and sums to sigmoid(pooled) - y; pairs without kb ids get none."""
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": "unused"}})
    rel = nlp.add_pipe(
        "biobert_relations",
        config={
            "candidates": {
                "@misc": "spacy-biobert.EntityPairs.v1",
                "allowed_pairs": [["Chemical", "Disease"]],
            }
        },
    )
    rel.add_label("CID", level="concept")
    ents = [
        (0, 1, "Chemical", "C1", ""),
        (2, 3, "Disease", "D1", ""),
        (4, 5, "Disease", "D1", ""),
        (6, 7, "Disease", "-1", ""),
    ]
    words = "a x b x c x d".split()
    eg = example(
        nlp.vocab,
        words,
        ents=ents,
        relations=[{"level": "concept", "head": "C1", "tail": "D1", "label": "CID"}],
    )
    logits = numpy.asarray([[1.0], [0.0], [3.0]], dtype="float32")
    loss, d = rel.get_loss([eg], logits)
    pooled = numpy.logaddexp(1.0, 0.0)
    assert float(d[:2].sum()) == pytest.approx(1 / (1 + numpy.exp(-pooled)) - 1.0, rel=1e-5)
    assert d[0, 0] < d[1, 0] < 0 and d[2, 0] == 0.0
    assert loss == pytest.approx(float(numpy.logaddexp(0, pooled) - pooled), rel=1e-5)


# --- the candidate generator as a component argument ----------------------------

# Calls of the test generator below, one entry per doc it was called on.
CANDIDATE_CALLS: list = []


class ChemicalToDisease:
    """A custom generator: every Chemical -> Disease pair of doc.ents, counting calls."""

    def __call__(self, doc):
        CANDIDATE_CALLS.append(doc.text)
        chemicals = [e for e in doc.ents if e.label_ == "Chemical"]
        diseases = [e for e in doc.ents if e.label_ == "Disease"]
        return [(c, d) for c in chemicals for d in diseases]


@spacy.registry.misc("test-relations.chemical_to_disease.v1")
def create_chemical_to_disease():
    return ChemicalToDisease()


def test_custom_candidate_generator_is_called_once_per_doc_and_batch(tiny_bert):
    nlp = make_nlp(tiny_bert, {"@misc": "test-relations.chemical_to_disease.v1"})
    rel = nlp.get_pipe("biobert_relations")
    assert isinstance(rel.candidates, ChemicalToDisease) and rel.spans_key is None
    examples = [
        example(nlp.vocab, CID_WORDS, ents=CID_ENTS, sents=[0, 6, 10], relations=CID_RELS)
        for _ in range(3)
    ]
    optimizer = nlp.initialize(lambda: examples)
    CANDIDATE_CALLS.clear()
    nlp.update(examples, sgd=optimizer)  # model, loss: one call per example
    assert len(CANDIDATE_CALLS) == 3
    CANDIDATE_CALLS.clear()
    texts = [eg.predicted.copy() for eg in examples for _ in range(3)]
    docs = list(nlp.pipe(texts, batch_size=4))
    assert len(CANDIDATE_CALLS) == 9  # model and set_annotations: one call per doc
    for doc in docs:
        assert len(doc._.relation_pairs) == 3 * 4  # of 7 * 6 ordered pairs
        assert {(h[2], t[2]) for h, t, _ in doc._.relation_pairs} == {("Chemical", "Disease")}


def test_old_config_with_candidates_in_the_model_loads(tiny_bert, tmp_path):
    """RelationModel.v1 with [...model.get_candidates] (configs and saved
    pipelines before the generator was a component argument) still builds,
    uses its generator, saves, reloads and predicts like the new form."""
    old = make_nlp(
        tiny_bert,
        **{
            "@architectures": "spacy-biobert.RelationModel.v1",
            "get_candidates": dict({"@misc": "spacy-biobert.EntityPairs.v1"}, **CID_PAIRS),
        },
    )
    assert old.get_pipe("biobert_relations").candidates == create_entity_pairs(
        **CID_PAIRS
    )
    examples = [example(old.vocab, CID_WORDS, ents=CID_ENTS, relations=CID_RELS)]
    train(old, examples, steps=2)
    texts = [eg.predicted.copy() for eg in examples]
    expected = [d._.relation_pairs for d in old.pipe([t.copy() for t in texts])]
    assert len(expected[0]) == 3 * 4
    old.to_disk(tmp_path / "old")
    reloaded = spacy.load(tmp_path / "old")
    rel = reloaded.get_pipe("biobert_relations")
    assert rel.candidates == create_entity_pairs(**CID_PAIRS)
    assert [d._.relation_pairs for d in reloaded.pipe([t.copy() for t in texts])] == expected
    # The same weights in the new form give the same predictions.
    new = make_nlp(tiny_bert, candidates=CID_PAIRS)
    new.get_pipe("biobert").from_bytes(old.get_pipe("biobert").to_bytes())
    new.get_pipe("biobert_relations").from_bytes(
        old.get_pipe("biobert_relations").to_bytes()
    )
    assert [d._.relation_pairs for d in new.pipe([t.copy() for t in texts])] == expected
    # The v1 model alone still takes a list of docs.
    assert rel.model.predict([reloaded(t.copy()) for t in texts]).shape == (12, 1)


def test_candidates_in_two_places_is_an_error(tiny_bert):
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}})
    config = {
        "candidates": dict({"@misc": "spacy-biobert.EntityPairs.v1"}, **CP_PAIRS),
        "model": {
            "@architectures": "spacy-biobert.RelationModel.v1",
            "tok2vec": LISTENER,
            "get_candidates": dict({"@misc": "spacy-biobert.EntityPairs.v1"}, **CID_PAIRS),
        },
    }
    with pytest.raises(ValueError, match=r"\[E211\].*RelationModel.v2"):
        nlp.add_pipe("biobert_relations", config=config)


def test_relation_model_v2_needs_candidates(chemprot_trained):
    nlp, examples = chemprot_trained
    model = nlp.get_pipe("biobert_relations").model
    docs = [eg.predicted for eg in examples]
    with pytest.raises(ValueError, match=r"\[E210\]"):
        model.predict(docs)
    with pytest.raises(ValueError, match=r"\[E209\]"):
        model.predict((docs, []))


# --- helpers and scoring ---------------------------------------------------------


def _predicted_doc(vocab):
    doc = make_doc(vocab, CID_WORDS, ents=CID_ENTS, sents=[0, 6, 10], doc_id="9")
    doc._.relation_pairs = [
        ((0, 1, "Chemical", "D003042"), (2, 3, "Disease", "D012640"), {"CID": 0.9}),
        ((10, 11, "Chemical", "D003042"), (13, 14, "Disease", "D012640"), {"CID": 0.6}),
        (
            (6, 7, "Chemical", "D009270|D003042"),
            (17, 18, "Disease", "D007022"),
            {"CID": 0.7},
        ),
        ((0, 1, "Chemical", "D003042"), (11, 12, "Disease", "D064420"), {"CID": 0.2}),
    ]
    doc._.relations = {(h[0], t[0]): s for h, t, s in doc._.relation_pairs}
    doc._.kb_relations = aggregate_by_kb_id(doc, pooling="max")
    return doc


def test_relation_triples_at_threshold():
    doc = _predicted_doc(spacy.blank("en").vocab)
    triples = relation_triples(doc, threshold=0.65)
    assert [(h.text, t.text, label, p) for h, t, label, p in triples] == [
        ("cocaine", "seizures", "CID", 0.9),
        ("naloxone", "hypotension", "CID", 0.7),
    ]
    assert triples[0][0].kb_id_ == "D003042" and triples[0][1].label_ == "Disease"
    assert relation_triples(doc, threshold=0.95) == []
    with pytest.raises(ValueError, match=r"\[E207\]"):
        relation_triples(doc, threshold=-0.1)


def test_document_level_labels_come_once_per_pair_of_ids_with_the_pooled_probability():
    """relation_triples, relations_to_displacy and visualize read one meaning:
    a concept-level label is the pooled doc._.kb_relations (what the writers
    write and the scorer scores), once per pair of ids, on its strongest
    mention pair."""
    from spacy_biobert.visualize import doc_relations

    doc = _predicted_doc(spacy.blank("en").vocab)
    doc._.relation_levels = {"CID": "concept"}
    doc._.kb_relations = aggregate_by_kb_id(doc, pooling="logsumexp")
    pooled = doc._.kb_relations[("D003042", "D012640")]["CID"]
    assert pooled > 0.9  # two mention pairs, 0.9 and 0.6, pooled
    triples = relation_triples(doc, threshold=0.5)
    assert [(h.text, h.kb_id_, t.text, t.kb_id_, label) for h, t, label, _ in triples] == [
        ("cocaine", "D003042", "seizures", "D012640", "CID"),  # the stronger of two pairs
        ("naloxone", "D009270", "hypotension", "D007022", "CID"),  # composite: each id
        ("naloxone", "D003042", "hypotension", "D007022", "CID"),
    ]
    assert triples[0][3] == pytest.approx(pooled)
    # a pair of ids whose mention pairs are each under the threshold, but pooled over it
    doc._.kb_relations[("D003042", "D064420")] = {"CID": 0.55}
    assert [(h.text, t.text, round(p, 2)) for h, t, _, p in relation_triples(doc, 0.5)][1] == (
        "cocaine", "toxicity", 0.55
    )
    arcs = relations_to_displacy(doc, threshold=0.5)["arcs"]
    assert [a["label"] for a in arcs] == [f"CID {pooled:.2f}", "CID 0.55", "CID 0.70", "CID 0.70"]
    drawn = [(h.text, t.text, scores) for h, t, scores in doc_relations(doc, 0.5)]
    assert drawn[0] == ("cocaine", "seizures", [("CID", pytest.approx(pooled))])
    # mention-level labels stay per mention pair
    doc._.relation_levels = {"CID": "mention"}
    assert [p for *_, p in relation_triples(doc, 0.5)] == [0.9, 0.7, 0.6]


def test_aggregation_by_kb_id():
    doc = _predicted_doc(spacy.blank("en").vocab)
    by_max = aggregate_by_kb_id(doc, pooling="max")
    assert by_max[("D003042", "D012640")]["CID"] == pytest.approx(0.9)
    # the composite chemical counts for each of its ids
    assert by_max[("D009270", "D007022")]["CID"] == pytest.approx(0.7)
    assert by_max[("D003042", "D007022")]["CID"] == pytest.approx(0.7)
    by_lse = aggregate_by_kb_id(doc, pooling="logsumexp")
    assert by_lse[("D003042", "D012640")]["CID"] > 0.9
    assert by_lse[("D003042", "D064420")]["CID"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match=r"\[E206\].*'mean'"):
        aggregate_by_kb_id(doc, pooling="mean")


def test_displacy_data():
    doc = _predicted_doc(spacy.blank("en").vocab)
    data = relations_to_displacy(doc, threshold=0.5)
    words = [w["text"] for w in data["words"]]
    assert words[:3] == ["cocaine", "induced", "seizures"]
    assert {"start": 0, "end": 2, "label": "CID 0.90", "dir": "right"} in data["arcs"]
    assert len(data["arcs"]) == 3
    from spacy import displacy

    assert "CID 0.90" in displacy.render(data, style="dep", manual=True)


def test_scores_count_unmatched_predictions_as_false_positives():
    vocab = spacy.blank("en").vocab
    reference = make_doc(
        vocab,
        CP_WORDS,
        mentions=CP_ENTS,
        relations=CP_RELS
        + [{"level": "mention", "head": "T3", "tail": "T2", "label": "CPR:1"}],
        doc_id="1",
    )
    predicted = make_doc(vocab, CP_WORDS, ents=CP_ENTS, doc_id="1")
    predicted._.relation_pairs = [
        ((0, 1, "CHEMICAL", ""), (2, 3, "GENE", ""), {"CPR:3": 0.1, "CPR:4": 0.8}),  # TP
        ((0, 1, "CHEMICAL", ""), (6, 7, "GENE", ""), {"CPR:3": 0.9, "CPR:4": 0.2}),  # FP
        ((4, 5, "CHEMICAL", ""), (6, 7, "GENE", ""), {"CPR:3": 0.4, "CPR:4": 0.1}),  # FN
        ((4, 5, "CHEMICAL", ""), (9, 10, "GENE", ""), {"CPR:9": 0.99}),  # not in gold: FP
    ]
    eg = Example(predicted, reference)
    scores = score_relations([eg], threshold=0.5, labels=["CPR:3", "CPR:4", "CPR:9"])
    assert scores["rel_micro_counts"] == {"tp": 1, "fp": 2, "fn": 1}
    assert scores["rel_micro_p"] == pytest.approx(1 / 3)
    assert scores["rel_micro_r"] == pytest.approx(1 / 2)
    assert scores["rel_micro_per_type"]["CPR:4"]["f"] == 1.0
    lower = score_relations([eg], threshold=0.3, labels=["CPR:3", "CPR:4", "CPR:9"])
    assert lower["rel_micro_counts"] == {"tp": 2, "fp": 2, "fn": 0}


def test_cid_scores_are_document_level():
    vocab = spacy.blank("en").vocab
    reference = make_doc(
        vocab,
        CID_WORDS,
        ents=CID_ENTS,
        relations=CID_RELS
        + [{"level": "concept", "head": "D009270", "tail": "D064420", "label": "CID"}],
        doc_id="9",
    )
    eg = Example(_predicted_doc(vocab), reference)
    scores = score_cid([eg], threshold=0.5)
    # predicted at 0.5: (D003042, D012640) TP; (D009270|D003042 -> D007022) 2 FP;
    # gold (D009270, D064420) FN
    assert scores["rel_doc_counts"] == {"tp": 1, "fp": 2, "fn": 1}
    assert scores["rel_doc_f"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))


def test_gold_entities_evaluate_on_bare_predicted_docs(cid_trained):
    """nlp.evaluate on reader-style examples: the component scores with the
    reference's entities and sentences; a pipeline without gold_entities
    would see no entity at all."""
    nlp, _ = cid_trained
    fresh = [
        reader_example(
            nlp, CID_WORDS, ents=CID_ENTS, sents=[0, 6, 10], relations=CID_RELS, doc_id="9"
        )
    ]
    assert not fresh[0].predicted.ents
    scores = nlp.evaluate(fresh)
    assert scores["rel_doc_f"] == 1.0
    assert scores["rel_micro_f"] is None


def test_copy_gold_entities_across_tokenizations():
    from spacy_biobert.pipeline.relations import copy_gold_entities

    vocab = spacy.blank("en").vocab
    reference = Doc(
        vocab,
        words=["aspirin-like", "drugs", ".", "Kinase", "."],
        spaces=[True, False, True, False, False],
    )
    for i, token in enumerate(reference):
        token.is_sent_start = i in (0, 3)
    reference.spans[MENTIONS_KEY] = [
        Span(reference, 0, 2, label="CHEMICAL", span_id="T1"),
        Span(reference, 0, 1, label="CHEMICAL", span_id="T2"),
    ]
    reference.ents = [Span(reference, 0, 2, label="CHEMICAL", kb_id="D1")]
    predicted = Doc(
        vocab,
        words=["aspirin", "-", "like", "drugs", ".", "Kinase", "."],
        spaces=[False, False, True, False, True, False, False],
    )
    eg = Example(predicted, reference)
    doc = copy_gold_entities(eg)
    assert [(e.text, e.label_, e.kb_id_) for e in doc.ents] == [
        ("aspirin-like drugs", "CHEMICAL", "D1")
    ]
    assert [s.text for s in doc.sents] == ["aspirin-like drugs.", "Kinase."]
    copy_gold_entities(eg, MENTIONS_KEY)
    assert [(s.text, s.id_) for s in doc.spans[MENTIONS_KEY]] == [
        ("aspirin-like drugs", "T1"),
        ("aspirin-like", "T2"),
    ]


def test_nested_mentions_as_candidates(tiny_bert):
    """ChemProt-style: candidates from the "mentions" span group (nested spans
    share a start); doc._.relation_pairs keeps them apart."""
    nlp = make_nlp(
        tiny_bert,
        candidates={"allowed_pairs": [["CHEMICAL", "GENE"]], "spans_key": MENTIONS_KEY},
        gold_entities=True,
    )
    words = "cisplatin inhibits kinase receptor expression .".split()
    mentions = [
        (0, 1, "CHEMICAL", "", "T1"),
        (2, 3, "GENE", "", "T2"),
        (2, 4, "GENE", "", "T3"),
    ]
    rels = [{"level": "mention", "head": "T1", "tail": "T3", "label": "CPR:4"}]
    examples = [reader_example(nlp, words, mentions=mentions, relations=rels)]
    train(nlp, examples, steps=60)
    scores = nlp.evaluate([reader_example(nlp, words, mentions=mentions, relations=rels)])
    assert scores["rel_micro_f"] == 1.0
    doc = examples[0].reference.copy()
    doc = nlp(doc)
    pairs = {(h[:3], t[:3]): s["CPR:4"] for h, t, s in doc._.relation_pairs}
    assert pairs[((0, 1, "CHEMICAL"), (2, 4, "GENE"))] > 0.5
    assert pairs[((0, 1, "CHEMICAL"), (2, 3, "GENE"))] < 0.5
    # the public dict, keyed by starts, holds the per-label maximum
    assert doc._.relations[(0, 2)]["CPR:4"] == max(pairs.values())


def test_component_score_and_evaluate(chemprot_trained):
    nlp, examples = chemprot_trained
    scores = nlp.evaluate([Example(eg.predicted.copy(), eg.reference) for eg in examples])
    assert scores["rel_micro_f"] == 1.0
    assert scores["rel_doc_f"] is None


def test_evaluate_relations_at_several_thresholds(cid_trained):
    from spacy_biobert.evaluation.relations import evaluate_relations

    nlp, _ = cid_trained
    fresh = [
        reader_example(
            nlp, CID_WORDS, ents=CID_ENTS, sents=[0, 6, 10], relations=CID_RELS, doc_id="9"
        )
    ]
    scores = evaluate_relations(nlp, fresh, thresholds=(0.0, 0.5, 1.0))
    assert scores[0.5]["rel_doc_f"] == 1.0
    assert scores[0.0]["rel_doc_counts"] == {"tp": 1, "fp": 5, "fn": 0}
    assert scores[1.0]["rel_doc_counts"]["tp"] == 0
    assert not fresh[0].predicted.ents  # examples left as they were


def test_ner_and_relations_listen_to_one_transformer(tiny_bert):
    """End to end: `ner` predicts the entities the relation component pairs
    (annotating_components), both listening to `biobert`."""
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}})
    nlp.add_pipe(
        "ner",
        config={
            "model": {
                "@architectures": "spacy.TransitionBasedParser.v2",
                "state_type": "ner",
                "hidden_width": 32,
                "maxout_pieces": 2,
                "use_upper": False,
                "extra_state_tokens": False,
                "tok2vec": LISTENER,
            }
        },
    )
    nlp.add_pipe(
        "biobert_relations",
        config={"model": {"tok2vec": LISTENER, "width": 16, "hidden_width": 16}},
    )
    reference = make_doc(nlp.vocab, CP_WORDS, ents=CP_ENTS, relations=CP_RELS)
    examples = [Example(nlp.make_doc(reference.text), reference)]
    optimizer = nlp.initialize(lambda: examples)
    assert sorted(nlp.get_pipe("biobert").listening_components) == [
        "biobert_relations",
        "ner",
    ]
    for _ in range(3):
        losses = nlp.update(examples, sgd=optimizer, annotates=["ner"])
    assert set(losses) >= {"ner", "biobert_relations", "biobert"}
    doc = nlp(reference.text)
    assert isinstance(doc._.relations, dict)


def test_replace_listeners_survives_save_and_reload(chemprot_trained, tmp_path):
    nlp, examples = chemprot_trained
    texts = [eg.predicted.copy() for eg in examples]
    expected = [d._.relation_pairs for d in nlp.pipe([t.copy() for t in texts])]
    nlp.to_disk(tmp_path / "shared")
    own = spacy.load(tmp_path / "shared")
    own.replace_listeners("biobert", "biobert_relations", ["model.tok2vec"])
    assert own.get_pipe("biobert").listening_components == []
    got = [d._.relation_pairs for d in own.pipe([t.copy() for t in texts])]
    assert _close(got, expected)
    own.to_disk(tmp_path / "own")
    reloaded = spacy.load(tmp_path / "own")
    assert [d._.relation_pairs for d in reloaded.pipe([t.copy() for t in texts])] == got


def _close(a, b, tol=1e-5):
    return all(
        ha == hb and ta == tb and all(abs(sa[k] - sb[k]) < tol for k in sa)
        for da, db in zip(a, b)
        for (ha, ta, sa), (hb, tb, sb) in zip(da, db)
    )
