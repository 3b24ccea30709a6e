"""A training config for your own labels and data (`spacy-biobert init-config`).

Built from the committed template `spacy_biobert/cli/templates/own_data.cfg`
with spaCy's Config API (no string concatenation): entity labels, relation
labels with their (head type, tail type) pairs and level ("mention": between
two mentions; "document": between two concepts (kb ids) of a document), the
train and dev files with the format table's reader, CPU or GPU, linking.
The result trains NER and relations from the first step (relations on gold
entities) and passes `spacy debug data`.
"""
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from thinc.api import Config

from ..errors import Errors

TEMPLATE = Path(__file__).resolve().parents[1] / "cli" / "templates" / "own_data.cfg"
LEVELS = {"mention": "mention", "document": "concept"}
_RELATION = re.compile(r"^\s*([^:\s][^:]*?)\s*:\s*(.+?)\s*(?::\s*(mention|document|concept)\s*)?$")


@dataclass
class RelationSpec:
    """A relation label, the (head type, tail type) pairs it holds between,
    and its level ("mention" or "document")."""

    label: str
    pairs: List[Tuple[str, str]] = field(default_factory=list)
    level: str = "mention"


def parse_relation(spec: str) -> RelationSpec:
    """`LABEL:HEAD->TAIL[,HEAD->TAIL...][:mention|document]`, e.g.
    "CAUSES:Drug->AdverseEvent" or "CID:Chemical->Disease:document"."""
    found = _RELATION.match(spec)
    pairs: List[Tuple[str, str]] = []
    if found is not None:
        for part in found.group(2).split(","):
            ends = [x.strip() for x in part.split("->")]
            if len(ends) != 2 or not all(ends):
                found = None
                break
            pairs.append((ends[0], ends[1]))
    if found is None:
        raise ValueError(Errors.E812.format(value=spec))
    level = found.group(3) or "mention"
    return RelationSpec(found.group(1), pairs, "document" if level == "concept" else level)


def merge_relations(specs: Sequence[RelationSpec]) -> List[RelationSpec]:
    """One spec per label (a label given twice: its pairs joined; the levels
    must agree, E815)."""
    merged: Dict[str, RelationSpec] = {}
    for spec in specs:
        seen = merged.get(spec.label)
        if seen is None:
            merged[spec.label] = RelationSpec(spec.label, list(spec.pairs), spec.level)
            continue
        if seen.level != spec.level:
            raise ValueError(Errors.E815.format(label=spec.label, levels=f"{seen.level}, {spec.level}"))
        seen.pairs.extend(p for p in spec.pairs if p not in seen.pairs)
    return list(merged.values())


def _reader(fmt: str, split: str) -> Dict[str, object]:
    """The [corpora.SPLIT] block of the format table's reader for `fmt`."""
    from ..corpora.readers import READERS

    if fmt == "spacy":
        return {
            "@readers": "spacy.Corpus.v1", "path": f"${{paths.{split}}}", "max_length": 0,
            "gold_preproc": False, "limit": 0, "augmenter": None,
        }
    return {
        "@readers": READERS[fmt], "path": f"${{paths.{split}}}", "limit": f"${{paths.{split}_limit}}",
        "label_map": None, "skip_bad": False,
    }


