from typing import Optional

import typer
from wasabi import msg

from ._app import app


@app.command("show")
def show_cli(
    model: str = typer.Argument(..., help="Pipeline name or folder"),
    text: Optional[str] = typer.Option(
        None, "--text", "-t", help="Text to annotate (default: read standard input)"
    ),
) -> None:
    """Print the entities (and relations, if the pipeline has them) found in a text."""
    import sys

    import spacy

    from ..extensions import install_extensions

    if text is None:
        text = sys.stdin.read()
    install_extensions()
    nlp = spacy.load(model)
    doc = nlp(text)
    msg.text(doc.text)
    rows = [(e.start_char, e.end_char, e.text, e.label_, e.kb_id_ or "") for e in doc.ents]
    msg.table(rows, header=("start", "end", "text", "label", "id"), divider=True)
    msg.good(f"{len(doc.ents)} entities")
    relations = doc._.relations or {}
    if relations:
        by_start = {e.start: e for e in doc.ents}
        rel_rows = []
        for (h, t), scores in relations.items():
            for label, p in sorted(scores.items(), key=lambda x: -x[1]):
                if p >= 0.5:
                    rel_rows.append((by_start[h].text, label, by_start[t].text, f"{p:.2f}"))
        if rel_rows:
            msg.table(rel_rows, header=("head", "relation", "tail", "p"), divider=True)
