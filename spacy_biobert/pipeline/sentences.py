"""`biobert_sentences`: sentence boundaries on raw text by the rule the corpus
readers use (`spacy_biobert.corpora.sentences`), so a pipeline that bounds
relation candidates by sentences (`EntityPairs.v1` with `distance_unit =
"sentences"`) sees the same sentences end to end as it was trained on.

Every passage starts a sentence when the Doc carries its passages (Docs of
`annotate`, the service and the corpus readers), and a sentence never starts
inside an entity or a span of a span group (put it after the entity
recognisers). A Doc that already has sentence boundaries is left as it is.
"""

from spacy.language import Language
from spacy.tokens import Doc

from ..corpora.sentences import set_sentences
from ..extensions import SOURCE_KEY


@Language.component("biobert_sentences", assigns=["token.is_sent_start"])
def biobert_sentences(doc: Doc) -> Doc:
    if doc.has_annotation("SENT_START"):
        return doc
    source = doc.user_data.get(SOURCE_KEY) or {}
    passage_starts = [int(p[1]) for p in source.get("passages") or []]
    protected = list(doc.ents) + [span for group in doc.spans.values() for span in group]
    set_sentences(doc, passage_starts, protected)
    return doc
