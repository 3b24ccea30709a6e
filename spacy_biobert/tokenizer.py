"""`spacy-biobert.BiomedicalTokenizer.v1`: spaCy's tokenizer for the
language (English by default) plus rules for biomedical text, so that gold
mentions fall on token boundaries:

- hyphens: between a letter and a digit (`thallium-201`, `COVID-19`), after
  a charge (`Na+-binding`) or a closing bracket (`(PAN)-induced`,
  `CaCl(2)-treated`), before a slash or plus (`iNOS-/-`), at the start or end
  of a token (`digitalis-` in "digitalis- and ...", `(-)-baclofen`), and runs
  of hyphens (`--`);
- slashes anywhere except between two digits (`acetate/3-hydroxybutyrate`,
  `Na+/K+`, `(+/-)`), so `1/2` stays one token;
- brackets and parentheses inside a token (`GABA(A)`, `[3H]spiperone`,
  `[Ca]o`, `5-HT(6)`);
- charges: `+` after a letter, digit or bracket (`Na+`, `Ca2+`, `K(+)`,
  `Mg+2`, `GSPE+drug`);
- a final period after an upper-case letter that follows a lower-case letter,
  digit or hyphen (`AmB.`, `PI3K.`, `F820A.`, `JAM-C.`, `NF-κB.`);
  single capitals (`vitamin E.`) are left alone, as they are initials in
  ordinary text;
- comparison signs, arrows and middle dots inside a token (`c.280G>A`,
  `reserpine>>fluoxetine`, `CTT→CCT`, `Hyp·Thy`), a comma between a
  digit and a word (`galectin-3,Gal-3C`) and a period between a word and a
  reference number (`noradrenaline.7`).

Ordinary words keep the default tokenization (tested). The rules live in the
Tokenizer's prefix/suffix/infix patterns, so `nlp.to_disk`/`spacy.load` keep
them; configs use:

    [nlp.tokenizer]
    @tokenizers = "spacy-biobert.BiomedicalTokenizer.v1"
"""

from typing import Callable

from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.util import (
    compile_infix_regex,
    compile_prefix_regex,
    compile_suffix_regex,
    registry,
)

_BRACKETS = r"\(\)\[\]\{\}"

BIOMEDICAL_PREFIXES = [
    r"-(?=[\-\(\)\[\]A-Za-z0-9])",  # (-)-baclofen -> ( - ) - baclofen
    r"/",
    r"\+(?=[/\-\)\]])",  # (+/-) and (+)-
]

BIOMEDICAL_SUFFIXES = [
    r"(?<=[A-Za-z0-9\)\]])-",  # digitalis- and ...
    r"(?<=[A-Za-z0-9\)\]])\+",  # Na+ Ca2+ K(+)
    r"(?<=[a-z0-9\-\u03b1-\u03c9][A-Z])\.",  # AmB. TdP. PI3K. F820A. JAM-C. NF-\u03baB.
    r"(?<=[a-z][A-Z][A-Z])\.",
    r"/",
]

BIOMEDICAL_INFIXES = [
    r"(?<=[A-Za-z])-(?=[0-9])",  # thallium-201
    r"(?<=[" + _BRACKETS + r"])-|-(?=[" + _BRACKETS + r"])",  # (PAN)-induced
    r"--+",
    r"(?<=\+)-(?=[A-Za-z0-9])",  # Na+-binding
    r"(?<=[^0-9])/|/(?=[^0-9])",  # acetate/3-hydroxybutyrate, Na+/K+
    r"(?<=[^\s])[" + _BRACKETS + r"]|[" + _BRACKETS + r"](?=[^\s])",  # GABA(A), [3H]x
    r"(?<=[A-Za-z0-9" + _BRACKETS + r"])\+",  # Na+-binding, Mg+2, GSPE+drug
    r"\+(?=[A-Za-z\-/])",
    r"(?<=[A-Za-z0-9])-(?=[/+])",  # iNOS-/- knockouts
    # Arg>Ser, CTT\u2192CCT, reserpine>>fluoxetine, Hyp\u00b7Thy\u2194Hyp*\u00b7Thy
    r"[<>=\u2192\u2194\u00b7]+(?=\S)|(?<=\S)[<>=\u2192\u2194\u00b7]+",
    r"(?<=[0-9]),(?=[A-Za-z]{2})",  # galectin-3,Gal-3C
    r"(?<=[a-z]{2})\.(?=[0-9])",  # noradrenaline.7 (reference numbers)
]


def build_biomedical_tokenizer(nlp: Language) -> Tokenizer:
    """A spaCy Tokenizer with the language's defaults plus the biomedical
    prefix, suffix and infix rules above."""
    defaults = nlp.Defaults
    prefixes = list(defaults.prefixes or []) + BIOMEDICAL_PREFIXES
    suffixes = BIOMEDICAL_SUFFIXES + list(defaults.suffixes or [])
    infixes = list(defaults.infixes or []) + BIOMEDICAL_INFIXES
    return Tokenizer(
        nlp.vocab,
        rules=defaults.tokenizer_exceptions,
        prefix_search=compile_prefix_regex(prefixes).search,
        suffix_search=compile_suffix_regex(suffixes).search,
        infix_finditer=compile_infix_regex(infixes).finditer,
        token_match=defaults.token_match,
        url_match=defaults.url_match,
    )


@registry.tokenizers("spacy-biobert.BiomedicalTokenizer.v1")
def create_biomedical_tokenizer() -> Callable[[Language], Tokenizer]:
    """Registered tokenizer factory (see the module docstring)."""

    def make_tokenizer(nlp: Language) -> Tokenizer:
        return build_biomedical_tokenizer(nlp)

    return make_tokenizer
