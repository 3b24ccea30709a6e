"""A tiny made-up corpus of "your own data": entity types Drug and
AdverseEvent, one mention-level relation CAUSES (Drug -> AdverseEvent).

Each document states one causal pair ("X caused Y") and one pair that is not
("X was given after Y"), so a relation model can learn the cue."""
import json
from pathlib import Path
from typing import Any, Dict, List

DRUGS = ["aspirin", "cocaine", "lithium", "morphine", "naloxone", "cisplatin", "ibuprofen", "heparin"]
EVENTS = ["nausea", "headache", "hypotension", "seizures", "rash", "nephrotoxicity", "fever", "bleeding"]


def documents(n: int = 16, offset: int = 0) -> List[Dict[str, Any]]:
    """n JSONL records (the format `spacy-biobert convert` writes)."""
    docs = []
    for i in range(offset, offset + n):
        d1, d2 = DRUGS[i % len(DRUGS)], DRUGS[(i + 3) % len(DRUGS)]
        e1, e2 = EVENTS[(i * 3) % len(EVENTS)], EVENTS[(i * 3 + 5) % len(EVENTS)]
        first = f"{d1.capitalize()} caused {e1} in the patient."
        second = f" {d2.capitalize()} was given after {e2} was seen."
        text = first + second
        spans = [
            (0, len(d1), "Drug"),
            (first.index(e1), first.index(e1) + len(e1), "AdverseEvent"),
            (len(first) + 1, len(first) + 1 + len(d2), "Drug"),
        ]
        at = len(first) + second.index(e2)
        spans.append((at, at + len(e2), "AdverseEvent"))
        mentions = [
            {"id": f"T{k}", "start": s, "end": e, "text": text[s:e], "type": t}
            for k, (s, e, t) in enumerate(spans, start=1)
        ]
        docs.append({
            "id": f"doc{i + 1}",
            "text": text,
            "mentions": mentions,
            "relations": [{"level": "mention", "head": "T1", "tail": "T2", "label": "CAUSES"}],
        })
    return docs


def write_jsonl(path: Path, docs: List[Dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf8")
    return path
