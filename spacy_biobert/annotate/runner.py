"""Annotate a stream of documents with a pipeline, with flat memory, input
order kept, atomic output and resume.

- The input is read in windows of `window` items (documents and rejects),
  fewer when their texts reach `WINDOW_CHARS` characters;
  inside a window the documents are sorted by length, run through
  `nlp.pipe` in batches of at most `batch_size` documents and `BATCH_CHARS`
  characters (a longer document alone; under `torch.inference_mode` when the
  pipeline uses torch, and inside `nlp.memory_zone()`, so that strings of
  unseen words do not pile up in the vocab), each document formatted as soon
  as it leaves the pipeline (its Doc and transformer output are freed then),
  and the output chunks put back in input order. Only one window is in memory
  at a time. A document longer than `nlp.max_length` is rejected.
- `annotate_window` is that step as a plain function (items in, output
  chunks and rejects out, in input order): a distributed backend maps it over
  windows.
- Output goes to `OUTPUT.partial` and rejects to `OUTPUT.rejects.jsonl.partial`;
  the progress file `OUTPUT.progress.json` (written atomically) is written
  before them; after each window both are flushed and fsynced, then the
  progress file records how many input items are done and the byte size of
  both partial files. It also holds the settings and a fingerprint of the
  input (`input_fingerprint`). At the end the partial
  files are renamed (`os.replace`) to `OUTPUT` and `OUTPUT.rejects.jsonl` and
  the progress file is removed.
- `resume=True` truncates the partial files to the recorded sizes, skips the
  recorded number of input items and goes on: the final files are
  byte-identical to those of an uninterrupted run. It refuses, with a coded
  error, other settings (E303), a changed input (E313), partial files shorter
  than recorded (E305), and a missing, unreadable or foreign progress file
  next to partial output (E312): it never silently starts again over output
  it cannot account for.
"""

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Union

from spacy.tokens import Doc

from ..errors import Errors
from .inputs import (
    DEFAULT_MAX_CHARS,
    INPUT_FORMATS,
    Item,
    Record,
    Reject,
    detect_input_format,
    iter_input,
)
from .outputs import (
    BIOC_JSON_SEPARATOR,
    check_output_format,
    detect_output_format,
    footer,
    format_doc,
    header,
)
from .quantize import check_quantize_mode, quantize_pipeline

PROGRESS_VERSION = 2
BACKENDS = ("local", "ray")
# Most characters one `nlp.pipe` batch holds together (a longer document goes
# alone): the transformer output of a batch stays in memory until the batch has
# passed every component.
BATCH_CHARS = 200_000
# A window also ends when its documents hold this many characters: a window's
# texts and output chunks are in memory together (1,000 abstracts hold about
# 1.5 million).
WINDOW_CHARS = 5_000_000
# The input fingerprint hashes this much of the start and of the end of a file.
FINGERPRINT_BYTES = 1 << 20
_PROGRESS_COUNTS = ("done", "output_bytes", "rejects_bytes", "documents", "rejected", "entities",
                    "relations")


@dataclass
class Annotated:
    """One annotated document: its output chunk and counts."""

    index: int
    id: str
    chunk: str
    entities: int
    relations: int


@dataclass
class AnnotateStats:
    """Totals of a run (documents, rejected, entities, relations: over the
    whole output, resumed part included; processed and seconds: this run)."""

    documents: int = 0
    rejected: int = 0
    entities: int = 0
    relations: int = 0
    resumed_from: int = 0
    processed: int = 0
    seconds: float = 0.0
    output: str = ""
    rejects: str = ""
    reject_reasons: Dict[str, int] = field(default_factory=dict)

    @property
    def docs_per_s(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


@dataclass
class OutputPaths:
    output: Path
    partial: Path
    rejects: Path
    rejects_partial: Path
    progress: Path
    shards: Path  # the Ray backend's work folder

    @classmethod
    def for_output(cls, output: Union[str, Path]) -> "OutputPaths":
        out = Path(output)
        return cls(
            output=out,
            partial=Path(f"{out}.partial"),
            rejects=Path(f"{out}.rejects.jsonl"),
            rejects_partial=Path(f"{out}.rejects.jsonl.partial"),
            progress=Path(f"{out}.progress.json"),
            shards=Path(f"{out}.shards"),
        )


def _inference_mode() -> Any:
    # Only when the pipeline already imported torch: a pipeline without a
    # transformer never pays for importing it.
    torch = sys.modules.get("torch")
    return torch.inference_mode() if torch is not None else contextlib.nullcontext()


def _make_doc(nlp: Any, rec: Record) -> Doc:
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
) -> List[Union[Annotated, Reject]]:
    """Annotate one window of input items: documents sorted by length, run
    through `nlp.pipe` in batches of at most `batch_size` documents and
    `BATCH_CHARS` characters inside `nlp.memory_zone()`, each formatted as it
    comes out; returned in input order with the rejects (including documents
    longer than `nlp.max_length` and documents the output format cannot
    represent). `first`: no document has been written to the output yet
    (BioC JSON separators)."""
    from ..corpora._base import predicted_relations

    max_length = getattr(nlp, "max_length", None)
    results: Dict[int, Union[Annotated, Reject]] = {}
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
            docs = nlp.pipe((_make_doc(nlp, rec) for rec in recs), batch_size=len(recs))
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
    out: List[Union[Annotated, Reject]] = []
    for pos in range(len(items)):
        res = results.pop(pos)
        if isinstance(res, Annotated):
            if first and output_format == "bioc-json" and res.chunk.startswith(BIOC_JSON_SEPARATOR):
                res.chunk = res.chunk[len(BIOC_JSON_SEPARATOR) :]
            first = False
        out.append(res)
    return out


