from typing import Optional

import typer
from wasabi import msg

from ._app import app, load_pipeline_or_exit


@app.command("show")
def show_cli(
    model: str = typer.Argument(..., help="Pipeline name or folder"),
    text: Optional[str] = typer.Option(
        None, "--text", "-t", help="Text to annotate (default: read standard input)"
    ),
    threshold: Optional[float] = typer.Option(
        None,
        "--threshold",
        help="Show relations scored at least this (default: the threshold the pipeline's "
        "biobert_relations was configured with)",
    ),
) -> None:
    """Print the entities (and relations, if the pipeline has them) found in a text."""
    import sys

    from ..extensions import install_extensions, predicted_relations
    from ..pipeline.relations import resolve_threshold

    install_extensions()
    # refused pickles (E005), torch < 2.6 (E006) and a missing pipeline: one line each
    nlp = load_pipeline_or_exit(model)
    try:
        threshold = resolve_threshold(nlp, threshold)
    except ValueError as err:
        msg.fail(f"--threshold: {err}", exits=1)
    if text is None:
        text = sys.stdin.read()
    doc = nlp(text)
    msg.text(doc.text)
    rows = [(e.start_char, e.end_char, e.text, e.label_, e.kb_id_ or "") for e in doc.ents]
    msg.table(rows, header=("start", "end", "text", "label", "id"), divider=True)
    msg.good(f"{len(doc.ents)} entities")
    names = {}
    for ent in doc.ents:
        for kb_id in (ent.kb_id_ or "").replace("+", "|").split("|"):
            names.setdefault(kb_id, ent.text)
    rel_rows = []
    for r in predicted_relations(doc, threshold):
        if r["level"] == "concept":
            head = f"{names.get(r['head'], '')} ({r['head']})"
            tail = f"{names.get(r['tail'], '')} ({r['tail']})"
        else:
            head = doc.text[r["head"][0] : r["head"][1]]
            tail = doc.text[r["tail"][0] : r["tail"][1]]
        rel_rows.append((head, r["label"], tail, f"{r['score']:.2f}"))
    if rel_rows:
        msg.table(rel_rows, header=("head", "relation", "tail", "p"), divider=True)
