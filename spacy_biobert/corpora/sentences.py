"""The one sentence splitter: where sentences start in a text, by rule.

The corpus readers set sentence boundaries on Docs with it
(`set_sentences`, never inside a mention), and pretraining splits its
text with it (`split_sentences`), so both cut a text in the same places.

A sentence ends at [.!?] (plus closing quotes/brackets) followed by
whitespace and an upper-case letter, digit or opening bracket, unless the word
before is a common abbreviation (e.g., i.e., vs., Fig., al.) or an initial.
"""

import re
from typing import Iterable, Iterator, List, Sequence

import numpy
from spacy.attrs import SENT_START
from spacy.tokens import Doc, Span

_SENT_END = re.compile(r"[.!?][\"')\]]*(?=\s+[\"'(\[]*[A-Z0-9])")
_NO_SPLIT_BEFORE = re.compile(
    r"(?:\b(?:e\.g|i\.e|vs|cf|al|approx|ca|Fig|Figs|Dr|Drs|Mr|Mrs|Ms|Prof|St|No|Nos|Ref|Eq|"
    r"resp|viz|sp|spp|var|[A-Z]))$"
)


def sentence_starts(text: str) -> Iterator[int]:
    """The character offset of each sentence start after the first (the
    first non-space character after a sentence end), in order."""
    for m in _SENT_END.finditer(text):
        if _NO_SPLIT_BEFORE.search(text[max(0, m.start() - 8) : m.start()]):
            continue
        j = m.end()
        while j < len(text) and text[j].isspace():
            j += 1
        yield j


def split_sentences(text: str) -> List[str]:
    """The sentences of `text` (see the module docs), each stripped and with
    runs of whitespace made one space; empty pieces are dropped."""
    starts = [0, *sentence_starts(text), len(text)]
    pieces = (text[a:b].strip() for a, b in zip(starts, starts[1:]))
    return [" ".join(p.split()) for p in pieces if p]


def set_sentences(
    doc: Doc, passage_starts: Iterable[int], protected: Sequence[Span]
) -> None:
    """Rule-based sentence boundaries: every passage starts a sentence, and so
    does every start the one sentence splitter finds (`sentences.sentence_starts`).
    Never inside a mention. Every token gets is_sent_start set, so DocBin
    keeps them."""
    if len(doc) == 0:
        return
    text = doc.text
    starts = set()
    for offset in passage_starts:
        starts.add(offset)
    starts.update(sentence_starts(text))
    inside = set()
    for span in protected:
        inside.update(range(span.start + 1, span.end))
    # 1 = starts a sentence, -1 = does not; set in one call (the per-token
    # `is_sent_start` setter is linear in the document: quadratic in all)
    flags = numpy.full((len(doc), 1), -1, dtype="int64")
    flags[0, 0] = 1
    for token in doc:
        if token.idx in starts and token.i not in inside:
            flags[token.i, 0] = 1
    doc.from_array([SENT_START], flags.astype("uint64"))
