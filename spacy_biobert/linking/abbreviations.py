"""Abbreviation (short form / long form) detection: Schwartz & Hearst (2003).

The algorithm scispaCy's `AbbreviationDetector` uses, on token offsets of a
spaCy Doc, with these differences:

- the long form is matched against the document text itself (scispaCy
  re-joins tokens with single spaces and can be off by a token when a long
  form has no space before a hyphen or bracket);
- a parenthesis that holds more than the short form ("(PAN; 50 mg/kg)",
  "(TCDD, dioxin)") still defines it: the part before ";" or "," counts;
- the long form never reaches back across a sentence start, a bracket or a
  ";", so "... in rats. Puromycin aminonucleoside (PAN)" cannot swallow the
  previous sentence;
- a short form must have a letter, start with a letter or digit, and not be
  a statistic ("n = 5", "P < 0.05"), a citation year or "i.e.", "e.g.", ...;
- a long form does not start with a function word ("and", "of", ...).

Each definition is then propagated, like scispaCy, to every later and
earlier occurrence of the same short form (same token texts) in the Doc.
"""

import re
from typing import Dict, List, Optional, Tuple

from spacy.tokens import Doc, Span

# (short start, short end, long start, long end) in tokens.
AbbreviationOffsets = Tuple[int, int, int, int]

_MAX_PAREN_TOKENS = 10
_STATISTIC = re.compile(r"^\s*[A-Za-z]{1,3}\s*[=<>≤≥]")
_YEAR = re.compile(r"^(1[89]|20)\d\d[a-z]?$")
# Latin and other bracketed words that are not short forms.
_NOT_SHORT_FORMS = frozenset("i.e. i.e e.g. e.g ie eg vs vs. cf cf. etc etc. et al al. ca ca.".split())
# A long form does not start with a function word ("... and tranexamic acid").
_NOT_FIRST = frozenset("and or of the in on with to for by a an as at from that which".split())


def is_short_form(text: str) -> bool:
    """Schwartz–Hearst short form test (with the extra filters of the module
    docstring): 2 to 10 characters, at most two words, a letter in it, and a
    letter or digit first."""
    text = text.strip()
    if not (2 <= len(text) <= 10) or len(text.split()) > 2:
        return False
    if not text[0].isalnum() or not any(ch.isalpha() for ch in text):
        return False
    if _STATISTIC.match(text) or _YEAR.match(text) or text.lower() in _NOT_SHORT_FORMS:
        return False
    return True


def match_long_form(long_text: str, short_text: str) -> Optional[int]:
    """Schwartz–Hearst best long form: the character offset in `long_text` at
    which the shortest suffix of `long_text` that contains the short form's
    letters and digits in order starts, the first one at the start of a word.
    None when there is no such suffix."""
    s_i = len(short_text) - 1
    l_i = len(long_text) - 1
    while s_i >= 0:
        ch = short_text[s_i].lower()
        if not ch.isalnum():
            s_i -= 1
            continue
        while l_i >= 0 and (
            long_text[l_i].lower() != ch
            or (s_i == 0 and l_i > 0 and long_text[l_i - 1].isalnum())
        ):
            l_i -= 1
        if l_i < 0:
            return None
        l_i -= 1
        s_i -= 1
    # Start of the word that holds the matched first character.
    start = l_i + 1
    while start > 0 and long_text[start - 1].isalnum():
        start -= 1
    return start


def _window_start(doc: Doc, end: int, max_words: int) -> int:
    """First token of the long-form window that ends before token `end`: at
    most `max_words` tokens back, never across a sentence start, a bracket or
    a ';'."""
    start = max(end - max_words, 0)
    sentences = doc.has_annotation("SENT_START")
    for i in range(end - 1, start - 1, -1):
        token = doc[i]
        if token.text in {"(", ")", "[", "]", ";"}:
            return i + 1
        if sentences and token.is_sent_start:
            return i
    return start


def _short_form_tokens(doc: Doc, start: int, end: int) -> Tuple[int, int]:
    """The tokens of the parenthesis content up to the first ';' or ','."""
    for i in range(start, end):
        if doc[i].text in {";", ","}:
            return start, i
    return start, end


def _char_span_to_tokens(doc: Doc, start_char: int, end_char: int) -> Optional[Span]:
    span = doc.char_span(start_char, end_char, alignment_mode="expand")
    return span if span is not None and len(span) else None


def _define(doc: Doc, long_tokens: Span, short: Span) -> Optional[Span]:
    if not len(long_tokens) or not is_short_form(short.text):
        return None
    text = doc.text[long_tokens.start_char : long_tokens.end_char]
    offset = match_long_form(text, short.text)
    if offset is None:
        return None
    long_span = _char_span_to_tokens(
        doc, long_tokens.start_char + offset, long_tokens.end_char
    )
    if long_span is None or len(long_span.text) <= len(short.text):
        return None
    if long_span[0].lower_ in _NOT_FIRST:
        return None
    # A long form is more than the short form plus punctuation.
    if long_span.text.replace(" ", "").lower() == short.text.replace(" ", "").lower():
        return None
    return long_span


def find_definitions(doc: Doc) -> List[Tuple[Span, Span]]:
    """(short form, long form) pairs where a short form is defined:
    "long form (SF)" and, less often, "SF (long form)"."""
    out: List[Tuple[Span, Span]] = []
    n = len(doc)
    i = 0
    while i < n:
        if doc[i].text != "(":
            i += 1
            continue
        close = None
        for j in range(i + 1, min(i + 1 + _MAX_PAREN_TOKENS, n)):
            if doc[j].text == "(":
                break
            if doc[j].text == ")":
                close = j
                break
        if close is None or close == i + 1 or i == 0:
            i += 1
            continue
        s_start, s_end = _short_form_tokens(doc, i + 1, close)
        inside = doc[s_start:s_end]
        if s_end > s_start and len(inside) <= 3 and is_short_form(inside.text):
            # long form (SF)
            n_chars = len(inside.text)
            max_words = min(n_chars + 5, n_chars * 2)
            window = doc[_window_start(doc, i, max_words) : i]
            long_span = _define(doc, window, inside)
            if long_span is not None:
                out.append((inside, long_span))
        elif close - (i + 1) > 2:
            # SF (long form): the word before the bracket is the short form.
            short = doc[i - 1 : i]
            long_span = _define(doc, doc[i + 1 : close], short)
            if long_span is not None:
                out.append((short, long_span))
        i = close + 1
    return out


def find_abbreviations(doc: Doc) -> List[AbbreviationOffsets]:
    """Every occurrence of every defined short form, with the long form of its
    definition: [(short start, short end, long start, long end)] in tokens,
    sorted by position. The first definition of a short form wins; a short
    form inside its own long form is not an occurrence."""
    definitions: Dict[Tuple[str, ...], Span] = {}
    for short, long_span in find_definitions(doc):
        definitions.setdefault(tuple(t.text for t in short), long_span)
    out: List[AbbreviationOffsets] = []
    if not definitions:
        return out
    by_first: Dict[str, List[Tuple[str, ...]]] = {}
    for key in definitions:
        by_first.setdefault(key[0], []).append(key)
    for i, token in enumerate(doc):
        for key in by_first.get(token.text, ()):
            end = i + len(key)
            if end > len(doc) or tuple(t.text for t in doc[i:end]) != key:
                continue
            long_span = definitions[key]
            if long_span.start <= i < long_span.end:
                continue
            out.append((i, end, long_span.start, long_span.end))
    return sorted(set(out))
