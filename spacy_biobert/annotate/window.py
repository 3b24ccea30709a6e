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
- `load_annotation_pipeline` loads the pipeline the way every backend's worker
  does, optionally quantized or set to a precision.
"""

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Optional, Union, cast

from spacy.tokens import Doc

from ..errors import Errors
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


def load_annotation_pipeline(
    nlp: Any, quantize: Optional[str] = None, precision: Optional[str] = None
) -> Any:
    """`nlp` itself, or the pipeline it names (a package name or a folder,
    loaded with `models.base_models.load_pipeline`), quantized in place when
    `quantize` is "int8" (which runs fp32: "bf16" with it is E031, "auto"
    means fp32), else with its transformers set to `precision` when given
    (`spacy_biobert.precision.set_precision`; None keeps the pipeline's own)."""
    from ..precision import check_precision, set_precision

    if precision is not None:
        check_precision(precision)
        if quantize is not None and precision == "bf16":
            raise ValueError(Errors.E031)
    if isinstance(nlp, (str, Path)):
        from ..models.base_models import load_pipeline

        nlp = load_pipeline(nlp)
    if quantize is not None:
        quantize_pipeline(nlp, quantize)
    elif precision is not None:
        set_precision(nlp, precision, where="--precision")
    return nlp


def _inference_mode() -> Any:
    # Only when the pipeline already imported torch: a pipeline without a
    # transformer never pays for importing it.
    torch = sys.modules.get("torch")
    return torch.inference_mode() if torch is not None else contextlib.nullcontext()


def make_doc(nlp: Any, rec: Record) -> Doc:
    """The unannotated Doc of `rec`: `nlp.make_doc` of its text, with its id
    (`doc._.doc_id`) and passages (what the writers need to write it back)."""
    from ..extensions import SOURCE_KEY, install_extensions

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


@dataclass
class WindowPlan:
    """A window cut into the `nlp.pipe` batches `annotate_window` runs.
    `results[pos]` is the result of `items[pos]` (the rejects already; None
    until its batch ran); `batches` holds the positions of each batch's
    documents, in the order they run (by length)."""

    items: List[Item]
    results: List[Optional[Result]]
    batches: List[List[int]]


def plan_window(items: List[Item], *, batch_size: int, max_length: Optional[int]) -> WindowPlan:
    """The batches of a window: its documents (a document longer than
    `max_length`, the pipeline's `nlp.max_length`, is rejected) sorted by
    length and cut into batches of at most `batch_size` documents and
    `BATCH_CHARS` characters. The batches depend only on the window, so any
    process running them gives the same output."""
    results: List[Optional[Result]] = [None] * len(items)
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
    batches = [[todo[i] for i in batch] for batch in _batches(lengths, order, batch_size, BATCH_CHARS)]
    return WindowPlan(items, results, batches)


def annotate_batch(
    nlp: Any,
    records: List[Record],
    *,
    output_format: str,
    threshold: float,
    on_doc: Optional[Callable[[], None]] = None,
) -> List[Result]:
    """One `nlp.pipe` batch (a batch of `plan_window`): each document
    formatted as it leaves the pipeline, always with the BioC JSON separator
    (`window_results` drops it from the output's first document); a document
    the format cannot represent is rejected. Under `torch.inference_mode` and
    inside `nlp.memory_zone()` (the caller's, when it opened one)."""
    from ..extensions import predicted_relations

    out: List[Result] = []
    with _inference_mode(), _memory_zone(nlp):
        docs = nlp.pipe((make_doc(nlp, rec) for rec in records), batch_size=max(1, len(records)))
        for rec, doc in zip(records, docs):
            try:
                chunk = format_doc(doc, output_format, threshold=threshold, first=False)
            except ValueError as err:
                reason = f"cannot be written as {output_format}: {err}"
                out.append(Reject(rec.index, rec.id, reason, "unwritable"))
            else:
                n_rel = len(predicted_relations(doc, threshold))
                out.append(Annotated(rec.index, rec.id, chunk, len(doc.ents), n_rel))
            if on_doc is not None:
                on_doc()
    return out


def window_results(plan: WindowPlan, *, output_format: str, first: bool) -> List[Result]:
    """A planned window's results in input order, once every batch ran;
    `first`: no document has been written to the output yet (the BioC JSON
    separator of the first document is dropped)."""
    out: List[Result] = []
    for res in plan.results:
        if res is None:
            raise RuntimeError("window_results: a batch of the window has not run")
        if isinstance(res, Annotated):
            if first and output_format == "bioc-json" and res.chunk.startswith(BIOC_JSON_SEPARATOR):
                res.chunk = res.chunk[len(BIOC_JSON_SEPARATOR) :]
            first = False
        out.append(res)
    return out


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
    max_length = getattr(nlp, "max_length", None)
    plan = plan_window(items, batch_size=batch_size, max_length=max_length)
    with _inference_mode(), _memory_zone(nlp):
        for batch in plan.batches:
            records = [cast(Record, items[pos]) for pos in batch]
            results = annotate_batch(
                nlp, records, output_format=output_format, threshold=threshold, on_doc=on_doc
            )
            for pos, res in zip(batch, results):
                plan.results[pos] = res
    return window_results(plan, output_format=output_format, first=first)


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
    "WindowPlan",
    "annotate_batch",
    "annotate_window",
    "load_annotation_pipeline",
    "make_doc",
    "plan_window",
    "window_results",
    "windows",
]
