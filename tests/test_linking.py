"""Normalisation (issue 9): abbreviations, the name KB, biobert_linker, DNER
scoring and the build-kb / add-linker / evaluate-linking commands."""
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin, Span
from spacy.training import Example
from typer.testing import CliRunner

from spacy_biobert.cli import app
from spacy_biobert.corpora.formats import make_tokenizer_nlp, read_corpus
from spacy_biobert.corpora.pubtator import iter_pubtator_records
from spacy_biobert.evaluation.linking import evaluate_linking, gold_concepts, score_concepts
from spacy_biobert.extensions import install_extensions
from spacy_biobert.linking import NameKB, find_abbreviations, is_short_form, match_long_form
from spacy_biobert.linking.kb import clean_kb_id
from spacy_biobert.linking.normalize import bag_key, normalize_name

runner = CliRunner()

ABSTRACT = (
    "Puromycin aminonucleoside (PAN) causes nephrotic syndrome in rats. "
    "PAN nephrosis was studied; proteinuria followed PAN injection."
)
def _pubtator(pmid, title, abstract, mentions, relations=()):
    """A PubTator document; mentions (surface, type, id[, 7th column]) at their
    first occurrence after the previous mention."""
    text = f"{title} {abstract}"
    lines = [f"{pmid}|t|{title}", f"{pmid}|a|{abstract}"]
    pos = 0
    for surface, label, kb_id, *rest in mentions:
        start = text.index(surface, pos)
        pos = start + len(surface)
        lines.append("\t".join([pmid, str(start), str(pos), surface, label, kb_id, *rest]))
    lines += ["\t".join([pmid, *rel]) for rel in relations]
    return "\n".join(lines) + "\n\n"


PUBTATOR = _pubtator(
    "1",
    "Puromycin aminonucleoside (PAN) causes nephrotic syndrome.",
    "PAN induced proteinuria and heart failures in rats given naloxone.",
    [("Puromycin aminonucleoside", "Chemical", "D011692"), ("PAN", "Chemical", "D011692"),
     ("nephrotic syndrome", "Disease", "D009404"), ("PAN", "Chemical", "D011692"),
     ("proteinuria", "Disease", "D011507"), ("heart failures", "Disease", "D006333"),
     ("naloxone", "Chemical", "D009270")],
    [("CID", "D011692", "D011507")],
) + _pubtator(
    "2",
    "Ocular and auditory toxicity after nalozone.",
    "Cocaine was given.",
    [("Ocular and auditory toxicity", "Disease", "D014786|D006311", "Ocular toxicity|auditory toxicity"),
     ("nalozone", "Chemical", "-1"), ("Cocaine", "Chemical", "D003042")],
)


@pytest.fixture()
def nlp():
    return make_tokenizer_nlp("biomedical")


@pytest.fixture()
def pubtator(tmp_path) -> Path:
    path = tmp_path / "tiny.pubtator"
    path.write_text(PUBTATOR, encoding="utf8")
    return path


@pytest.fixture()
def kb(pubtator) -> NameKB:
    kb = NameKB()
    kb.add_records(iter_pubtator_records(pubtator))
    return kb.build()


# --- normalisation -----------------------------------------------------------------


@pytest.mark.parametrize(
    "a,b",
    [
        ("Heart failures", "heart failure"),
        ("arteries", "artery"),
        ("Na(+)", "na"),
        ("anti-convulsant", "anti convulsant"),
        ("α-tocopherol", "alpha tocopherol"),
        ("diabetes", "diabetes"),
        ("sepsis", "sepsis"),
    ],
)
def test_normalize_name(a, b):
    assert normalize_name(a) == b


def test_bag_key_ignores_order_and_function_words():
    assert bag_key(normalize_name("cancer of the breast")) == bag_key(normalize_name("breast cancer"))


@pytest.mark.parametrize(
    "value,expected",
    [("D014786|D006311", "D014786|D006311"), ("-1", ""), ("D002544|-1", "D002544"),
     (" D015862+D058499", "D015862+D058499"), ("", "")],
)
def test_clean_kb_id(value, expected):
    assert clean_kb_id(value) == expected


