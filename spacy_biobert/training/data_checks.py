"""Checks of relation training data, before the first step.

`biobert_relations` runs them at `initialize` (and `spacy-biobert
debug-data CONFIG` prints them): per label, the gold mentions and relations,
relation arguments that name no mention, labels in the data but not in the
config and the reverse, the candidate pairs the generator makes (on the gold
entities: what `gold_entities = true` trains on) and how many of them are
positive per label, and entity-type pairs that never occur.

A label with no positive candidate pair would train on nothing (its loss
near 0, its scores 0.00, the run "successful"): that is an error naming the
first cause found (E800-E809). What looks wrong but still trains is logged
as a warning (W800-W806). Examples with no gold annotation at all
(no mention, no relation) are taken as a sample for the model's shapes
(a pipeline assembled or initialized with `labels`), not as training data.
"""
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from spacy.tokens import Doc, Span
from spacy.training import Example

from ..errors import Errors, Warnings
from ..extensions import MENTIONS_KEY, install_extensions

logger = logging.getLogger("spacy_biobert.relations")

_MAX_EXAMPLES = 5
TypePair = Tuple[str, str]


@dataclass
class Problem:
    """One finding: `code` ("E8xx" or "W8xx"), its message, and the
    relation label it is about (None: the data as a whole)."""

    code: str
    message: str
    label: Optional[str] = None

    @property
    def is_error(self) -> bool:
        return self.code.startswith("E")


