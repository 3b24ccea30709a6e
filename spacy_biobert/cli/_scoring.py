"""What the evaluation commands share: reading a gold corpus (any format,
through the registered readers) and printing P/R/F in percent (the
library's scores are fractions)."""

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from wasabi import msg

# The CORPUS argument and --format option of evaluate, evaluate-relations and
# evaluate-linking: any format a registered reader reads (corpora.readers.READERS).
GOLD_HELP = "Gold corpus: PubTator, BioC XML/JSON, JSONL or .spacy file, or ChemProt split folder"
GOLD_FORMAT_HELP = "auto (from the path), pubtator, bioc, chemprot, jsonl, spacy"


def read_gold(
    corpus: Path,
    nlp: Any,
    fmt: Optional[str] = None,
    *,
    limit: Optional[int] = None,
    label_map: Optional[Dict[str, str]] = None,
) -> List[Any]:
    """The Examples of a gold corpus in any supported format (`fmt` None or
    "auto": detected), read for `nlp`; a bad corpus exits with its message."""
    from ..corpora.errors import CorpusFormatError
    from ..corpora.readers import gold_corpus

    try:
        reader = gold_corpus(
            corpus, None if fmt in (None, "auto") else fmt, limit=limit, label_map=label_map
        )
        return list(reader(nlp))
    except (CorpusFormatError, FileNotFoundError, ValueError) as err:
        msg.fail(str(err), exits=1)
    return []  # not reached: msg.fail exits


def prf_table(
    rows: Sequence[Any], counts: Sequence[str] = ("tp", "fp", "fn"), first: str = "type"
) -> None:
    """Print (name, PRF dict in percent) rows: P, R, F1 with two decimals
    and the `counts` ("gold" = tp + fn, "pred" = tp + fp, or a key)."""

    def count(d: Mapping[str, Any], name: str) -> int:
        if name == "gold":
            return d["tp"] + d["fn"]
        if name == "pred":
            return d["tp"] + d["fp"]
        return d[name]

    table = [
        (name, *(f"{d[k]:.2f}" for k in "prf"), *(count(d, c) for c in counts))
        for name, d in rows
    ]
    msg.table(
        table,
        header=(first, "P", "R", "F1", *counts),
        divider=True,
        aligns=("l",) + ("r",) * (3 + len(counts)),
    )