def _write_results(
    results: List[Union[Annotated, Reject]],
    fmt: str,
    stats: AnnotateStats,
    out_fp: Any,
    rej_fp: Any,
    on_doc: Optional[Callable[[], None]],
) -> None:
    """Append one window's results (in input order) to the partial files."""
    for res in results:
        if isinstance(res, Reject):
            rej_fp.write((json.dumps(res.as_dict(), ensure_ascii=False) + "\n").encode("utf8"))
            stats.rejected += 1
            stats.reject_reasons[res.kind] = stats.reject_reasons.get(res.kind, 0) + 1
            if on_doc is not None:
                on_doc()
            continue
        chunk = res.chunk
        if stats.documents == 0 and fmt == "bioc-json" and chunk.startswith(BIOC_JSON_SEPARATOR):
            # A window formatted without knowing it starts the output.
            chunk = chunk[len(BIOC_JSON_SEPARATOR) :]
        out_fp.write(chunk.encode("utf8"))
        stats.documents += 1
        stats.entities += res.entities
        stats.relations += res.relations


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


def _fsync_file(fp: Any) -> None:
    fp.flush()
    os.fsync(fp.fileno())


def _write_progress(paths: OutputPaths, state: Dict[str, Any]) -> None:
    tmp = Path(f"{paths.progress}.tmp")
    with open(tmp, "w", encoding="utf8") as fp:
        json.dump(state, fp, sort_keys=True)
        _fsync_file(fp)
    os.replace(tmp, paths.progress)


def _read_progress(paths: OutputPaths) -> Optional[Dict[str, Any]]:
    """The recorded state, None when there is no progress file; raises E312
    when there is one that cannot be used."""

    def unusable(problem: str) -> ValueError:
        return ValueError(Errors.E312.format(partial=paths.partial, problem=problem))

    try:
        with open(paths.progress, "rb") as fp:
            state = json.loads(fp.read().decode("utf8"))
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise unusable(f"its progress file '{paths.progress}' is corrupt ({err})") from None
    if not isinstance(state, dict):
        raise unusable(f"its progress file '{paths.progress}' is corrupt (not a JSON object)")
    if state.get("version") != PROGRESS_VERSION:
        raise unusable(
            f"its progress file '{paths.progress}' has format version {state.get('version')!r}, "
            f"not {PROGRESS_VERSION} (written by another version of spacy-biobert)"
        )
    for key in _PROGRESS_COUNTS:
        value = state.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise unusable(f"its progress file '{paths.progress}' is corrupt ({key} = {value!r})")
    if not isinstance(state.get("reject_reasons", {}), dict):
        raise unusable(f"its progress file '{paths.progress}' is corrupt (reject_reasons)")
    return state