@dataclass
class RelationDataReport:
    """What the training data holds for one relation component."""

    name: str
    labels: Tuple[str, ...]
    concept_labels: Tuple[str, ...]
    configured: bool
    allowed_pairs: Optional[Set[TypePair]] = None
    spans_key: Optional[str] = None
    max_distance: Optional[int] = None
    documents: int = 0
    # documents whose reference has doc._.gold_relations (a list, maybe empty)
    annotated: int = 0
    # gold mentions by type (doc.spans["mentions"], else doc.ents)
    mentions: Counter = field(default_factory=Counter)
    # the spans the candidate generator pairs, by label
    candidate_spans: Counter = field(default_factory=Counter)
    relations: Counter = field(default_factory=Counter)
    levels: Dict[str, Counter] = field(default_factory=dict)
    # label -> the level of its first gold relation (what initialize learns it at)
    first_levels: Dict[str, str] = field(default_factory=dict)
    # relations with an argument that names no mention (ids) / no kb id of a mention
    unresolved: Counter = field(default_factory=Counter)
    unresolved_examples: List[str] = field(default_factory=list)
    # mention-level relations whose arguments are mentions the generator does not pair
    not_candidates: Counter = field(default_factory=Counter)
    # label -> (head type, tail type) of its gold relations, as the generator sees the types
    relation_types: Dict[str, Counter] = field(default_factory=dict)
    candidate_pairs: int = 0
    candidate_types: Counter = field(default_factory=Counter)
    mention_positives: Counter = field(default_factory=Counter)
    concept_positives: Counter = field(default_factory=Counter)

    # --- derived -------------------------------------------------------------------

    def level_of(self, label: str) -> str:
        return "concept" if label in self.concept_labels else "mention"

    def data_level(self, label: str) -> Optional[str]:
        levels = self.levels.get(label)
        return levels.most_common(1)[0][0] if levels else None

    def positives(self, label: str) -> int:
        """Positive training units of `label` at the component's level:
        candidate pairs (mention level) or (head kb id, tail kb id) groups
        (concept level)."""
        if self.level_of(label) == "concept":
            return self.concept_positives[label]
        return self.mention_positives[label]

    @property
    def data_labels(self) -> List[str]:
        return sorted(self.relations)

    # --- findings ------------------------------------------------------------------

    def problems(self) -> List[Problem]:
        """Errors (a label that would train on nothing, with its cause) and
        warnings, in that order."""
        errors: List[Problem] = []
        warnings: List[Problem] = []
        name = self.name
        total = sum(self.relations.values())
        if self.documents and not total and not sum(self.mentions.values()):
            # no gold annotation at all: a sample to infer the model's shapes
            # (labels given), as when a pipeline is assembled, not training data
            return [Problem("W806", Warnings.W806.format(name=name, docs=self.documents))]
        if self.documents and not self.annotated:
            return [Problem("E801", Errors.E801.format(name=name, docs=self.documents))]
        if self.documents and not total:
            return [
                Problem(
                    "E803",
                    Errors.E803.format(
                        name=name, docs=self.documents, mentions=sum(self.mentions.values()),
                        types=_show(sorted(self.mentions)), labels=list(self.labels),
                    ),
                )
            ]
        extra = [label for label in self.data_labels if label not in self.labels]
        for label in self.labels:
            if self.positives(label):
                continue
            cause = self._cause(label, extra)
            if cause is not None:
                errors.append(cause)
        if self.configured and extra:
            warnings.append(
                Problem(
                    "W800",
                    Warnings.W800.format(
                        name=name, extra=_show(extra),
                        counts=", ".join(f"{x}: {self.relations[x]}" for x in extra),
                        labels=list(self.labels),
                    ),
                )
            )
        for label in self.labels:
            if not self.relations[label] and not any(e.label == label for e in errors):
                warnings.append(
                    Problem("W801", Warnings.W801.format(name=name, label=label, docs=self.documents), label)
                )
        for label in self.labels:
            n = self.unresolved[label]
            if n and n < self.relations[label]:
                warnings.append(
                    Problem(
                        "W802",
                        Warnings.W802.format(
                            label=label, count=n, total=self.relations[label],
                            examples="; ".join(self.unresolved_examples),
                        ),
                        label,
                    )
                )
        warnings.extend(self._type_warnings(errors))
        return errors + warnings

    def _cause(self, label: str, extra: List[str]) -> Optional[Problem]:
        """Why `label` has no positive candidate pair (None: it has no gold
        relation while other labels do, a warning only)."""
        name = self.name
        count = self.relations[label]
        if not count:
            if extra and not any(self.relations[x] for x in self.labels):
                return Problem(
                    "E802",
                    Errors.E802.format(
                        name=name, labels=_list(self.labels), data=_show(self.data_labels),
                        fix_labels=_list(self.data_labels),
                        counts=", ".join(f"{x}: {self.relations[x]}" for x in self.data_labels),
                    ),
                    label,
                )
            return None
        data_level = self.data_level(label)
        level = self.level_of(label)
        if data_level is not None and data_level != level:
            return Problem(
                "E805",
                Errors.E805.format(
                    name=name, label=label, level=level, data_level=data_level, count=count,
                    concept=_show([x for x in self.labels if self.data_level(x) == "concept"]),
                ),
                label,
            )
        if self.unresolved[label] >= count:
            mentions = sum(self.mentions.values())
            detail = (
                "the documents have no gold mention at all (0 mentions)"
                if not mentions
                else f"the documents have {mentions} gold mention(s)"
            )
            return Problem(
                "E804",
                Errors.E804.format(
                    name=name, label=label, count=count, detail=detail,
                    examples="; ".join(self.unresolved_examples) or "-",
                ),
                label,
            )
        if self.allowed_pairs is not None:
            known = set(self.candidate_spans)
            unknown = sorted({t for pair in self.allowed_pairs for t in pair} - known)
            if unknown:
                return Problem(
                    "E806",
                    Errors.E806.format(
                        name=name, label=label, unknown=_show(unknown), known=_show(sorted(known)),
                        allowed=_pairs(self.allowed_pairs),
                    ),
                    label,
                )
            types = self.relation_types.get(label, Counter())
            outside = sorted(p for p in types if p not in self.allowed_pairs and None not in p)
            if outside:
                return Problem(
                    "E807",
                    Errors.E807.format(
                        name=name, label=label, types=_pairs(outside), allowed=_pairs(self.allowed_pairs),
                        wanted=_pairs(sorted(set(self.allowed_pairs) | set(outside))),
                    ),
                    label,
                )
        if self.not_candidates[label]:
            group = f"doc.spans[{self.spans_key!r}]" if self.spans_key else "doc.ents"
            return Problem(
                "E808",
                Errors.E808.format(
                    name=name, label=label, count=self.not_candidates[label], group=group,
                ),
                label,
            )
        return Problem(
            "E809",
            Errors.E809.format(
                name=name, label=label, count=count, pairs=self.candidate_pairs,
                max_distance=self.max_distance,
                types=_pairs(sorted(p for p in self.relation_types.get(label, {}) if None not in p)),
            ),
            label,
        )

    def _type_warnings(self, errors: List[Problem]) -> List[Problem]:
        """Typed pairs of allowed_pairs that never occur (W803); types named
        by allowed_pairs that no span has, where not already an error (W804)."""
        if self.allowed_pairs is None or not self.documents:
            return []
        out: List[Problem] = []
        if not any(e.code == "E806" for e in errors):
            unknown = sorted(
                {t for pair in self.allowed_pairs for t in pair} - set(self.candidate_spans)
            )
            if unknown:
                out.append(
                    Problem(
                        "W804",
                        Warnings.W804.format(
                            name=self.name, unknown=_show(unknown),
                            known=_show(sorted(self.candidate_spans)),
                        ),
                    )
                )
        used: Set[TypePair] = set()
        for label, types in self.relation_types.items():
            if label in self.labels:
                used.update(types)
        never = sorted(p for p in self.allowed_pairs if p not in used)
        if never and any(self.relations[x] for x in self.labels):
            out.append(
                Problem(
                    "W803",
                    Warnings.W803.format(
                        name=self.name, never=_pairs(never),
                        candidates=", ".join(
                            f"{h}->{t}: {self.candidate_types[(h, t)]}" for h, t in never
                        ),
                    ),
                )
            )
        return out

    def raise_or_log(self, *, gold_entities: bool = True) -> None:
        """Log the warnings; raise the errors (a ValueError whose message
        holds every one, the first first)."""
        found = self.problems()
        if not gold_entities:
            found.append(Problem("W805", Warnings.W805.format(name=self.name)))
        for problem in found:
            if not problem.is_error:
                logger.warning(problem.message)
        errors = [p.message for p in found if p.is_error]
        if errors:
            raise ValueError("\n".join(errors))


