from typing import Optional

import typer
from wasabi import msg

from ._app import app


@app.command("info")
def info_cli(
    model: Optional[str] = typer.Argument(
        None, help="Base model name, alias or folder to resolve"
    ),
) -> None:
    """Show the version, the known base-model aliases and where a name resolves."""
    from ..about import __version__
    from ..models import KNOWN_MODELS, resolve_model_name

    msg.info(f"spacy-biobert {__version__}")
    msg.table(
        [(alias, m.source, "cased" if m.cased else "uncased") for alias, m in KNOWN_MODELS.items()],
        header=("alias", "source", "casing"),
    )
    if model is not None:
        try:
            source, _ = resolve_model_name(model)
        except ValueError as err:
            msg.fail(str(err), exits=1)
        msg.good(f"{model} -> {source}")
