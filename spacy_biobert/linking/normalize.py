"""Name normalisation for dictionary lookup and character n-grams.

`normalize_name` maps surface variants of a name to one key: case, Unicode
compatibility forms, Greek letters, punctuation and hyphenation, and simple
English plural morphology ("seizures" -> "seizure", "arteries" -> "artery"),
possessives ("Parkinson's disease" -> "parkinson disease", as MeSH writes
eponyms) and British spellings ("haemorrhage", "oedema", "tumour",
"sulphate", "anaemia" -> their American forms, which MeSH uses).
`bag_key` further drops function words and sorts the words ("cancer of the
breast" and "breast cancer" share a key); `squash_key` drops the spaces
("anti cancer" / "anticancer"). `char_ngrams` is the analyser of the
approximate (TF-IDF cosine) candidate generator.
"""

import re
import unicodedata
from functools import lru_cache
from typing import List

_GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon",
    "κ": "kappa", "λ": "lambda", "μ": "mu", "ω": "omega", "τ": "tau",
}
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_POSSESSIVE = re.compile(r"(?<=[A-Za-z])['\u2019]s\b")
# British -> American spelling, on whole lower-case words (first match wins).
_SPELLING = (
    (
        re.compile(r"^(h|leuk|an|sept|isch|ur|tox|glyc|lip|lact|kal|natr|calc|bacter|vir|phosphat)?aem"),
        r"\1em",
    ),
    (re.compile(r"aem(ia|ic)$"), r"em\1"),
    (re.compile(r"^(o|diarrh|amenorrh|dyspn|apn|gonorrh|seborrh|logorrh|steatorrh)oe"), r"\1e"),
    (re.compile(r"^(oe|foe)"), lambda m: m.group(1)[:-2] + "e"),
    (re.compile(r"rrhoea$"), "rrhea"),
    (re.compile(r"^(an|p|ph|orthop|c|gyn)ae"), r"\1e"),
    (re.compile(r"^aetiolog"), "etiolog"),
    (re.compile(r"sulph"), "sulf"),
    (re.compile(r"^(tum|col|behavi|hum|vap|lab|od|fav)our$"), r"\1or"),
    (re.compile(r"is(ation|ed|ing)$"), r"iz\1"),
    (re.compile(r"^(cent|fib|lit|met)re$"), r"\1er"),
    (re.compile(r"ogue$"), "og"),
)
# Words that never decide a concept; dropped for the bag-of-words key only.
_FUNCTION_WORDS = frozenset(
    "a an the of in on to and or with by for from at as its their".split()
)
# Words that look plural but are not (or whose singular would collide).
_NOT_PLURAL = frozenset(
    "diabetes herpes rabies measles mumps scabies rickets tetanus lupus virus "
    "status sepsis analysis paralysis psoriasis fibrosis stenosis thrombosis "
    "necrosis nephrosis cirrhosis sclerosis metastasis hypertrophies".split()
)


def singular(word: str) -> str:
    """A simple English singular for a lower-case word (no dictionary)."""
    if len(word) <= 3 or word in _NOT_PLURAL or not word.isalpha():
        return word
    if word.endswith(("ss", "us", "is", "os", "as")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses", "zes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


@lru_cache(maxsize=200_000)
def american(word: str) -> str:
    """The American spelling of a lower-case word where a rule knows one
    ("haemorrhage" -> "hemorrhage", "oedema" -> "edema", "tumour" -> "tumor")."""
    if not word.isalpha():
        return word
    for pattern, repl in _SPELLING:
        new = pattern.sub(repl, word, count=1)
        if new != word:
            return new
    return word


def normalize_name(text: str) -> str:
    """The normalised lookup key of a name: lower case, ASCII, possessive 's
    dropped, punctuation as spaces, American spelling, words singularised,
    single spaces. `""` for a name with no letter or digit."""
    text = "".join(_GREEK.get(ch, ch) for ch in text)
    text = _POSSESSIVE.sub("", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = _NON_ALNUM.split(text.lower())
    return " ".join(american(singular(w)) for w in words if w)


def bag_key(norm: str) -> str:
    """Sorted words of a normalised name without function words."""
    words = [w for w in norm.split() if w not in _FUNCTION_WORDS]
    return " ".join(sorted(words))


def squash_key(norm: str) -> str:
    """A normalised name without spaces."""
    return norm.replace(" ", "")


def char_ngrams(norm: str, n: int = 3) -> List[str]:
    """Character n-grams of a normalised name padded with a space on each
    side (so word starts and ends count), e.g. " as", "asp", ..."""
    padded = f" {norm} "
    if len(padded) <= n:
        return [padded]
    return [padded[i : i + n] for i in range(len(padded) - n + 1)]
