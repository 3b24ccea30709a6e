"""Atomic output and resume for `annotate`: the partial files, the progress
file, and the one atomic-write helper of the package's work files.

- Output goes to `OUTPUT.partial` and rejects to `OUTPUT.rejects.jsonl.partial`;
  the progress file `OUTPUT.progress.json` (written atomically) is written
  before them; after each window both are flushed and fsynced, then the
  progress file records how many input items are done and the byte size of
  both partial files. It also holds the settings and a fingerprint of the
  input (`input_fingerprint`). At the end the partial files are renamed
  (`os.replace`) to `OUTPUT` and `OUTPUT.rejects.jsonl` and the progress file
  is removed.
- A resumed run truncates the partial files to the recorded sizes, skips the
  recorded number of input items and goes on: the final files are
  byte-identical to those of an uninterrupted run. `Checkpoint.open` refuses,
  with a coded error, other settings (E303), a changed input (E313), partial
  files shorter than recorded (E305), and a missing, unreadable or foreign
  progress file next to partial output (E312): it never silently starts again
  over output it cannot account for. The fingerprint hashes all of the input
  (`input_fingerprint`), so an edit that keeps the size and restores the
  modification time is a changed input too; a progress file that records more
  documents done than the input holds is refused by the runner (E314).
"""

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterable, List, Optional, Union

from ..corpora.io import atomic_write, file_sha256
from ..errors import Errors
from .inputs import Reject
from .outputs import BIOC_JSON_SEPARATOR, footer, header
from .window import Result

# 3: the input fingerprint hashes all of the input (2: its first and last MiB).
PROGRESS_VERSION = 3
# The input fingerprint reads the input in pieces of this size.
FINGERPRINT_CHUNK = 1 << 20
_PROGRESS_COUNTS = ("done", "output_bytes", "rejects_bytes", "documents", "rejected", "entities",
                    "relations")
_STAT_COUNTS = ("documents", "rejected", "entities", "relations")


def write_atomic(path: Union[str, Path], write: Callable[[IO[str]], None]) -> None:
    """Write a UTF-8 text file atomically: `write(fp)` fills a temporary file
    in the same folder, which is fsynced and renamed over `path`
    (`spacy_biobert.corpora.atomic_write`)."""
    with atomic_write(path) as tmp, open(tmp, "w", encoding="utf8", newline="\n") as fp:
        write(fp)


def write_json_atomic(path: Union[str, Path], obj: Any) -> None:
    write_atomic(path, lambda fp: json.dump(obj, fp, sort_keys=True))


def write_jsonl_atomic(path: Union[str, Path], objs: Iterable[Any]) -> None:
    def write(fp: IO[str]) -> None:
        for obj in objs:
            fp.write(json.dumps(obj, ensure_ascii=False) + "\n")

    write_atomic(path, write)


def read_jsonl(path: Union[str, Path]) -> List[Any]:
    with open(path, encoding="utf8") as fp:
        return [json.loads(line) for line in fp if line.strip()]


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


