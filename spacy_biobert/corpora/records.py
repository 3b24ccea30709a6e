"""Records and Docs: `SourceDocument`/`SourceMention` (what a file says) and
the conversion both ways.

Every format is parsed into plain records (`SourceDocument`, `SourceMention`)
that keep exactly what the file says; `source_to_doc` turns a record into a
`Doc` following the data contract of `spacy_biobert.extensions`, and
`doc_to_source` turns a `Doc` (gold or predicted) back into a record for the
writers.

Where things live on a Doc (see docs/corpora.md):

- `doc._.doc_id`: the PMID.
- `doc.spans["mentions"]`: every mention; `label_` = source type, `kb_id_` =
  id string as in the source (stray whitespace stripped), `id_` = source
  mention id (ChemProt "T12"; PubTator "M1", "M2", ... in file order).
- `doc.ents`: the flat subset (`spacy.util.filter_spans`: longest first, then
  earliest; for identical spans the first in file order), labels passed
  through the reader's `label_map`.
- `doc._.gold_relations`: list of relation dicts (see `relation dicts` in
  docs/corpora.md).
- `doc.user_data[SOURCE_KEY]`: what is needed for byte-exact round trips and
  is not a span attribute: passages, BC5CDR's 7th column (`components`),
  original offsets of mentions expanded to token boundaries, raw mention
  text / id fields that differ from the stripped values, the ChemProt
  title/abstract separator.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from spacy.tokens import Doc, Span
from spacy.util import filter_spans
from spacy.vocab import Vocab

from ..errors import Errors
from ..extensions import MENTIONS_KEY, SOURCE_KEY, install_extensions, predicted_relations
from .errors import CorpusFormatError, CorpusStats
from .sentences import set_sentences


@dataclass
class SourceMention:
    id: str
    start: int
    end: int
    text: str
    type: str
    kb_id: str = "-1"
    # BC5CDR 7th column (individual mentions of a composite); None = no column.
    components: Optional[str] = None
    # Source fields kept verbatim when they differ from the cleaned values.
    raw_text: Optional[str] = None
    raw_kb_id: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)

@dataclass
class SourceDocument:
    doc_id: str
    text: str
    # (passage type, offset, text); title/abstract for PubTator and ChemProt.
    passages: List[Tuple[str, int, str]]
    mentions: List[SourceMention] = field(default_factory=list)
    relations: List[Dict[str, Any]] = field(default_factory=list)
    line: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)

    def content_key(self) -> Tuple:
        """Hashable content, used to detect identical duplicate documents."""
        return (
            self.doc_id,
            self.text,
            tuple(
                (m.start, m.end, m.text, m.type, m.kb_id, m.components)
                for m in self.mentions
            ),
            tuple(tuple(sorted((k, str(v)) for k, v in r.items())) for r in self.relations),
        )

def title_abstract_passages(
    title: str, abstract: str, sep: str = " "
) -> List[Tuple[str, int, str]]:
    return [("title", 0, title), ("abstract", len(title) + len(sep), abstract)]

def title_and_abstract(src: "SourceDocument") -> Tuple[str, str]:
    """(title, abstract) of a record, for the formats whose text is title +
    one separator + abstract (PubTator, ChemProt). Two passages are title
    and abstract when they cover the text; otherwise the text is cut at the
    second passage, or at its first line break (`losses.title_abstract_layout`
    tells when the text written differs from the record's)."""
    p = src.passages
    text = src.text
    if (
        len(p) == 2
        and p[0][1] == 0
        and p[1][1] == len(p[0][2]) + 1
        and p[1][1] + len(p[1][2]) == len(text)
    ):
        return p[0][2], p[1][2]
    if len(p) >= 2 and p[1][1] >= 1 and text[p[1][1] - 1] in " \t":
        cut = p[1][1] - 1
        return text[:cut], text[cut + 1 :]
    # One passage (predicted text): the title is the first line, if any.
    cut = text.find("\n")
    if cut == -1:
        return text, ""
    return text[:cut], text[cut + 1 :]

def check_mention(
    path: Union[str, Path], line: int, text: str, m: SourceMention
) -> Optional[CorpusFormatError]:
    """Offsets inside the text, and the mention string equal to the covered
    text (stripped: NCBI has a mention field with trailing spaces)."""
    if not (0 <= m.start <= m.end <= len(text)):
        return CorpusFormatError(
            path,
            line,
            Errors.E102.format(start=m.start, end=m.end, mention=m.text, length=len(text)),
        )
    covered = text[m.start : m.end]
    if covered != m.text:
        if covered == m.text.strip():
            m.raw_text = m.text
            m.text = covered
        else:
            return CorpusFormatError(
                path,
                line,
                Errors.E103.format(
                    mention=m.text, start=m.start, end=m.end, covered=covered
                ),
            )
    return None

MakeDoc = Callable[[str], Doc]

_DEFAULT_NLP: Dict[int, Any] = {}

def get_make_doc(nlp_or_vocab: Any = None) -> MakeDoc:
    """`nlp.make_doc` for a Language; for a Vocab (or None) the biomedical
    tokenizer (`spacy-biobert.BiomedicalTokenizer.v1`) over that vocab."""
    if nlp_or_vocab is not None and hasattr(nlp_or_vocab, "make_doc"):
        return nlp_or_vocab.make_doc
    if nlp_or_vocab is not None and not isinstance(nlp_or_vocab, Vocab):
        raise TypeError(
            f"Expected a spaCy Language or Vocab, got {type(nlp_or_vocab).__name__}."
        )
    key = id(nlp_or_vocab)
    if key not in _DEFAULT_NLP:
        import spacy

        from ..tokenizer import create_biomedical_tokenizer

        nlp = spacy.blank("en", vocab=nlp_or_vocab if nlp_or_vocab is not None else True)
        nlp.tokenizer = create_biomedical_tokenizer()(nlp)
        _DEFAULT_NLP[key] = nlp
    return _DEFAULT_NLP[key].make_doc

def _make_span(
    doc: Doc, m: SourceMention, stats: CorpusStats, doc_id: str
) -> Optional[Span]:
    span = doc.char_span(m.start, m.end, label=m.type, kb_id=m.kb_id, span_id=m.id)
    if span is not None:
        return span
    span = doc.char_span(
        m.start, m.end, label=m.type, kb_id=m.kb_id, span_id=m.id, alignment_mode="expand"
    )
    if span is None or len(span) == 0:
        return None
    stats.misaligned += 1
    if len(stats.misaligned_examples) < 20:
        stats.misaligned_examples.append(f"{doc_id}:{m.id} {m.text!r}->{span.text!r}")
    return span

def source_to_doc(
    src: SourceDocument,
    make_doc: MakeDoc,
    *,
    label_map: Optional[Union[str, Dict[str, str]]] = None,
    stats: Optional[CorpusStats] = None,
    source_format: str = "",
) -> Doc:
    """Build the Doc for one record (see the module docstring). label_map
    (a mapping or a preset name of `label_maps.LABEL_MAPS`) renames the types
    of `doc.ents` only."""
    from .label_maps import resolve_label_map

    install_extensions()
    label_map = resolve_label_map(label_map)
    stats = stats if stats is not None else CorpusStats()
    doc = make_doc(src.text)
    doc._.doc_id = src.doc_id
    spans: List[Span] = []
    mention_info: Dict[str, Dict[str, Any]] = {}
    for m in src.mentions:
        info: Dict[str, Any] = {}
        span = _make_span(doc, m, stats, src.doc_id)
        if span is None:
            # A mention of whitespace only: it cannot be a span. Keep it in
            # the source info so writers still reproduce it.
            info["unplaced"] = True
        elif (span.start_char, span.end_char) != (m.start, m.end):
            info["start"], info["end"] = m.start, m.end
        if m.components is not None:
            info["components"] = m.components
        if m.raw_text is not None:
            info["raw_text"] = m.raw_text
        if m.raw_kb_id is not None:
            info["raw_kb_id"] = m.raw_kb_id
        if m.extra:
            info.update(m.extra)
        if info.get("unplaced"):
            info.update(start=m.start, end=m.end, text=m.text, type=m.type, kb_id=m.kb_id)
        if info:
            mention_info[m.id] = info
        if span is not None:
            spans.append(span)
    stats.mentions += len(src.mentions)
    doc.spans[MENTIONS_KEY] = spans
    flat = filter_spans(spans)
    stats.not_flat += len(spans) - len(flat)
    ents = []
    for s in sorted(flat, key=lambda s: s.start):
        label = label_map.get(s.label_, s.label_) if label_map else s.label_
        ents.append(Span(doc, s.start, s.end, label=label, kb_id=s.kb_id_, span_id=s.id_))
    doc.set_ents(ents, default="outside")
    doc._.gold_relations = [dict(r) for r in src.relations]
    stats.relations += len(src.relations)
    source: Dict[str, Any] = {
        "format": source_format,
        "passages": [[t, o, len(x)] for t, o, x in src.passages],
    }
    if mention_info:
        source["mentions"] = mention_info
    if src.extra:
        source.update(src.extra)
    doc.user_data[SOURCE_KEY] = source
    set_sentences(doc, [o for _, o, _ in src.passages], spans)
    stats.documents += 1
    return doc

def doc_to_source(doc: Doc) -> SourceDocument:
    """The record a writer writes for a Doc. Gold Docs (from a reader) give
    back exactly what was read; predicted Docs use `doc.ents` (ids "M1"...,
    kb_id_ as set, "" when none) and one "text" passage."""
    install_extensions()
    source: Dict[str, Any] = doc.user_data.get(SOURCE_KEY) or {}
    text = doc.text
    passages_info = source.get("passages")
    # a read document with no passages (empty text) writes back with none
    if passages_info or (passages_info is not None and not text):
        passages = [(t, o, text[o : o + n]) for t, o, n in passages_info]
    else:
        passages = [("text", 0, text)]
    info = source.get("mentions", {})
    mentions: List[SourceMention] = []
    if MENTIONS_KEY in doc.spans:
        spans = list(doc.spans[MENTIONS_KEY])
    else:
        spans = list(doc.ents)
    used = set()
    for i, span in enumerate(spans, start=1):
        mid = span.id_ or f"M{i}"
        while mid in used:
            mid = f"{mid}_"
        used.add(mid)
        extra = dict(info.get(mid, {})) if span.id_ else {}
        start = extra.pop("start", span.start_char)
        end = extra.pop("end", span.end_char)
        if (start, end) != (span.start_char, span.end_char) and not _expands_to(
            doc, start, end, span
        ):
            # stale source offsets (the span was changed): the span's own
            start, end = span.start_char, span.end_char
        kb_id = span.kb_id_
        mentions.append(
            SourceMention(
                id=mid,
                start=start,
                end=end,
                text=text[start:end],
                type=span.label_,
                kb_id=kb_id,
                components=extra.pop("components", None),
                raw_text=extra.pop("raw_text", None),
                raw_kb_id=extra.pop("raw_kb_id", None),
                extra=extra,
            )
        )
    for mid, extra in info.items():
        if extra.get("unplaced") and mid not in used:
            mentions.append(
                SourceMention(
                    id=mid,
                    start=extra["start"],
                    end=extra["end"],
                    text=extra["text"],
                    type=extra["type"],
                    kb_id=extra["kb_id"],
                    components=extra.get("components"),
                    raw_text=extra.get("raw_text"),
                    raw_kb_id=extra.get("raw_kb_id"),
                )
            )
    mentions.sort(key=lambda m: _mention_order(m.id))
    relations = list(doc._.gold_relations or [])
    extra = {k: v for k, v in source.items() if k not in ("format", "passages", "mentions")}
    return SourceDocument(
        doc_id=str(doc._.doc_id) if doc._.doc_id is not None else "",
        text=text,
        passages=passages,
        mentions=mentions,
        relations=relations,
        extra=extra,
    )

def with_relation_arguments(doc: Doc, src: SourceDocument, threshold: float) -> SourceDocument:
    """`src` (of a predicted Doc) with a mention for every argument of a
    predicted mention-level relation that is not one of its mentions already:
    relation candidates can come from a span group (the biomed pipeline's
    `biobert_ner`), whose spans `doc.ents` may leave out (a chemical nested in a
    gene name), and a writer that links relations to mention ids would
    otherwise drop those relations. Gold Docs (relations read from the source)
    are returned as they are."""
    if src.relations:
        return src
    have = {(m.start, m.end) for m in src.mentions}
    spans = {(s.start_char, s.end_char): s for group in doc.spans.values() for s in group}
    added: List[SourceMention] = []
    for rel in predicted_relations(doc, threshold):
        if rel["level"] != "mention":
            continue
        for start, end in (rel["head"], rel["tail"]):
            if (start, end) in have:
                continue
            have.add((start, end))
            span = spans.get((start, end))
            added.append(
                SourceMention(
                    id=f"M{len(src.mentions) + len(added) + 1}",
                    start=start,
                    end=end,
                    text=doc.text[start:end],
                    type=span.label_ if span is not None else "",
                    kb_id=(span.kb_id_ or "-1") if span is not None else "-1",
                )
            )
    if added:
        src.mentions = sorted(src.mentions + added, key=lambda m: (m.start, m.end))
        if all(re.fullmatch(r"M\d+", m.id) for m in src.mentions):
            for i, m in enumerate(src.mentions, start=1):  # predicted ids, in text order
                m.id = f"M{i}"
    return src

def _expands_to(doc: Doc, start: Any, end: Any, span: Span) -> bool:
    """Whether source offsets `start`-`end` are those of `span`: they give
    that span when expanded to token boundaries (as the readers do; a
    mention ending in whitespace may end past the span)."""
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(doc.text)):
        return False
    wide = doc.char_span(start, end, alignment_mode="expand")
    return wide is not None and (wide.start, wide.end) == (span.start, span.end)

def _mention_order(mid: str) -> Tuple[int, str]:
    m = re.fullmatch(r"[A-Za-z]+(\d+)", mid)
    return (int(m.group(1)), mid) if m else (1 << 30, mid)
