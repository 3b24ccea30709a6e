"""The one sentence splitter: where sentences start in a text, by rule.

The corpus readers set sentence boundaries on Docs with it
(`_base.set_sentences`, never inside a mention), and pretraining splits its
text with it (`split_sentences`), so both cut a text in the same places.

A sentence ends at [.!?] (plus closing quotes/brackets) followed by
whitespace and an upper-case letter, digit or opening bracket, unless the word
before is a common abbreviation (e.g., i.e., vs., Fig., al.) or an initial.
"""

import re
from typing import Iterator, List

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
