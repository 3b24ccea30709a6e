from typing import Optional

import typer
from wasabi import msg

app = typer.Typer(
    name="spacy-biobert",
    help="BioBERT-class transformers for biomedical text mining in spaCy.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """BioBERT-class transformers for biomedical text mining in spaCy."""


# The INPUT argument of the commands that read documents (annotate, render).
INPUT_HELP = (
    "Plain text (one document per line; a folder: one per .txt file), JSONL "
    "(id, text), PubTator or BioC XML/JSON; each may be .gz"
)


def positive_int_or_none(name: str, value: str) -> Optional[int]:
    """A size limit given on the command line: an integer >= 1, or 'none' /
    'unlimited' for no limit; anything else exits with a message."""
    if value.strip().lower() in ("none", "unlimited"):
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        msg.fail(f"{name} must be an integer >= 1 or 'none' (no limit), not {value!r}.", exits=1)
    return number