def input_fingerprint(path: Union[str, Path]) -> Dict[str, Any]:
    """What `--resume` compares to tell that the input is unchanged: for a
    file, its size, modification time and a SHA-256 of all its bytes (read
    in 1 MiB pieces, so an edit anywhere is seen, even one that keeps the size
    and restores the modification time); for a folder, a SHA-256 over the
    names, sizes, modification times and contents of its .txt/.txt.gz files."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        files = sorted(
            p for p in path.iterdir() if p.is_file() and p.name.lower().endswith((".txt", ".txt.gz"))
        )
        for file in files:
            st = file.stat()
            digest.update(f"{file.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode("utf8", "surrogateescape"))
            digest.update(file_sha256(file, FINGERPRINT_CHUNK).encode("ascii") + b"\n")
        return {"files": len(files), "sha256": digest.hexdigest()}
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": file_sha256(path, FINGERPRINT_CHUNK)}


def _fsync_file(fp: Any) -> None:
    fp.flush()
    os.fsync(fp.fileno())


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


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def _start_state(
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
        for p in leftovers:  # a Ray work folder
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


class Checkpoint:
    """The partial output of one run: `open` it (fresh or resumed), `write`
    each window's results in input order (appended, fsynced, then recorded in
    the progress file), `finish` (footer, final renames). `stats` holds the
    totals, `done` the number of input items already written."""

    def __init__(
        self,
        paths: OutputPaths,
        state: Dict[str, Any],
        output_format: str,
        on_doc: Optional[Callable[[], None]] = None,
        on_window: Optional[Callable[[AnnotateStats], None]] = None,
    ) -> None:
        self.paths = paths
        self.state = state
        self.output_format = output_format
        self.on_doc = on_doc
        self.on_window = on_window
        self.stats = AnnotateStats(output=str(paths.output), rejects=str(paths.rejects))
        for key in _STAT_COUNTS:
            setattr(self.stats, key, state[key])
        self.stats.reject_reasons = dict(state.get("reject_reasons", {}))
        self.stats.resumed_from = state["done"]
        self._start = time.perf_counter()
        self._files: List[IO[bytes]] = []
        fresh = state["output_bytes"] == 0
        if fresh:
            # Before any partial file exists: partial output without a progress
            # file is then never a legitimate state (E312).
            write_json_atomic(paths.progress, state)
        try:
            self._out = self._open(paths.partial)
            self._rej = self._open(paths.rejects_partial)
            self._out.truncate(state["output_bytes"])
            self._out.seek(state["output_bytes"])
            self._rej.truncate(state["rejects_bytes"])
            self._rej.seek(state["rejects_bytes"])
            if fresh:
                self._out.write(header(output_format).encode("utf8"))
                self._save()
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(
        cls,
        paths: OutputPaths,
        settings: Dict[str, Any],
        fingerprint: Dict[str, Any],
        *,
        resume: bool,
        overwrite: bool,
        on_doc: Optional[Callable[[], None]] = None,
        on_window: Optional[Callable[[AnnotateStats], None]] = None,
    ) -> "Checkpoint":
        """A new run's, or with `resume` the interrupted run's, partial output;
        raises (E301, E302, E303, E305, E312, E313) when an earlier run's
        files are in the way or cannot be resumed."""
        state = _start_state(paths, settings, fingerprint, resume=resume, overwrite=overwrite)
        # A progress file's temporary left by a run killed while writing it.
        for tmp in paths.progress.parent.glob(f".{paths.progress.name}.*.tmp"):
            tmp.unlink()
        return cls(paths, state, settings["output_format"], on_doc, on_window)

    @property
    def done(self) -> int:
        return self.state["done"]

    def write(self, n_items: int, results: List[Result]) -> None:
        """Append one window's results (`n_items` input items, in input
        order) and record them in the progress file."""
        stats = self.stats
        for res in results:
            if isinstance(res, Reject):
                self._rej.write((json.dumps(res.as_dict(), ensure_ascii=False) + "\n").encode("utf8"))
                stats.rejected += 1
                stats.reject_reasons[res.kind] = stats.reject_reasons.get(res.kind, 0) + 1
                if self.on_doc is not None:
                    self.on_doc()
                continue
            chunk = res.chunk
            if (
                stats.documents == 0
                and self.output_format == "bioc-json"
                and chunk.startswith(BIOC_JSON_SEPARATOR)
            ):
                # A window formatted without knowing it starts the output.
                chunk = chunk[len(BIOC_JSON_SEPARATOR) :]
            self._out.write(chunk.encode("utf8"))
            stats.documents += 1
            stats.entities += res.entities
            stats.relations += res.relations
        self.state["done"] += n_items
        stats.processed += n_items
        stats.seconds = time.perf_counter() - self._start
        self._save()
        if self.on_window is not None:
            self.on_window(stats)

    def _save(self) -> None:
        _fsync_file(self._out)
        _fsync_file(self._rej)
        self.state["output_bytes"] = self._out.tell()
        self.state["rejects_bytes"] = self._rej.tell()
        for key in _STAT_COUNTS:
            self.state[key] = getattr(self.stats, key)
        self.state["reject_reasons"] = dict(self.stats.reject_reasons)
        write_json_atomic(self.paths.progress, self.state)

    def finish(self) -> AnnotateStats:
        """Write the footer, rename the partial files to their final names,
        remove the progress file and the Ray work folder; returns the totals."""
        try:
            self._out.write(footer(self.output_format).encode("utf8"))
            _fsync_file(self._out)
            _fsync_file(self._rej)
        finally:
            self.close()
        paths = self.paths
        if paths.shards.exists():
            shutil.rmtree(paths.shards)
        if self.stats.rejected:
            os.replace(paths.rejects_partial, paths.rejects)
        else:  # no reject: no rejects file
            paths.rejects_partial.unlink()
            self.stats.rejects = ""
        if self.output_format == "brat":
            _finish_brat(paths)
        else:
            os.replace(paths.partial, paths.output)
        paths.progress.unlink()
        self.stats.seconds = time.perf_counter() - self._start
        return self.stats

    def close(self) -> None:
        """Close the partial files (an interrupted run: they stay, to resume)."""
        for fp in self._files:
            fp.close()

    def _open(self, path: Path) -> IO[bytes]:
        fp = open(path, "r+b" if path.exists() else "w+b")
        self._files.append(fp)
        return fp


def _finish_brat(paths: OutputPaths) -> None:
    """brat: the partial output's documents (JSON lines of their two files)
    become the output folder, written beside it and then moved in place."""
    from ..corpora.brat import write_brat_chunks

    folder = Path(f"{paths.output}.partial.d")
    if folder.exists():
        shutil.rmtree(folder)
    with open(paths.partial, "rb") as fp:
        write_brat_chunks((json.loads(line) for line in fp if line.strip()), folder)
    if paths.output.exists():  # --overwrite
        _remove(paths.output)
    os.replace(folder, paths.output)
    paths.partial.unlink()


__all__ = [
    "PROGRESS_VERSION",
    "AnnotateStats",
    "Checkpoint",
    "OutputPaths",
    "input_fingerprint",
    "read_jsonl",
    "write_atomic",
    "write_json_atomic",
    "write_jsonl_atomic",
]
