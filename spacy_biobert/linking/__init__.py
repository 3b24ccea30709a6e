"""Entity normalisation: abbreviation detection and a name -> id knowledge
base (its document-level scoring is `spacy_biobert.evaluation.linking`)."""
from .abbreviations import find_abbreviations, find_definitions, is_short_form, match_long_form
from .kb import Candidate, NameKB
from .normalize import normalize_name

__all__ = [
    "find_abbreviations",
    "find_definitions",
    "is_short_form",
    "match_long_form",
    "Candidate",
    "NameKB",
    "normalize_name",
]