def input_fingerprint(path: Union[str, Path]) -> Dict[str, Any]:
    """What `--resume` compares to tell that the input is unchanged: for a
    file, its size, modification time and a SHA-256 of its first and last MiB;
    for a folder, a SHA-256 over the names, sizes and modification times of
    its .txt/.txt.gz files."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        files = sorted(
            p for p in path.iterdir() if p.is_file() and p.name.lower().endswith((".txt", ".txt.gz"))
        )
        for file in files:
            st = file.stat()
            digest.update(f"{file.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf8", "surrogateescape"))
        return {"files": len(files), "sha256": digest.hexdigest()}
    st = path.stat()
    with open(path, "rb") as fp:
        digest.update(fp.read(FINGERPRINT_BYTES))
        if st.st_size > FINGERPRINT_BYTES:
            fp.seek(max(FINGERPRINT_BYTES, st.st_size - FINGERPRINT_BYTES))
            digest.update(fp.read(FINGERPRINT_BYTES))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_first_last_mib": digest.hexdigest()}


def _load(nlp: Any, quantize: Optional[str] = None) -> Any:
    if isinstance(nlp, (str, Path)):
        from ..models.base_models import load_pipeline

        nlp = load_pipeline(nlp)
    if quantize is not None:
        quantize_pipeline(nlp, quantize)
    return nlp


def _check_positive(name: str, value: Any) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(Errors.E306.format(name=name, value=value))


def annotate(
    nlp: Any,
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    *,
    input_format: Optional[str] = None,
    output_format: Optional[str] = None,
    max_chars: Optional[int] = DEFAULT_MAX_CHARS,
    batch_size: int = 64,
    window: int = 1000,
    threshold: float = 0.5,
    resume: bool = False,
    overwrite: bool = False,
    quantize: Optional[str] = None,
    backend: str = "local",
    ray_address: Optional[str] = None,
    ray_workers: Optional[int] = None,
    ray_cpus_per_worker: int = 1,
    on_doc: Optional[Callable[[], None]] = None,
    on_window: Optional[Callable[[AnnotateStats], None]] = None,
) -> AnnotateStats:
    """Annotate every document of `input_path` with `nlp` (a Language or a
    path to load) and write `output_path` (see the module docs). `on_doc` is
    called after each document (or reject) is processed, `on_window` after
    each checkpoint. Returns the totals.

    quantize: None (fp32) or "int8" (see `spacy_biobert.annotate.quantize`).
    backend: "local" (`nlp.pipe` in this process) or "ray" (Ray Data actors,
        each loading the pipeline once; see `spacy_biobert.annotate.ray_backend`),
        with `ray_address` (None: $RAY_ADDRESS, else a local Ray instance),
        `ray_workers` (None: one per `ray_cpus_per_worker` CPUs of the cluster).
    """
    paths = OutputPaths.for_output(output_path)
    in_fmt = input_format or detect_input_format(input_path)
    if in_fmt not in INPUT_FORMATS:
        raise ValueError(
            Errors.E304.format(what="input format", value=in_fmt, options=", ".join(INPUT_FORMATS))
        )
    out_fmt = check_output_format(output_format) if output_format else detect_output_format(output_path)
    _check_positive("batch_size", batch_size)
    _check_positive("window", window)
    if max_chars is not None:
        _check_positive("max_chars", max_chars)
    if backend not in BACKENDS:
        raise ValueError(Errors.E304.format(what="backend", value=backend, options=", ".join(BACKENDS)))
    if quantize is not None:
        check_quantize_mode(quantize)
    _check_positive("ray_cpus_per_worker", ray_cpus_per_worker)
    if ray_workers is not None:
        _check_positive("ray_workers", ray_workers)
    settings = {
        "input": str(Path(input_path).resolve()),
        "input_format": in_fmt,
        "output_format": out_fmt,
        "max_chars": max_chars,
        "threshold": threshold,
        "window": window,
        "batch_size": batch_size,
        "quantize": quantize,
    }
    if backend == "local":
        nlp = _load(nlp, quantize)
    fingerprint = input_fingerprint(input_path)
    state = _prepare(paths, settings, fingerprint, resume=resume, overwrite=overwrite)
    items = iter_input(input_path, in_fmt, max_chars=max_chars)
    stats = AnnotateStats(output=str(paths.output), rejects=str(paths.rejects))
    for key in ("documents", "rejected", "entities", "relations"):
        setattr(stats, key, state[key])
    stats.reject_reasons = dict(state.get("reject_reasons", {}))
    stats.resumed_from = state["done"]
    start = time.perf_counter()
    fresh = state["output_bytes"] == 0
    if fresh:
        # Before any partial file exists: partial output without a progress
        # file is then never a legitimate state (E312).
        _write_progress(paths, state)
    out_fp = open(paths.partial, "r+b" if paths.partial.exists() else "w+b")
    rej_fp = open(paths.rejects_partial, "r+b" if paths.rejects_partial.exists() else "w+b")
    try:
        out_fp.truncate(state["output_bytes"])
        out_fp.seek(state["output_bytes"])
        rej_fp.truncate(state["rejects_bytes"])
        rej_fp.seek(state["rejects_bytes"])
        if fresh:
            out_fp.write(header(out_fmt).encode("utf8"))
            _checkpoint(paths, state, stats, out_fp, rej_fp)

        def write(n_items: int, results: List[Union[Annotated, Reject]]) -> None:
            _write_results(results, out_fmt, stats, out_fp, rej_fp, on_doc)
            state["done"] += n_items
            stats.processed += n_items
            stats.seconds = time.perf_counter() - start
            _checkpoint(paths, state, stats, out_fp, rej_fp)
            if on_window is not None:
                on_window(stats)

        if backend == "ray":
            from .ray_backend import annotate_on_ray

            annotate_on_ray(
                nlp,
                items,
                paths,
                write,
                done=state["done"],
                window=window,
                output_format=out_fmt,
                threshold=threshold,
                batch_size=batch_size,
                quantize=quantize,
                address=ray_address,
                workers=ray_workers,
                cpus_per_worker=ray_cpus_per_worker,
                on_doc=on_doc,
            )
        else:
            for chunk in windows(islice(items, state["done"], None), window):
                results = annotate_window(
                    nlp,
                    chunk,
                    output_format=out_fmt,
                    threshold=threshold,
                    batch_size=batch_size,
                    first=stats.documents == 0,
                    on_doc=on_doc,
                )
                write(len(chunk), results)
        out_fp.write(footer(out_fmt).encode("utf8"))
        _fsync_file(out_fp)
        _fsync_file(rej_fp)
    finally:
        out_fp.close()
        rej_fp.close()
    if paths.shards.exists():
        shutil.rmtree(paths.shards)
    os.replace(paths.rejects_partial, paths.rejects)
    os.replace(paths.partial, paths.output)
    paths.progress.unlink()
    stats.seconds = time.perf_counter() - start
    return stats


def _checkpoint(
    paths: OutputPaths, state: Dict[str, Any], stats: AnnotateStats, out_fp: Any, rej_fp: Any
) -> None:
    _fsync_file(out_fp)
    _fsync_file(rej_fp)
    state["output_bytes"] = out_fp.tell()
    state["rejects_bytes"] = rej_fp.tell()
    for key in ("documents", "rejected", "entities", "relations"):
        state[key] = getattr(stats, key)
    state["reject_reasons"] = dict(stats.reject_reasons)
    _write_progress(paths, state)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def _prepare(
    paths: OutputPaths,
    settings: Dict[str, Any],
    fingerprint: Dict[str, Any],
    *,
    resume: bool,
    overwrite: bool,
) -> Dict[str, Any]:
    """The starting state: fresh, or the recorded one for resume; raises when
    an earlier run's files are in the way or cannot be resumed."""
    fresh: Dict[str, Any] = dict(
        settings,
        input_fingerprint=fingerprint,
        version=PROGRESS_VERSION,
        done=0,
        output_bytes=0,
        rejects_bytes=0,
        documents=0,
        rejected=0,
        entities=0,
        relations=0,
        reject_reasons={},
    )
    leftovers = [
        p for p in (paths.partial, paths.rejects_partial, paths.progress, paths.shards) if p.exists()
    ]
    if overwrite:
        for p in leftovers:
            _remove(p)
        return fresh
    if paths.output.exists():
        raise FileExistsError(Errors.E302.format(output=paths.output))
    if not leftovers:
        return fresh
    if not resume:
        raise FileExistsError(Errors.E301.format(partial=leftovers[0]))
    state = _read_progress(paths)
    if state is None:
        written = [p for p in (paths.partial, paths.rejects_partial) if p.exists()]
        if written:
            # The progress file is written before any partial file.
            size = sum(p.stat().st_size for p in written)
            raise ValueError(
                Errors.E312.format(
                    partial=written[0],
                    problem=f"the partial output ({size} bytes) has no progress file "
                    f"'{paths.progress}' (deleted?)",
                )
            )
        for p in leftovers:  # a Ray work folder, or a progress file's temporary
            _remove(p)
        return fresh
    if paths.partial.exists() and not paths.rejects_partial.exists():
        # Killed between the two final renames: take the rejects back.
        if paths.rejects.exists():
            os.replace(paths.rejects, paths.rejects_partial)
    if not paths.partial.exists() and state["done"] == 0 and state["output_bytes"] == 0:
        # Killed before the partial files were made: nothing was done.
        for p in leftovers:
            _remove(p)
        return fresh
    for key, value in settings.items():
        if state.get(key) != value:
            raise ValueError(
                Errors.E303.format(partial=paths.partial, key=key, old=state.get(key), new=value)
            )
    recorded = state.get("input_fingerprint")
    if recorded != fingerprint:
        old = recorded if isinstance(recorded, dict) else {}
        what = "; ".join(
            f"{key} was {old.get(key)!r}, is {value!r}"
            for key, value in sorted(fingerprint.items())
            if old.get(key) != value
        )
        raise ValueError(Errors.E313.format(input=settings["input"], what=what))
    for part, key in ((paths.partial, "output_bytes"), (paths.rejects_partial, "rejects_bytes")):
        size = part.stat().st_size if part.exists() else 0
        if size < state[key]:
            raise ValueError(
                Errors.E305.format(
                    partial=part, size=size, progress=paths.progress, offset=state[key]
                )
            )
    return state


__all__ = [
    "Annotated",
    "AnnotateStats",
    "OutputPaths",
    "annotate",
    "annotate_window",
]
