"""Composite (coordinated) mentions: "ovarian and breast cancer" names two
concepts, "ovarian cancer" and "breast cancer"; BC5CDR gives such a mention
both ids joined by "|" ("D010051|D001943"), in the order of the parts.

`composite_readings(text)` lists the ways to read a mention as several
names, most likely first:

- parts as written: "hypertension and diabetes" -> hypertension | diabetes;
- the last part's head shared: "ovarian and breast cancer" -> ovarian cancer
  | breast cancer; "ocular and auditory toxicity" -> ocular toxicity |
  auditory toxicity; "renal, hepatic or cardiac failure" -> three;
- the first part's modifier shared: "renal injury and failure" -> renal
  injury | renal failure.

Coordinators: "and", "or", "and/or", ",", "/" and "&". A mention with
nothing to split has no readings.
"""

import re
from typing import List, Tuple

_COORD = re.compile(r"\s*,\s*(?:and/or\s+|and\s+|or\s+)?|\s+(?:and/or|and|or|&)\s+|\s*/\s*", re.I)
_MAX_PARTS = 5


def split_parts(text: str) -> List[str]:
    """The coordinated parts of a mention ([] when there are fewer than two)."""
    parts = [p.strip() for p in _COORD.split(text.strip())]
    parts = [p for p in parts if p]
    if not (2 <= len(parts) <= _MAX_PARTS):
        return []
    return parts


def composite_readings(text: str) -> List[Tuple[str, ...]]:
    """The readings of a composite mention, most likely first (see the
    module docstring); each reading has one name per concept."""
    parts = split_parts(text)
    if not parts:
        return []
    out: List[Tuple[str, ...]] = [tuple(parts)]
    first, last = parts[0].split(), parts[-1].split()
    # Shared head: short leading parts take the words after the last part's
    # first word ("ovarian and breast cancer").
    if len(last) > 1 and all(len(p.split()) < len(last) for p in parts[:-1]):
        head = " ".join(last[1:])
        out.append(tuple(f"{p} {head}" for p in parts[:-1]) + (parts[-1],))
    # Shared modifier: short later parts take the first part's leading words
    # ("renal injury and failure").
    if len(first) > 1 and all(len(p.split()) < len(first) for p in parts[1:]):
        modifier = " ".join(first[:-1])
        out.append((parts[0],) + tuple(f"{modifier} {p}" for p in parts[1:]))
    seen = set()
    unique = []
    for reading in out:
        if reading not in seen:
            seen.add(reading)
            unique.append(reading)
    return unique
