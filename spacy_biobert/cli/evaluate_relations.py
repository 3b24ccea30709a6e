from pathlib import Path
from typing import Optional

import srsly
import typer
from wasabi import msg

from ._app import app, load_pipeline_or_exit
from ._scoring import GOLD_FORMAT_HELP, GOLD_HELP

DEFAULT_THRESHOLDS = "0.3,0.4,0.5,0.6,0.7"


@app.command("evaluate-relations")
def evaluate_relations_cli(
    model: str = typer.Argument(..., help="Pipeline name or folder with biobert_relations"),
    corpus: Path = typer.Argument(..., exists=True, help=GOLD_HELP),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the scores as JSON"),
    fmt: str = typer.Option("auto", "--format", "-f", help=GOLD_FORMAT_HELP),
    thresholds: Optional[str] = typer.Option(
        None,
        "--thresholds",
        help="Comma-separated probability thresholds (default: 0.3,0.4,0.5,0.6,0.7 and the "
        "threshold the pipeline's biobert_relations was configured with)",
    ),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N documents"),
    batch_size: int = typer.Option(16, "--batch-size", "-b"),
    entities: Optional[str] = typer.Option(
        None, "--entities",
        help="End to end: a pipeline with ner + biobert_linker (spacy-biobert add-linker) whose "
        "predicted, linked entities the relation component of MODEL pairs (gold_entities off)",
    ),
    label_map: Optional[str] = typer.Option(
        None, "--label-map",
        help="Rename gold entity types (a preset such as chemprot, or a JSON object), for a "
        "relation component trained on mapped types (configs/biomed_joint.cfg)",
    ),
    end_to_end: bool = typer.Option(
        False, "--end-to-end",
        help="Score MODEL's relations on the entities MODEL itself predicts (its relation "
        "components' gold_entities off), e.g. the biomed pipeline with ChemProt relations",
    ),
) -> None:
    """Relation P/R/F1 at several thresholds: micro over mention-level labels
    (ChemProt CPR groups) and document-level (PMID, head id, tail id) for
    concept labels (BC5CDR CID), as BioCreative scored them."""

    from ..evaluation import evaluate_relations
    from ..pipeline.relations import pipeline_threshold
    from ._app import label_map_option
    from ._scoring import read_gold

    try:
        values = [float(t) for t in (thresholds or DEFAULT_THRESHOLDS).split(",") if t.strip()]
    except ValueError as err:
        msg.fail(str(err), exits=1)
    mapping = label_map_option(label_map)
    nlp = load_pipeline_or_exit(model)
    if end_to_end:
        from ..linking.compose import predicted_entities_only

        try:
            predicted_entities_only(nlp)
        except ValueError as err:
            msg.fail(str(err), exits=1)
    if entities is not None:
        from ..linking.compose import add_relations

        nlp = add_relations(load_pipeline_or_exit(entities), nlp)
    own = pipeline_threshold(nlp)
    if thresholds is None and own not in values:
        values = sorted(values + [own])
    examples = read_gold(corpus, nlp, fmt, limit=limit, label_map=mapping)
    results = evaluate_relations(
        nlp, examples, thresholds=values, batch_size=batch_size, label_map=mapping
    )
    rows = []
    for t, scores in results.items():
        for level in ("micro", "doc"):
            if f"rel_{level}_f" in scores:
                mark = f"{t} (pipeline)" if t == own else t
                rows.append((mark, level, *(f"{100 * scores[f'rel_{level}_{k}']:.2f}" for k in "prf")))
    msg.table(rows, header=("threshold", "level", "P", "R", "F1"), divider=True)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        # The scores in the JSON are fractions, as they have always been.
        srsly.write_json(
            output,
            {"model": model, "corpus": str(corpus), "documents": len(examples),
             "pipeline_threshold": own,
             "thresholds": {str(t): s for t, s in results.items()}},
        )
        msg.good(f"Saved scores to {output}")
