import json
from typing import Any, Dict, Optional

import typer
from wasabi import msg

# Progress bars (tqdm, `disable=None`) draw only when stderr is a terminal:
# in a redirected log they would be a mess of carriage returns.

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

# The --text-docs option of the commands that read plain text (annotate, render, pretrain):
# one rule, one default (spacy_biobert.corpora.text).
TEXT_DOCS_HELP = (
    "How plain text holds its documents: line (one document per line, the default) or "
    "blank-line (documents separated by blank lines)"
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


def label_map_option(value: Optional[str]) -> Optional[Dict[str, str]]:
    """--label-map: a preset name (`corpora.label_maps.LABEL_MAPS`) or a JSON
    object; anything else exits with a message."""
    from ..corpora.label_maps import LABEL_MAPS
    from ..errors import Errors

    if value is None:
        return None
    if value in LABEL_MAPS:
        return dict(LABEL_MAPS[value])
    try:
        mapping = json.loads(value)
    except json.JSONDecodeError:
        mapping = None
    if not isinstance(mapping, dict):
        msg.fail(Errors.E012.format(name=value, known=", ".join(LABEL_MAPS)), exits=1)
    return mapping


def load_pipeline_or_exit(model: Any) -> Any:
    """The pipeline `model` (a name or folder), loaded with every safety check
    (`models.base_models.load_pipeline`); a refused or broken one exits with
    its coded message."""
    from ..models.base_models import load_pipeline

    try:
        return load_pipeline(model)
    except (OSError, ValueError) as err:
        msg.fail(f"Cannot load the pipeline '{model}': {err}", exits=1)
