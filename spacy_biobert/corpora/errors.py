"""What goes wrong in a corpus file, and what a reader counts.

`CorpusFormatError` (a bad record, naming file and line), the constructors of
the common ones (`malformed` E101, `empty_file_error` E105, `check_exists`
E106), `CorpusStats` (the counts a reader fills in and the warnings it logs)
and `ErrorPolicy` (raise, or skip and count: `on_error`).
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from ..errors import Errors, Warnings

logger = logging.getLogger("spacy_biobert.corpora")

ON_ERROR = ("raise", "skip")

_MAX_KEPT_ERRORS = 20

class CorpusFormatError(ValueError):
    """A bad record in a corpus file. `path`, `line` (1-based, 0 if the
    problem is not tied to a line), `problem` and `record` (the document id
    when the problem is tied to a document, else None) are attributes; the
    message reads "PATH:LINE: [Exxx] problem. Fix: ..." (`fix` replaces the
    usual advice for problems with a whole file, where skipping does not help)."""

    def __init__(
        self,
        path: Union[str, Path],
        line: int,
        problem: str,
        *,
        record: Optional[str] = None,
        fix: Optional[str] = None,
    ):
        self.path = str(path)
        self.line = line
        self.problem = problem
        self.record = record
        where = f"{self.path}:{line}" if line else self.path
        fix = fix or (
            "correct the record, or skip and count bad records with on_error='skip' "
            "(reader option skip_bad = true; CLI --skip-bad)"
        )
        super().__init__(f"{where}: {problem}. Fix: {fix}.")

@dataclass
class CorpusStats:
    """Counts filled in while a corpus is read (pass one to a reader)."""

    path: str = ""
    documents: int = 0
    mentions: int = 0
    relations: int = 0
    misaligned: int = 0
    misaligned_examples: List[str] = field(default_factory=list)
    not_flat: int = 0
    duplicates: int = 0
    duplicate_ids: List[str] = field(default_factory=list)
    skipped: int = 0
    skipped_documents: int = 0
    errors: List[CorpusFormatError] = field(default_factory=list)
    # Lines repeated verbatim in a file (ChemProt annotation files), dropped.
    duplicate_lines: int = 0
    duplicate_line_examples: List[str] = field(default_factory=list)
    # Optional files of a split that are absent (ChemProt entities/relations).
    missing_files: List[str] = field(default_factory=list)
    # Annotations a reader does not read into Docs, by kind (brat events,
    # attributes, notes), counted and reported (W807).
    skipped_annotations: Dict[str, int] = field(default_factory=dict)
    # BioC XML text values that held markup (child elements): text kept, tags dropped.
    markup: int = 0
    markup_examples: List[str] = field(default_factory=list)

    def add_error(self, err: CorpusFormatError, *, document: bool = False) -> None:
        self.skipped += 1
        if document:
            self.skipped_documents += 1
        if len(self.errors) < _MAX_KEPT_ERRORS:
            self.errors.append(err)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "path": self.path,
            "documents": self.documents,
            "mentions": self.mentions,
            "relations": self.relations,
            "misaligned": self.misaligned,
            "not_flat": self.not_flat,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "skipped_documents": self.skipped_documents,
            "duplicate_lines": self.duplicate_lines,
            "missing_files": list(self.missing_files),
            "skipped_annotations": dict(self.skipped_annotations),
            "markup": self.markup,
        }

    def add_duplicate_line(self, path: Union[str, Path], line: int) -> None:
        self.duplicate_lines += 1
        if len(self.duplicate_line_examples) < 10:
            self.duplicate_line_examples.append(f"{path}:{line}")

    def log_warnings(self) -> None:
        """Log (not print) what a user must know: expanded mentions,
        dropped duplicates and skipped records."""
        first_error = self.errors[0] if self.errors else ""
        found = (
            (self.misaligned, Warnings.W101, {"count": self.misaligned, "total": self.mentions,
                                              "examples": ", ".join(self.misaligned_examples[:5])}),
            (self.duplicates, Warnings.W102, {"count": self.duplicates,
                                              "ids": ", ".join(self.duplicate_ids[:10])}),
            (self.skipped, Warnings.W103, {"count": self.skipped, "first": first_error}),
            (self.missing_files, Warnings.W106, {"files": ", ".join(self.missing_files)}),
            (self.duplicate_lines, Warnings.W105, {"count": self.duplicate_lines,
                                                   "examples": ", ".join(self.duplicate_line_examples[:5])}),
            (self.skipped_annotations, Warnings.W807, {"counts": ", ".join(
                f"{n} {kind}(s)" for kind, n in sorted(self.skipped_annotations.items()))}),
            (self.markup, Warnings.W107, {"count": self.markup,
                                          "examples": "; ".join(self.markup_examples[:3])}),
        )
        for count, template, values in found:
            if count:
                logger.warning(template.format(path=self.path, **values))

class ErrorPolicy:
    """Raise a CorpusFormatError, or record it and go on (on_error="skip")."""

    def __init__(self, on_error: str, stats: CorpusStats):
        if on_error not in ON_ERROR:
            raise ValueError(Errors.E109.format(value=on_error))
        self.skip = on_error == "skip"
        self.stats = stats

    def __call__(self, err: CorpusFormatError, *, document: bool = False) -> None:
        if not self.skip:
            raise err
        logger.debug("skipped: %s", err)
        self.stats.add_error(err, document=document)

def check_exists(path: Union[str, Path], what: str = "corpus file") -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            Errors.E106.format(
                what=f"{what} '{path}'", fix="check the path (or [paths] in the config)"
            )
        )
    return path

def empty_file_error(path: Union[str, Path]) -> CorpusFormatError:
    """E105: the file holds nothing but whitespace."""
    return CorpusFormatError(
        path, 0, Errors.E105, fix="check the path: an empty file holds no document"
    )

def malformed(
    path: Union[str, Path], line: int, detail: str, *, record: Optional[str] = None
) -> CorpusFormatError:
    """E101 (a malformed line or document) at `path`:`line`."""
    return CorpusFormatError(path, line, Errors.E101.format(detail=detail), record=record)
