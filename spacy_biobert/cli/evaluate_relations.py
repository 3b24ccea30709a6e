from pathlib import Path
from typing import Optional

import srsly
import typer
from wasabi import msg

from ._app import app


@app.command("evaluate-relations")
def evaluate_relations_cli(
    model: str = typer.Argument(..., help="Pipeline name or folder with biobert_relations"),
    corpus: Path = typer.Argument(
        ..., exists=True, help="Gold corpus: PubTator/BioC file or ChemProt split folder"
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the scores as JSON"),
    thresholds: str = typer.Option(
        "0.3,0.4,0.5,0.6,0.7", "--thresholds", help="Comma-separated probability thresholds"
    ),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N documents"),
    batch_size: int = typer.Option(16, "--batch-size", "-b"),
    entities: Optional[str] = typer.Option(
        None, "--entities",
        help="End to end: a pipeline with ner + biobert_linker (spacy-biobert add-linker) whose "
        "predicted, linked entities the relation component of MODEL pairs (gold_entities off)",
    ),
) -> None:
    """Relation P/R/F1 at several thresholds: micro over mention-level labels
    (ChemProt CPR groups) and document-level (PMID, head id, tail id) for
    concept labels (BC5CDR CID), as BioCreative scored them."""
    import spacy
    from spacy.util import registry

    from ..corpora._base import CorpusFormatError
    from ..corpora.formats import detect_format
    from ..scoring import evaluate_relations

    readers = {
        "pubtator": "spacy-biobert.PubTatorCorpus.v1",
        "bioc": "spacy-biobert.BioCCorpus.v1",
        "chemprot": "spacy-biobert.ChemProtCorpus.v1",
    }
    try:
        fmt = detect_format(corpus)
        if fmt not in readers:
            msg.fail(f"Relations are read from {', '.join(readers)} corpora, not {fmt}.", exits=1)
        values = [float(t) for t in thresholds.split(",") if t.strip()]
    except (ValueError, FileNotFoundError) as err:
        msg.fail(str(err), exits=1)
    nlp = spacy.load(model)
    if entities is not None:
        from ..linking.compose import add_relations

        nlp = add_relations(spacy.load(entities), nlp)
    reader = registry.readers.get(readers[fmt])(path=str(corpus), limit=limit)
    try:
        examples = list(reader(nlp))
    except CorpusFormatError as err:
        msg.fail(str(err), exits=1)
    results = evaluate_relations(nlp, examples, thresholds=values, batch_size=batch_size)
    rows = []
    for t, scores in results.items():
        for level in ("micro", "doc"):
            if f"rel_{level}_f" in scores:
                rows.append((t, level, *(f"{100 * scores[f'rel_{level}_{k}']:.2f}" for k in "prf")))
    msg.table(rows, header=("threshold", "level", "P", "R", "F1"), divider=True)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(
            output,
            {"model": model, "corpus": str(corpus), "documents": len(examples),
             "thresholds": {str(t): s for t, s in results.items()}},
        )
        msg.good(f"Saved scores to {output}")
