"""Entity normalisation: abbreviation detection, a name -> id knowledge base
and document-level concept scoring (BioCreative V DNER style)."""
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