def init_config(
    entities: Sequence[str],
    relations: Sequence[Union[str, RelationSpec]],
    train: Union[str, Path],
    dev: Union[str, Path],
    *,
    train_format: Optional[str] = None,
    dev_format: Optional[str] = None,
    gpu: bool = False,
    linking: bool = False,
    kb: Optional[str] = None,
    base_model: str = "minilm-offline",
    max_steps: int = 600,
) -> Config:
    """The config (see the module docstring). Formats default to what the
    format table detects from the paths (they must exist then). A
    document-level relation needs kb ids on the mentions, so it turns linking
    on. Raises E812-E817."""
    from ..corpora.formats import INPUT_FORMATS, detect_format, unknown_format

    labels = [e.strip() for e in entities if e.strip()]
    if not labels:
        raise ValueError(Errors.E814)
    specs = merge_relations([parse_relation(r) if isinstance(r, str) else r for r in relations])
    for spec in specs:
        for pair in spec.pairs:
            unknown = [t for t in pair if t not in labels]
            if unknown:
                raise ValueError(
                    Errors.E813.format(label=spec.label, types=unknown, entities=labels)
                )
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(Errors.E816.format(value=max_steps))
    formats = {}
    for split, path, fmt in (("train", train, train_format), ("dev", dev, dev_format)):
        if fmt is None:
            fmt = detect_format(path)
        elif fmt not in INPUT_FORMATS:
            raise ValueError(unknown_format(fmt, path, INPUT_FORMATS))
        formats[split] = fmt
    linking = linking or kb is not None or any(s.level == "document" for s in specs)

    config = Config().from_disk(TEMPLATE, interpolate=False)
    paths = config["paths"]
    paths["train"], paths["dev"] = str(train), str(dev)
    paths["base_model"] = base_model
    paths["kb"] = kb
    for split in ("train", "dev"):
        config["corpora"][split] = _reader(formats[split], split)
    pipeline: List[str] = list(config["nlp"]["pipeline"])
    components, init_components = config["components"], config["initialize"]["components"]
    if not linking:
        for name in ("biobert_abbreviations", "biobert_linker"):
            pipeline.remove(name)
            del components[name]
        del init_components["biobert_linker"]
        del config["paths"]["kb"]
    weights = config["training"]["score_weights"]
    if specs:
        all_pairs = [list(p) for s in specs for p in s.pairs]
        unique_pairs = [list(p) for p in dict.fromkeys(tuple(p) for p in all_pairs)]
        components["biobert_relations"]["candidates"]["allowed_pairs"] = unique_pairs
        init_components["biobert_relations"]["labels"] = [s.label for s in specs]
        init_components["biobert_relations"]["concept_labels"] = [
            s.label for s in specs if s.level == "document"
        ]
        mention = any(s.level == "mention" for s in specs)
        document = any(s.level == "document" for s in specs)
        share = round(1.0 / (1 + mention + document), 2)
        weights["ents_f"] = share
        for prefix, used in (("rel_micro", mention), ("rel_doc", document)):
            weights[f"{prefix}_f"] = share if used else None
            for part in ("p", "r"):
                weights[f"{prefix}_{part}"] = 0.0 if used else None
    else:
        pipeline.remove("biobert_relations")
        del components["biobert_relations"]
        del init_components["biobert_relations"]
        weights["ents_f"] = 1.0
        for prefix in ("rel_micro", "rel_doc"):
            for part in ("f", "p", "r"):
                del weights[f"{prefix}_{part}"]
    config["nlp"]["pipeline"] = pipeline
    training = config["training"]
    training["max_steps"] = max_steps
    training["eval_frequency"] = max(1, max_steps // 6)
    schedule = training["optimizer"]["learn_rate"]
    schedule["total_steps"] = max_steps
    schedule["warmup_steps"] = max(1, max_steps // 10)
    if gpu:
        components["biobert"]["model"]["mixed_precision"] = True
        training["batcher"]["size"] = 2000
    return config


def describe(config: Config) -> Dict[str, object]:
    """What a generated config trains, for the CLI's summary."""
    init = config["initialize"]["components"].get("biobert_relations", {})
    rel = config["components"].get("biobert_relations")
    return {
        "pipeline": list(config["nlp"]["pipeline"]),
        "train": f"{config['paths']['train']} ({config['corpora']['train']['@readers']})",
        "dev": f"{config['paths']['dev']} ({config['corpora']['dev']['@readers']})",
        "relation labels": json.dumps(init.get("labels") or []),
        "document-level": json.dumps(init.get("concept_labels") or []),
        "allowed_pairs": json.dumps(rel["candidates"]["allowed_pairs"]) if rel else "[]",
        "max_steps": config["training"]["max_steps"],
        "base model": config["paths"]["base_model"],
    }