def check_relation_data(
    examples: Iterable[Example],
    candidates: Callable[[Doc], Sequence[Tuple[Span, Span]]],
    *,
    labels: Sequence[str],
    concept_labels: Sequence[str] = (),
    name: str = "biobert_relations",
    configured: bool = True,
) -> RelationDataReport:
    """Count what the examples' reference docs give a relation component
    with these `labels` (`concept_labels` at concept level) and this
    candidate generator. The candidates are made on the references (gold
    entities). configured: the labels were given (config or `add_label`),
    not read from the data. Positives are counted for every label the data
    states too (`labels` can be set on the report afterwards)."""
    from ..pipeline.relation_targets import concept_groups, gold_sets, mention_targets

    install_extensions()
    report = RelationDataReport(
        name=name,
        labels=tuple(labels),
        concept_labels=tuple(concept_labels),
        configured=configured,
        allowed_pairs=_allowed_pairs(candidates),
        spans_key=getattr(candidates, "spans_key", None),
        max_distance=getattr(candidates, "max_distance", None),
    )
    all_labels = list(labels)
    for eg in examples:
        doc = eg.reference
        report.documents += 1
        gold = doc._.gold_relations
        mentions = list(doc.spans[MENTIONS_KEY]) if MENTIONS_KEY in doc.spans else list(doc.ents)
        report.mentions.update(span.label_ for span in mentions)
        spans = _candidate_spans(candidates, doc)
        report.candidate_spans.update(span.label_ for span in spans)
        pairs = list(candidates(doc))
        report.candidate_pairs += len(pairs)
        report.candidate_types.update((h.label_, t.label_) for h, t in pairs)
        if gold is None:
            continue
        report.annotated += 1
        gold = list(gold)
        for rel in gold:
            label = rel.get("label")
            report.relations[label] += 1
            report.levels.setdefault(label, Counter())[rel.get("level", "mention")] += 1
            report.first_levels.setdefault(label, rel.get("level", "mention"))
            if label not in all_labels:
                all_labels.append(label)
        _count_arguments(report, doc, gold, mentions, spans)
        if not pairs:
            continue
        gold_mentions, gold_concepts, ref_kb = gold_sets(doc, gold)
        targets = mention_targets(pairs, gold_mentions, all_labels)
        for j, label in enumerate(all_labels):
            report.mention_positives[label] += int(targets[:, j].sum())
        for (head_kb, tail_kb), _ in concept_groups(pairs, ref_kb).items():
            for label in all_labels:
                if (head_kb, tail_kb, label) in gold_concepts:
                    report.concept_positives[label] += 1
    return report