# --- abbreviations ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text,ok", [("PAN", True), ("5-HT", True), ("n = 5", False), ("1998", False),
                ("i.e.", False), ("a", False), ("-PAN", False), ("TOOLONGSHORTFORM", False)]
)
def test_is_short_form(text, ok):
    assert is_short_form(text) is ok


def test_match_long_form():
    text = "were given puromycin aminonucleoside"
    assert text[match_long_form(text, "PAN"):] == "puromycin aminonucleoside"
    assert match_long_form("blood pressure", "XYZ") is None


def test_abbreviations_every_occurrence(nlp):
    nlp.add_pipe("biobert_abbreviations")
    doc = nlp(ABSTRACT)
    pairs = [(s.text, lf.text) for s, lf in doc._.abbreviations]
    assert pairs == [("PAN", "Puromycin aminonucleoside")] * 3
    last = [t.i for t in doc if t.text == "PAN"][-1]
    later = doc[last : last + 1]
    assert later._.long_form.text == "Puromycin aminonucleoside"
    assert doc[0:1]._.long_form is None


def test_abbreviations_short_form_first_and_no_false_pairs(nlp):
    nlp.add_pipe("biobert_abbreviations")
    doc = nlp("Rats received DES (diethylstilbestrol daily dose) in water.")
    assert [(s.text, lf.text) for s, lf in doc._.abbreviations] == [("DES", "diethylstilbestrol daily dose")]
    for text in ("Blood pressure (n = 12) fell.", "A drug (i.e. a toxin) was given.", "No brackets."):
        assert nlp(text)._.abbreviations == []
    assert nlp("")._.abbreviations == []


def test_abbreviations_survive_docbin(nlp):
    nlp.add_pipe("biobert_abbreviations")
    doc = nlp(ABSTRACT)
    db = DocBin(store_user_data=True, docs=[doc])
    again = list(DocBin().from_bytes(db.to_bytes()).get_docs(nlp.vocab))[0]
    assert [(s.text, lf.text) for s, lf in again._.abbreviations] == [
        (s.text, lf.text) for s, lf in doc._.abbreviations
    ]


def test_long_form_is_not_its_own_occurrence(nlp):
    doc = nlp("Mean arterial pressure (MAP) and MAP were low.")
    found = find_abbreviations(doc)
    assert [(doc[a:b].text, (c, d)) for a, b, c, d in found] == [("MAP", (0, 3)), ("MAP", (0, 3))]


# --- the knowledge base -----------------------------------------------------------


def test_kb_lookup_exact_normalised_similar_and_none(kb):
    assert kb.link("naloxone", "Chemical") == ("D009270", 1.0, "exact")
    assert kb.link("Heart failure", "Disease")[:2] == ("D006333", 1.0)
    assert kb.link("Heart failure", "Disease").method == "normalised"
    similar = kb.link("nephrotic syndromes, primary", "Disease", threshold=0.5)
    assert similar is not None and similar.kb_id == "D009404" and similar.method == "similar"
    assert kb.link("nephrotic syndromes, primary", "Disease", threshold=0.99) is None
    assert kb.link("xylophone", "Disease") is None
    # per-label indexes: a chemical name is not a disease
    assert kb.link("naloxone", "Disease", threshold=0.99) is None


def test_kb_composites_and_unlinkable_ids(kb):
    assert kb.link("Ocular and auditory toxicity", "Disease").kb_id == "D014786|D006311"
    assert kb.link("auditory toxicity", "Disease").kb_id == "D006311"   # from the 7th column
    assert kb.link("nalozone", "Chemical", threshold=1.01) is None       # id -1 is not a name
    assert "-1" not in kb.ids


def test_kb_most_frequent_id_wins():
    kb = NameKB()
    kb.add("cold", "D003139", "Disease")
    kb.add("cold", "D003080", "Disease", count=3)
    assert kb.link("cold", "Disease").kb_id == "D003080"
    kb.add("cold", "D003139", "Disease", count=5)   # rebuilt after a change
    assert kb.link("cold", "Disease").kb_id == "D003139"


def test_kb_shared_names_serve_every_label(tmp_path):
    tsv = tmp_path / "mesh.tsv"
    tsv.write_text("# name\tid\nAspirin\tD001241\nFever\tD005334\tDisease\n\n", encoding="utf8")
    kb = NameKB()
    assert kb.add_tsv(tsv) == 2
    assert kb.labels == ("", "Disease")
    assert kb.link("aspirin", "Chemical").kb_id == "D001241"
    assert kb.link("fevers", "Disease").kb_id == "D005334"
    assert kb.link("fever", "Chemical") is None


