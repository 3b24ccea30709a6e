import pytest
import spacy
from spacy.lang.en import English

from spacy_biobert.tokenizer import create_biomedical_tokenizer

ORDINARY = [
    "The well-known state-of-the-art method, e.g. in the U.S., didn't work.",
    "Dr. Smith saw 20% of patients at 5 p.m. on Jan. 3rd, i.e. 1/2 of them and/or "
    "relatives.",
    "Visit https://example.com/a/b?x=1 or mail info@example.org :-) ;)",
    'A.B.C. co-operate re-evaluate follow-up long-term 3.5-fold mg/kg $10 C++ "quoted".',
    "It was a non-smoker's self-reported 2-year follow-up (n = 12) [see above] {braced}.",
    "vs. approx. Fig. 2a x-ray T-cell B-cells up-regulated 10 mg/kg/day.",
    "I can't believe they'd gone; we'll see what's next... OK?",
]

BIOMEDICAL = [
    ("[3H]spiperone", ["[", "3H", "]", "spiperone"]),
    ("(-)-baclofen", ["(", "-", ")", "-", "baclofen"]),
    ("(+/-)-PG-9", ["(", "+", "/", "-", ")", "-", "PG", "-", "9"]),
    ("Na+/K+-ATPase", ["Na", "+", "/", "K", "+", "-", "ATPase"]),
    ("Ca2+", ["Ca2", "+"]),
    ("K(+)", ["K", "(", "+", ")"]),
    ("GABA(A)", ["GABA", "(", "A", ")"]),
    ("[Ca]o", ["[", "Ca", "]", "o"]),
    ("thallium-201", ["thallium", "-", "201"]),
    ("CaCl(2)-treated", ["CaCl", "(", "2", ")", "-", "treated"]),
    ("(PAN)-induced", ["(", "PAN", ")", "-", "induced"]),
    ("acetate/3-hydroxybutyrate", ["acetate", "/", "3", "-", "hydroxybutyrate"]),
    ("digitalis- and", ["digitalis", "-", "and"]),
    ("with AmB.", ["with", "AmB", "."]),
    ("GSPE+drug", ["GSPE", "+", "drug"]),
]


@pytest.fixture(scope="module")
def default_nlp():
    return spacy.blank("en")


@pytest.fixture(scope="module")
def bio_nlp():
    return English.from_config(
        {"nlp": {"tokenizer": {"@tokenizers": "spacy-biobert.BiomedicalTokenizer.v1"}}}
    )


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_unchanged(default_nlp, bio_nlp, text):
    assert [t.text for t in bio_nlp(text)] == [t.text for t in default_nlp(text)]


@pytest.mark.parametrize("text,tokens", BIOMEDICAL)
def test_biomedical_splits(bio_nlp, text, tokens):
    assert [t.text for t in bio_nlp(text)] == tokens


def test_registered_function_builds_tokenizer(default_nlp):
    tokenizer = create_biomedical_tokenizer()(default_nlp)
    assert [t.text for t in tokenizer("Na+")] == ["Na", "+"]


def test_tokenizer_survives_to_disk(bio_nlp, tmp_path):
    bio_nlp.to_disk(tmp_path / "nlp")
    nlp2 = spacy.load(tmp_path / "nlp")
    text = "[3H]spiperone and Na+/K+-ATPase in (PAN)-induced injury"
    assert [t.text for t in nlp2(text)] == [t.text for t in bio_nlp(text)]
    assert (
        nlp2.config["nlp"]["tokenizer"]["@tokenizers"]
        == "spacy-biobert.BiomedicalTokenizer.v1"
    )
