"""Checks on the values a record holds: JSON that parses (`load_json`), text
that can be written as UTF-8 (`find_lone_surrogate`), integers (`is_int`),
documents within the length bound (`DEFAULT_MAX_CHARS`, `check_length` E113,
`check_max_chars` E117), and `show_value` for messages.
"""

import json
import re
import sys
from pathlib import Path
from typing import Any, Optional, Tuple, Union

from ..errors import Errors
from .errors import CorpusFormatError


def load_json(text: str) -> Tuple[Any, Optional[str], int]:
    """(the value, None, 0) of a JSON text, or (None, what is wrong, the line
    it is on (0: not tied to one)) for a text that is not usable JSON."""
    try:
        return json.loads(text), None, 0
    except json.JSONDecodeError as err:
        return None, f"not valid JSON ({err.msg})", err.lineno
    except ValueError:
        # Python's limit on converting text to int (4,300 digits by default)
        limit = getattr(sys, "get_int_max_str_digits", lambda: 4300)()
        return None, f"not usable JSON: it holds an integer of more than {limit:,} digits", 0
    except RecursionError:
        return None, "JSON nested too deeply", 0

_SURROGATE = re.compile("[\ud800-\udfff]")

def show_value(value: Any) -> str:
    """A short description of a bad value for messages: `'0' (str)`."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"

def is_int(value: Any) -> bool:
    """An integer, and not a bool (JSON true/false)."""
    return isinstance(value, int) and not isinstance(value, bool)

def find_lone_surrogate(obj: Any) -> Optional[str]:
    """Where a JSON value (strings, lists, dicts, nested) holds a lone
    surrogate ("\\ud800": valid JSON, but not text that can be written as
    UTF-8), as a short description; None when it holds none."""
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            m = _SURROGATE.search(value)
            if m is not None:
                return (
                    f"the string {value[:40]!r} holds the lone surrogate "
                    f"U+{ord(m.group()):04X} at character {m.start() + 1}"
                )
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None

DEFAULT_MAX_CHARS = 1_000_000
"""The readers' default bound on a document's length in characters: spaCy's
default `nlp.max_length`, beyond which `nlp.make_doc` refuses a text (E088).
Readers check it per record, before building the text where the source
gives offsets (BioC), so that an absurd offset costs no memory."""

def max_chars_of(nlp_or_vocab: Any) -> Optional[int]:
    """The length bound for documents read for `nlp_or_vocab`: a Language's
    `max_length`, else `DEFAULT_MAX_CHARS`."""
    return getattr(nlp_or_vocab, "max_length", DEFAULT_MAX_CHARS)

def check_length(
    path: Union[str, Path],
    line: int,
    doc_id: str,
    length: int,
    max_chars: Optional[int],
    detail: str = "",
) -> Optional[CorpusFormatError]:
    """E113 when a document of `length` characters is over `max_chars`
    (None: no bound)."""
    if max_chars is None or length <= max_chars:
        return None
    return CorpusFormatError(
        path,
        line,
        Errors.E113.format(doc_id=doc_id, length=length, detail=detail, limit=max_chars),
        record=doc_id,
    )

def check_max_chars(max_chars: Optional[int]) -> Optional[int]:
    if max_chars is not None and (
        isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1
    ):
        raise ValueError(Errors.E117.format(value=max_chars))
    return max_chars
