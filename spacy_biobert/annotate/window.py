"""The unit of work of `annotate`: a window of input items through the
pipeline, used by every backend (and by the service).

- `windows` cuts the input into windows of `window` items (documents and
  rejects), fewer when their texts reach `WINDOW_CHARS` characters; where a
  window ends depends only on the items from its start on, so a resumed run
  and the Ray backend's shards cut the input at the same places.
- `annotate_window` sorts a window's documents by length, runs them through
  `nlp.pipe` in batches of at most `batch_size` documents and `BATCH_CHARS`
  characters (a longer document alone; under `torch.inference_mode` when the
  pipeline uses torch, and inside `nlp.memory_zone()`, so that strings of
  unseen words do not pile up in the vocab), formats each document as soon as
  it leaves the pipeline (its Doc and transformer output are freed then), and
  returns the output chunks and rejects in input order. A document longer
  than `nlp.max_length` is rejected.
- `load_annotation_pipeline` loads (and optionally quantizes) the pipeline the
  way every backend's worker does.
"""

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Union

from spacy.tokens import Doc

from .inputs import Item, Record, Reject
from .outputs import BIOC_JSON_SEPARATOR, format_doc
from .quantize import quantize_pipeline

# Most characters one `nlp.pipe` batch holds together (a longer document goes
# alone): the transformer output of a batch stays in memory until the batch has
# passed every component.
BATCH_CHARS = 200_000
# A window also ends when its documents hold this many characters: a window's
# texts and output chunks are in memory together (1,000 abstracts hold about
# 1.5 million).
WINDOW_CHARS = 5_000_000


@dataclass
class Annotated:
    """One annotated document: its output chunk and counts."""

    index: int
    id: str
    chunk: str
    entities: int
    relations: int


Result = Union[Annotated, Reject]


def load_annotation_pipeline(nlp: Any, quantize: Optional[str] = None) -> Any:
    """`nlp` itself, or the pipeline it names (a package name or a folder,
    loaded with `models.base_models.load_pipeline`), quantized in place when
    `quantize` is "int8"."""
    if isinstance(nlp, (str, Path)):
        from ..models.base_models import load_pipeline

        nlp = load_pipeline(nlp)
    if quantize is not None:
        quantize_pipeline(nlp, quantize)
    return nlp


def _inference_mode() -> Any:
    # Only when the pipeline already imported torch: a pipeline without a
    # transformer never pays for importing it.
    torch = sys.modules.get("torch")
    return torch.inference_mode() if torch is not None else contextlib.nullcontext()


def make_doc(nlp: Any, rec: Record) -> Doc:
    """The unannotated Doc of `rec`: `nlp.make_doc` of its text, with its id
    (`doc._.doc_id`) and passages (what the writers need to write it back)."""
    from ..corpora._base import SOURCE_KEY
    from ..extensions import install_extensions

    install_extensions()
    doc = nlp.make_doc(rec.text)
    doc._.doc_id = rec.id
    doc.user_data[SOURCE_KEY] = {
        "format": "annotate",
        "passages": [[t, o, len(x)] for t, o, x in rec.passages or [("text", 0, rec.text)]],
    }
    return doc


def _memory_zone(nlp: Any) -> Any:
    """`nlp.memory_zone()` (spaCy >= 3.8): strings and lexemes first seen
    inside it are dropped at its end, so the vocab does not grow with every
    unseen word of a long run or a long-lived service. Docs made inside must
    not be used after it."""
    zone = getattr(nlp, "memory_zone", None)
    if zone is None or getattr(nlp.vocab, "in_memory_zone", False):
        return contextlib.nullcontext()
    return zone()


def _batches(lengths: List[int], order: List[int], batch_size: int, max_chars: int) -> Iterator[List[int]]:
    """`order` cut into batches of at most `batch_size` documents and
    `max_chars` characters (a longer document alone)."""
    batch: List[int] = []
    size = 0
    for i in order:
        if batch and (len(batch) >= batch_size or size + lengths[i] > max_chars):
            yield batch
            batch, size = [], 0
        batch.append(i)
        size += lengths[i]
    if batch:
        yield batch


