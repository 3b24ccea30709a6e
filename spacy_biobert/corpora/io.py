"""Bytes and lines in and out: paths (gzip-compressed or not) and open streams.

`open_binary`/`peek` give one binary stream over any source (a damaged gzip file
is E120 wherever it is read, `open_gzip`); `iter_lines` is **the** line reader
(UTF-8, byte order mark dropped, an undecodable line is E104 for the caller to
raise or skip); `atomic_write`/`atomic_write_many`/`write_text` write files
that are complete or untouched.
"""

import contextlib
import gzip
import hashlib
import io
import os
import re
import uuid
import zlib
from pathlib import Path
from typing import IO, Any, Callable, Iterator, List, Optional, Sequence, TextIO, Tuple, Union

from ..errors import Errors
from .errors import CorpusFormatError

Source = Union[str, Path, IO[bytes], IO[str]]
"""What a reader reads: a path, or an open binary or text stream (read from
its current position, never closed by the reader)."""

_CHUNK = 1 << 16

def is_stream(source: Any) -> bool:
    """Whether `source` is an open file-like object rather than a path."""
    return hasattr(source, "read")

def source_name(source: Any) -> str:
    """What messages call a source: a path as given; a stream's `name` (a
    string) or "<stream>"."""
    if not is_stream(source):
        return str(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<stream>"

def is_gzip_name(path: Union[str, Path]) -> bool:
    """A name ending in ".gz": read decompressed where the format allows it."""
    return str(path).lower().endswith(".gz")

def plain_suffix(path: Union[str, Path]) -> str:
    """The lower-case extension of a path or stream name, ".gz" set aside
    ("a.PubTator.gz" -> ".pubtator")."""
    p = Path(str(path))
    if p.suffix.lower() == ".gz":
        p = p.with_suffix("")
    return p.suffix.lower()

class _Replay(io.RawIOBase):
    """A binary stream that gives `head` first, then the rest of `rest`; for
    a text stream, the text is encoded as UTF-8 (a lone surrogate as its
    bytes, which then do not decode: a bad line like any other)."""

    def __init__(self, head: bytes, rest: Any, text: bool):
        self.buf = head
        self.rest = rest
        self.text = text

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self.buf and self.rest is not None:
            chunk = self.rest.read(_CHUNK)
            if not chunk:
                self.rest = None
                break
            self.buf = chunk.encode("utf8", "surrogatepass") if self.text else chunk
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n

GZIP_FIX = (
    "copy or download the file again (`gzip -t FILE` tests one), or pass the "
    "uncompressed file"
)

def gzip_error(path: Union[str, Path], err: BaseException) -> CorpusFormatError:
    """E120 for a gzip file that is truncated or damaged (`err`: what the
    decompressor said)."""
    reason = str(err).strip() or type(err).__name__
    if isinstance(err, EOFError):
        reason = f"it ends early: {reason}"
    return CorpusFormatError(path, 0, Errors.E120.format(reason=reason), fix=GZIP_FIX)

class _CheckedGzip(io.RawIOBase):
    """The decompressed bytes of a gzip file, where a truncated or damaged
    file (`EOFError`, `zlib.error`, `gzip.BadGzipFile` from the decompressor)
    is one coded error, E120 naming the file, wherever it is read."""

    def __init__(self, path: Union[str, Path]):
        self.path = path
        self.fp = gzip.open(path, "rb")
        # gzip reads a 0-byte file as empty content; a gzip file is >= 20 bytes
        self.empty = os.path.getsize(path) == 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.empty and len(b):
            raise gzip_error(self.path, EOFError("the file is 0 bytes long"))
        try:
            return self.fp.readinto(b)
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise gzip_error(self.path, err) from None

    def close(self) -> None:
        self.fp.close()
        super().close()

def open_gzip(path: Union[str, Path]) -> IO[bytes]:
    """A binary file of the decompressed content of the gzip file `path`;
    a truncated or damaged file raises E120 (a CorpusFormatError naming the
    file) when read, never a zlib or EOF error."""
    return io.BufferedReader(_CheckedGzip(path), _CHUNK)

@contextlib.contextmanager
def open_binary(source: Source, *, head: bytes = b"") -> Iterator[IO[bytes]]:
    """A binary stream over `source`: a path (decompressed when its name ends
    in ".gz"; a truncated or damaged one is E120 when read), a binary stream
    (as it is, left open) or a text stream (its text as UTF-8 bytes, left
    open). `head`: bytes already read from a binary source (`peek`), given
    again first."""
    if not is_stream(source):
        opener: Any = open_gzip if is_gzip_name(source) else lambda p: open(p, "rb")
        with opener(source) as fp:
            yield fp
    elif head or isinstance(source.read(0), str):
        text = isinstance(source.read(0), str)
        yield io.BufferedReader(_Replay(head, source, text), _CHUNK)  # type: ignore[arg-type]
    else:
        yield source  # type: ignore[misc]

@contextlib.contextmanager
def peek(source: Source, size: int) -> Iterator[Tuple[bytes, IO[bytes]]]:
    """(the first `size` bytes, a binary stream over the whole source): look
    at the start of a stream without losing it."""
    with open_binary(source) as fp:
        head = fp.read(size)
        with open_binary(fp, head=head) as whole:
            yield head, whole

_UNDECODED = re.compile("[\udc80-\udcff]")

class UndecodedLine(CorpusFormatError):
    """E104 for one line; `text` is the line with each undecodable byte
    as a surrogate escape, so a reader can still tell what kind of line it
    was (a PubTator title line starts a document even when it is bad)."""

    def __init__(
        self, path: Union[str, Path], line: int, problem: str, text: str, fix: Optional[str] = None
    ):
        super().__init__(path, line, problem, fix=fix)
        self.text = text

def iter_lines(
    source: Source,
    encoding: str = "utf8",
    *,
    universal_newlines: bool = True,
    name: Optional[str] = None,
    fix: Optional[str] = None,
) -> Iterator[Tuple[int, Union[str, CorpusFormatError]]]:
    """(line number, line without its line break) for each line of a path or
    stream, streamed. Lines end at "\\n", "\\r\\n" or, with universal_newlines
    (the default), a lone "\\r" too (old Mac files); JSONL passes False, since
    JSON allows a raw "\\r" between tokens. A leading UTF-8 byte order mark is
    dropped. A line that does not decode yields a CorpusFormatError (naming
    `name`, by default `source_name(source)`) instead of text, so the caller
    decides whether to raise or skip it (`fix`: its advice, when skipping is
    not one; see `strict_lines`)."""
    where = name if name is not None else source_name(source)
    with open_binary(source) as raw:
        fp = io.TextIOWrapper(
            raw,  # type: ignore[arg-type]
            encoding=encoding,
            errors="surrogateescape",
            newline=None if universal_newlines else "\n",
        )
        try:
            for i, line in enumerate(fp, start=1):
                if i == 1 and line.startswith("\ufeff"):
                    line = line[1:]
                bad = _UNDECODED.search(line)
                if bad is not None:
                    byte = ord(bad.group()) - 0xDC00
                    reason = f"byte 0x{byte:02x} at character {bad.start() + 1} of the line"
                    problem = Errors.E104.format(encoding=encoding.upper(), reason=reason)
                    yield i, UndecodedLine(where, i, problem, line.rstrip("\r\n"), fix)
                    continue
                yield i, line.rstrip("\r\n")
        finally:
            fp.detach()  # the binary stream is closed (or left open) by its owner


UTF8_FIX = "convert the file to UTF-8 (e.g. iconv -f LATIN1 -t UTF-8), or correct that line"


def strict_lines(source: Source, *, name: Optional[str] = None) -> Iterator[Tuple[int, str]]:
    """`iter_lines` for files where a bad line cannot be skipped (knowledge-base
    sources): (line number, line), raising the E104 of the first line that does
    not decode."""
    for i, line in iter_lines(source, name=name, fix=UTF8_FIX):
        if isinstance(line, CorpusFormatError):
            raise line
        yield i, line


def open_sniffed(path: Union[str, Path]) -> IO[bytes]:
    """A binary file of `path`, decompressed when its content is gzip (its
    first two bytes), whatever its name: for downloads users may have renamed
    (MeSH, CTD). A damaged gzip file is E120 when read."""
    with open(path, "rb") as fp:
        magic = fp.read(2)
    if magic == b"\x1f\x8b":
        return open_gzip(path)
    return open(path, "rb")

def write_text(target: Union[str, Path, TextIO], write: Callable[[TextIO], int]) -> int:
    """`write(fp)` into an open text file `target`, or into a path, atomically
    (see `atomic_write`; UTF-8, "\\n" line breaks); returns what `write` does."""
    if hasattr(target, "write"):
        return write(target)  # type: ignore[arg-type]
    with atomic_write(target) as tmp, open(tmp, "w", encoding="utf8", newline="\n") as fp:
        return write(fp)

@contextlib.contextmanager
def atomic_write(path: Union[str, Path]) -> Iterator[Path]:
    """Write a file atomically: yields a temporary path in the same folder
    (create and close the file there); when the block ends without an error
    the file is fsynced and renamed over `path` (`os.replace`), otherwise it
    is removed and `path` is left as it was. The folder is created."""
    with atomic_write_many([path]) as (tmp,):
        yield tmp

@contextlib.contextmanager
def atomic_write_many(paths: Sequence[Union[str, Path]]) -> Iterator[List[Path]]:
    """`atomic_write` for several files written together (ChemProt's four):
    each is complete or untouched; they are renamed one after the other once
    all were written."""
    finals = [Path(p) for p in paths]
    tag = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
    tmps = [p.with_name(f".{p.name}.{tag}.tmp") for p in finals]
    for p in finals:
        p.parent.mkdir(parents=True, exist_ok=True)
    done = False
    try:
        yield tmps
        for tmp in tmps:
            if tmp.exists():
                with open(tmp, "rb") as fp:
                    os.fsync(fp.fileno())
        for tmp, final in zip(tmps, finals):
            if tmp.exists():
                os.replace(tmp, final)
        done = True
    finally:
        if not done:
            for tmp in tmps:
                if tmp.exists():
                    tmp.unlink()


def file_sha256(path: Union[str, Path], chunk: int = 1 << 20) -> str:
    """The SHA-256 of all of a file's bytes, read in pieces of `chunk` bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fp:
        for piece in iter(lambda: fp.read(chunk), b""):
            digest.update(piece)
    return digest.hexdigest()