def test_kb_tsv_errors(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("Aspirin\tD001241\nno id here\n", encoding="utf8")
    with pytest.raises(ValueError, match=r"E404.*bad.tsv:2"):
        NameKB().add_tsv(bad)
    with pytest.raises(FileNotFoundError, match="E403"):
        NameKB().add_tsv(tmp_path / "missing.tsv")
    with pytest.raises(ValueError, match="E405"):
        NameKB(ngram=1)


def test_kb_round_trips(kb, tmp_path):
    queries = [("naloxone", "Chemical"), ("Heart failure", "Disease"),
               ("nephrotic syndromes, primary", "Disease"), ("auditory toxicity", "Disease")]
    before = [kb.link(q, label, 0.5) for q, label in queries]
    kb.to_disk(tmp_path / "kb")
    assert (tmp_path / "kb" / "meta.json").exists()
    for again in (NameKB.load(tmp_path / "kb"), NameKB().from_bytes(kb.to_bytes())):
        assert [again.link(q, label, 0.5) for q, label in queries] == before
        assert len(again) == len(kb) and again.labels == kb.labels
    with pytest.raises(FileNotFoundError, match="E401"):
        NameKB.load(tmp_path / "nothing")
    import srsly

    with pytest.raises(ValueError, match="E402"):
        NameKB().from_bytes(srsly.msgpack_dumps({"version": 99}))


# --- the linker component ---------------------------------------------------------


def _with_ents(nlp, text, ents):
    doc = nlp(text)
    spans = []
    for surface, label in ents:
        start = doc.text.index(surface)
        spans.append(doc.char_span(start, start + len(surface), label=label))
    doc.set_ents(spans)
    return doc


def test_linker_add_pipe_offline_and_empty_kb_error(nlp):
    linker = nlp.add_pipe("biobert_linker")
    assert linker.cfg["threshold"] == 0.7
    with pytest.raises(ValueError, match="E406"):
        nlp("naloxone")
    with pytest.raises(ValueError, match="E407"):
        spacy.blank("en").add_pipe("biobert_linker", config={"threshold": -1})


def test_linker_sets_kb_ids_through_long_forms(nlp, kb):
    nlp.add_pipe("biobert_abbreviations")
    linker = nlp.add_pipe("biobert_linker")
    linker.set_kb(kb)
    text = "Propylthiouracil (PTU) and naloxone caused heart failures; PTU again. Nothing here."
    kb.add("propylthiouracil", "D011441", "Chemical")
    linker.set_kb(kb.build())
    ents = [("PTU", "Chemical"), ("naloxone", "Chemical"), ("heart failures", "Disease")]
    doc = _with_ents(nlp, text, ents)
    doc.user_data.clear()
    for _, proc in nlp.pipeline:
        doc = proc(doc)
    assert [(e.text, e.kb_id_) for e in doc.ents] == [
        ("PTU", "D011441"), ("naloxone", "D009270"), ("heart failures", "D006333")
    ]
    # without the abbreviation component the short form has no id
    plain = spacy.blank("en")
    plain.add_pipe("biobert_linker").set_kb(kb)
    doc = plain(_with_ents(plain, text, [("PTU", "Chemical")]))
    assert [e.kb_id_ for e in doc.ents] == [""]


def test_linker_no_entities_labels_and_overwrite(nlp, kb):
    linker = nlp.add_pipe("biobert_linker", config={"labels": ["Disease"], "overwrite": False})
    linker.set_kb(kb)
    assert len(nlp("")) == 0
    assert list(nlp("No entities at all.").ents) == []
    ents = [("naloxone", "Chemical"), ("heart failures", "Disease")]
    doc = _with_ents(nlp, "naloxone and heart failures", ents)
    doc = linker(doc)
    assert [e.kb_id_ for e in doc.ents] == ["", "D006333"]
    doc.ents = [Span(doc, e.start, e.end, label=e.label, kb_id="KEEP") for e in doc.ents]
    assert [e.kb_id_ for e in linker(doc).ents] == ["KEEP", "KEEP"]


def test_linker_saved_with_the_pipeline(nlp, kb, tmp_path):
    nlp.add_pipe("biobert_abbreviations")
    nlp.add_pipe("biobert_linker", config={"threshold": 0.5}).set_kb(kb)
    text = "nephrotic syndromes, primary and naloxone"
    ents = [("nephrotic syndromes, primary", "Disease"), ("naloxone", "Chemical")]
    expected = [e.kb_id_ for e in nlp.get_pipe("biobert_linker")(_with_ents(nlp, text, ents)).ents]
    assert expected == ["D009404", "D009270"]
    nlp.to_disk(tmp_path / "pipe")
    loaded = spacy.load(tmp_path / "pipe")
    assert loaded.pipe_names == ["biobert_abbreviations", "biobert_linker"]
    assert loaded.get_pipe("biobert_linker").cfg["threshold"] == 0.5
    got = [e.kb_id_ for e in loaded.get_pipe("biobert_linker")(_with_ents(loaded, text, ents)).ents]
    assert got == expected
    other = make_tokenizer_nlp("biomedical")
    other.add_pipe("biobert_linker").from_bytes(nlp.get_pipe("biobert_linker").to_bytes())
    linked = other.get_pipe("biobert_linker")(_with_ents(other, text, ents))
    assert [e.kb_id_ for e in linked.ents] == expected


def test_linker_initialize_from_examples_or_folder(nlp, pubtator, kb, tmp_path):
    linker = nlp.add_pipe("biobert_linker")
    docs = list(read_corpus(pubtator, nlp))
    nlp.initialize(lambda: [Example(nlp.make_doc(d.text), d) for d in docs])
    assert linker.kb.link("cocaine", "Chemical").kb_id == "D003042"
    assert linker.labels == ("Chemical", "Disease")
    kb.to_disk(tmp_path / "kb")
    other = make_tokenizer_nlp("biomedical")
    other.add_pipe("biobert_linker").initialize(kb=tmp_path / "kb")
    assert len(other.get_pipe("biobert_linker").kb) == len(kb)


# --- scoring ----------------------------------------------------------------------


def test_score_concepts_by_document_and_type():
    scores = score_concepts([
        ("1", {"Chemical": {"A", "B"}, "Disease": {"X"}}, {"Chemical": {"A", "C"}, "Disease": {"X"}}),
        ("2", {"Chemical": {"A"}}, {}),
    ])
    assert scores["per_type"]["Chemical"] == pytest.approx(
        {"p": 0.5, "r": 1 / 3, "f": 0.4, "tp": 1, "fp": 1, "fn": 2})
    assert scores["per_type"]["Disease"]["f"] == 1.0
    assert scores["micro"]["tp"] == 2 and scores["documents"] == 2


def test_gold_concepts_split_composites_and_drop_minus_one(nlp, pubtator):
    doc = list(read_corpus(pubtator, nlp))[1]
    assert gold_concepts(doc) == {"Disease": {"D014786", "D006311"}, "Chemical": {"D003042"}}


def test_evaluate_linking_gold_mentions(nlp, pubtator, kb):
    nlp.add_pipe("biobert_abbreviations")
    nlp.add_pipe("biobert_linker").set_kb(kb)
    examples = [Example(nlp.make_doc(d.text), d) for d in read_corpus(pubtator, nlp)]
    result = evaluate_linking(nlp, examples, gold_mentions=True)
    # every gold id is found; the one false positive is the misspelt "nalozone"
    # (gold id -1), which the n-gram similarity links to naloxone
    assert result["micro"]["r"] == 1.0 and result["micro"]["fp"] == 1
    assert result["per_type"]["Disease"]["f"] == 1.0
    accuracy = result["mention_accuracy"]["Chemical"]
    assert accuracy["mentions"] == 5 and accuracy["accuracy"] == accuracy["correct"] / 5
    # predicted mode with no ner: no entities, so no ids and zero recall
    assert evaluate_linking(nlp, examples)["micro"]["tp"] == 0
    with pytest.raises(ValueError, match="E408"):
        evaluate_linking(make_tokenizer_nlp(), examples)


# --- command line -------------------------------------------------------------------


def test_cli_build_kb_add_linker_evaluate(pubtator, tmp_path):
    tsv = tmp_path / "extra.tsv"
    tsv.write_text("tetrandrine\tD000077547\n", encoding="utf8")
    result = runner.invoke(app, ["build-kb", str(pubtator), "--tsv", str(tsv), "--tsv-label",
                                 "Chemical", "--output", str(tmp_path / "kb")])
    assert result.exit_code == 0, result.output
    kb = NameKB.load(tmp_path / "kb")
    assert kb.link("Tetrandrine", "Chemical").kb_id == "D000077547"
    base = make_tokenizer_nlp("biomedical")
    base.to_disk(tmp_path / "base")
    result = runner.invoke(app, ["add-linker", str(tmp_path / "base"), str(tmp_path / "kb"),
                                 str(tmp_path / "linked"), "--threshold", "0.6"])
    assert result.exit_code == 0, result.output
    linked = spacy.load(tmp_path / "linked")
    assert linked.pipe_names == ["biobert_abbreviations", "biobert_linker"]
    assert linked.get_pipe("biobert_linker").cfg["threshold"] == pytest.approx(0.6)
    out = tmp_path / "scores.json"
    result = runner.invoke(app, ["evaluate-linking", str(tmp_path / "linked"), str(pubtator),
                                 "--gold-mentions", "-o", str(out)])
    assert result.exit_code == 0, result.output
    import srsly

    scores = srsly.read_json(out)
    assert scores["per_type"]["Disease"]["f"] == 100.0 and scores["gold_mentions"] is True
    result = runner.invoke(app, ["evaluate-linking", "blank", str(pubtator)])
    assert result.exit_code == 1 and "no entity recogniser" in result.output
    result = runner.invoke(app, ["build-kb", "--output", str(tmp_path / "none")])
    assert result.exit_code == 1 and "Nothing to build" in result.output


# --- real corpora (slow) ---------------------------------------------------------------


@pytest.mark.slow
def test_abbreviations_on_real_abstracts(corpora_dir):
    nlp = make_tokenizer_nlp("biomedical")
    nlp.add_pipe("biobert_abbreviations")
    path = corpora_dir / "bc5cdr" / "CDR_TrainingSet.PubTator.txt"
    found = {}
    n_docs = n_pairs = 0
    for doc in read_corpus(path, nlp, limit=60):
        doc = nlp.get_pipe("biobert_abbreviations")(doc)
        n_docs += 1
        n_pairs += len(doc._.abbreviations)
        for short, long_form in doc._.abbreviations:
            found.setdefault((doc._.doc_id, short.text), long_form.text)
    assert n_docs == 60 and n_pairs > 80
    assert found[("7881871", "PAN")] == "puromycin aminonucleoside"
    assert found[("2924746", "CBZ")] == "Carbamazepine"
    assert found[("6888657", "DES")] == "diethylstilbestrol"
    assert found[("10526274", "NSCLC")] == "nonsmall cell lung carcinoma"
    # no long form starting with a function word, no Latin "i.e."
    assert not any(v.split()[0].lower() in {"and", "of", "the"} for v in found.values())
    assert not any(short in {"i.e.", "e.g."} for _, short in found)


@pytest.mark.slow
def test_dner_on_bc5cdr_dev_with_gold_mentions(corpora_dir):
    """KB from BC5CDR train only; the DNER document-level concept F1 on dev
    with gold mentions stays at the level the README reports."""
    c = corpora_dir / "bc5cdr"
    kb = NameKB()
    kb.add_records(iter_pubtator_records(c / "CDR_TrainingSet.PubTator.txt"))
    nlp = make_tokenizer_nlp("biomedical")
    nlp.add_pipe("biobert_abbreviations")
    nlp.add_pipe("biobert_linker").set_kb(kb.build())
    install_extensions()
    examples = [Example(nlp.make_doc(d.text), d)
                for d in read_corpus(c / "CDR_DevelopmentSet.PubTator.txt", nlp)]
    result = evaluate_linking(nlp, examples, gold_mentions=True)
    assert result["documents"] == 500
    assert result["per_type"]["Chemical"]["f"] > 0.78
    assert result["per_type"]["Disease"]["f"] > 0.75
    assert result["micro"]["p"] > 0.90
