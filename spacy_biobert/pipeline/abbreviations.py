"""`biobert_abbreviations`: short form / long form pairs (Schwartz & Hearst).

    nlp.add_pipe("biobert_abbreviations")      # after ner, before biobert_linker
    doc = nlp("... puromycin aminonucleoside (PAN) ... PAN nephrosis ...")
    doc._.abbreviations    # [(PAN, puromycin aminonucleoside), (PAN, puromycin aminonucleoside)]
    span._.long_form       # the long form of any span whose text is a detected short form

Every occurrence of a defined short form is listed (see
`spacy_biobert.linking.abbreviations`). The pairs are stored as token offsets
in `doc.user_data`, so they survive `DocBin(store_user_data=True)`.
`biobert_linker` links a short-form entity through its long form.
"""

from spacy.language import Language
from spacy.tokens import Doc

from ..extensions import ABBREVIATIONS_KEY, install_extensions
from ..linking.abbreviations import find_abbreviations


@Language.factory(
    "biobert_abbreviations",
    assigns=["doc._.abbreviations"],
    default_config={},
)
def make_abbreviation_detector(nlp: Language, name: str) -> "AbbreviationDetector":
    """Schwartz–Hearst abbreviation detection; no settings, no weights."""
    return AbbreviationDetector(name)


class AbbreviationDetector:
    def __init__(self, name: str = "biobert_abbreviations"):
        install_extensions()
        self.name = name

    def __call__(self, doc: Doc) -> Doc:
        doc.user_data[ABBREVIATIONS_KEY] = [list(x) for x in find_abbreviations(doc)]
        return doc