def annotate_window(
    nlp: Any,
    items: List[Item],
    *,
    output_format: str = "jsonl",
    threshold: float = 0.5,
    batch_size: int = 64,
    first: bool = True,
    on_doc: Optional[Callable[[], None]] = None,
) -> List[Result]:
    """Annotate one window of input items: documents sorted by length, run
    through `nlp.pipe` in batches of at most `batch_size` documents and
    `BATCH_CHARS` characters inside `nlp.memory_zone()`, each formatted as it
    comes out; returned in input order with the rejects (including documents
    longer than `nlp.max_length` and documents the output format cannot
    represent). `first`: no document has been written to the output yet
    (BioC JSON separators)."""
    from ..corpora._base import predicted_relations

    max_length = getattr(nlp, "max_length", None)
    results: Dict[int, Result] = {}
    todo: List[int] = []  # positions in `items` of the documents to annotate
    for pos, it in enumerate(items):
        if isinstance(it, Reject):
            results[pos] = it
        elif isinstance(max_length, int) and len(it.text) > max_length:
            reason = (
                f"text of {len(it.text)} characters is over the pipeline's nlp.max_length "
                f"{max_length}"
            )
            results[pos] = Reject(it.index, it.id, reason, "too-long")
        else:
            todo.append(pos)
    lengths = [len(items[pos].text) for pos in todo]
    order = sorted(range(len(todo)), key=lambda i: lengths[i])
    with _inference_mode(), _memory_zone(nlp):
        for batch in _batches(lengths, order, batch_size, BATCH_CHARS):
            recs = [items[todo[i]] for i in batch]
            docs = nlp.pipe((make_doc(nlp, rec) for rec in recs), batch_size=len(recs))
            for i, rec, doc in zip(batch, recs, docs):
                try:
                    # Always with the BioC JSON separator; dropped below for the first document.
                    chunk = format_doc(doc, output_format, threshold=threshold, first=False)
                except ValueError as err:
                    reason = f"cannot be written as {output_format}: {err}"
                    results[todo[i]] = Reject(rec.index, rec.id, reason, "unwritable")
                else:
                    n_rel = len(predicted_relations(doc, threshold))
                    results[todo[i]] = Annotated(rec.index, rec.id, chunk, len(doc.ents), n_rel)
                if on_doc is not None:
                    on_doc()
    out: List[Result] = []
    for pos in range(len(items)):
        res = results.pop(pos)
        if isinstance(res, Annotated):
            if first and output_format == "bioc-json" and res.chunk.startswith(BIOC_JSON_SEPARATOR):
                res.chunk = res.chunk[len(BIOC_JSON_SEPARATOR) :]
            first = False
        out.append(res)
    return out


def windows(items: Iterable[Item], size: int, max_chars: Optional[int] = None) -> Iterator[List[Item]]:
    """Consecutive windows of at most `size` items whose documents hold at
    most `max_chars` (default `WINDOW_CHARS`) characters together (a longer
    document alone). Where a window ends depends only on the items from its
    start on, so a run resumed at a window boundary, and the Ray backend's
    shards, cut the input at the same places."""
    limit = WINDOW_CHARS if max_chars is None else max_chars
    window: List[Item] = []
    chars = 0
    for item in items:
        n = len(item.text) if isinstance(item, Record) else 0
        if window and (len(window) >= size or chars + n > limit):
            yield window
            window, chars = [], 0
        window.append(item)
        chars += n
    if window:
        yield window


__all__ = [
    "BATCH_CHARS",
    "WINDOW_CHARS",
    "Annotated",
    "Result",
    "annotate_window",
    "load_annotation_pipeline",
    "make_doc",
    "windows",
]