def _allowed_pairs(candidates: Any) -> Optional[Set[TypePair]]:
    allowed = getattr(candidates, "allowed_pairs", None)
    return None if allowed is None else {(str(h), str(t)) for h, t in allowed}


def _candidate_spans(candidates: Any, doc: Doc) -> List[Span]:
    get_spans = getattr(candidates, "get_spans", None)
    if callable(get_spans):
        return list(get_spans(doc))
    key = getattr(candidates, "spans_key", None)
    if key is not None:
        return list(doc.spans[key]) if key in doc.spans else []
    return list(doc.ents)


def _count_arguments(
    report: RelationDataReport,
    doc: Doc,
    gold: List[Dict[str, Any]],
    mentions: List[Span],
    spans: List[Span],
) -> None:
    """Arguments that name no mention, mention-level arguments the generator
    does not pair, and the (head type, tail type) of each gold relation as the
    generator's spans are labelled (None where an argument is not one)."""
    from ..extensions import mention_ids

    by_id: Dict[str, Span] = {}
    for span in mentions + list(doc.ents):
        if span.id_:
            by_id.setdefault(span.id_, span)
    span_type = {(s.start_char, s.end_char): s.label_ for s in spans}
    kb_types: Dict[str, Set[str]] = {}
    for span in spans:
        for kb in mention_ids(span):
            kb_types.setdefault(kb, set()).add(span.label_)
    known_kb = {kb for span in mentions + list(doc.ents) for kb in mention_ids(span)}
    doc_id = doc._.doc_id if doc._.doc_id is not None else "?"
    for rel in gold:
        label = rel.get("label")
        head, tail = str(rel.get("head")), str(rel.get("tail"))
        types = report.relation_types.setdefault(label, Counter())
        if rel.get("level", "mention") == "concept":
            missing = [arg for arg in (head, tail) if arg not in known_kb]
            if missing:
                _unresolved(report, label, doc_id, rel, missing, "kb id of no mention")
                continue
            for h in kb_types.get(head, {None}):
                for t in kb_types.get(tail, {None}):
                    types[(h, t)] += 1
            continue
        missing = [arg for arg in (head, tail) if arg not in by_id]
        if missing:
            _unresolved(report, label, doc_id, rel, missing, "no mention id")
            continue
        h_span, t_span = by_id[head], by_id[tail]
        h_type = span_type.get((h_span.start_char, h_span.end_char))
        t_type = span_type.get((t_span.start_char, t_span.end_char))
        types[(h_type, t_type)] += 1
        if h_type is None or t_type is None:
            report.not_candidates[label] += 1


def _unresolved(
    report: RelationDataReport, label: str, doc_id: str, rel: Dict[str, Any], missing: List[str], what: str
) -> None:
    report.unresolved[label] += 1
    if len(report.unresolved_examples) < _MAX_EXAMPLES:
        args = ", ".join(repr(m) for m in missing)
        report.unresolved_examples.append(f"document {doc_id!r}: {label} {args} ({what})")


def _show(items: Iterable[Any]) -> str:
    items = list(items)
    return ", ".join(repr(x) for x in items) if items else "none"


def _list(items: Iterable[str]) -> str:
    """A list of labels as a config writes it: ["CID", "CPR:3"]."""
    return json.dumps(list(items))


def _pairs(pairs: Iterable[Sequence[Any]]) -> str:
    """Type pairs as allowed_pairs is written: [["Drug", "AdverseEvent"]]."""
    return json.dumps([[h, t] for h, t in pairs])
