from pathlib import Path
from typing import Optional

import srsly
import typer
from wasabi import msg

from ._app import app, load_pipeline_or_exit
from ._scoring import GOLD_FORMAT_HELP, GOLD_HELP


@app.command("evaluate")
def evaluate_cli(
    model: str = typer.Argument(..., help="Pipeline name or folder"),
    corpus: Path = typer.Argument(..., exists=True, help=GOLD_HELP),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the scores as JSON"),
    fmt: str = typer.Option("auto", "--format", "-f", help=GOLD_FORMAT_HELP),
    label_map: Optional[str] = typer.Option(
        None, "--label-map", help="Gold type mapping: a preset name (ncbi) or a JSON object"
    ),
    labels: Optional[str] = typer.Option(
        None, "--labels",
        help="Comma-separated labels to score (default: those present in the gold corpus); "
        "predictions of other labels are reported, not scored",
    ),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N documents"),
    batch_size: int = typer.Option(32, "--batch-size", "-b"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
) -> None:
    """Strict entity-level P/R/F1 (micro, and per type) at the corpus's own
    character offsets, as BioBERT and scispaCy report NER. Only the labels the
    gold corpus annotates (or --labels) are scored; predictions of other labels
    are counted apart, neither right nor wrong."""
    import spacy
    from tqdm import tqdm

    from ..evaluation import evaluate_ner, percent
    from ._app import label_map_option
    from ._scoring import prf_table, read_gold

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    mapping = label_map_option(label_map)
    keep = [x.strip() for x in labels.split(",") if x.strip()] if labels else None
    nlp = load_pipeline_or_exit(model)
    examples = read_gold(corpus, nlp, fmt, limit=limit)
    with tqdm(total=len(examples), desc="evaluate", unit="doc", disable=None) as bar:
        scores = evaluate_ner(
            nlp, examples, batch_size=batch_size, label_map=mapping, labels=keep,
            progress=bar.update,
        )
    result = scores.as_dict()
    # Percent with two decimals, as the figures have always been reported.
    result["ents_strict"] = percent(result["ents_strict"], 2)
    result["ents_per_type_strict"] = {
        k: percent(v, 2) for k, v in result["ents_per_type_strict"].items()
    }
    result["ents_token_widened"] = percent(result["ents_token_widened"], 2)
    result.update(model=str(model), corpus=str(corpus), label_map=mapping)
    rows = [("ALL", result["ents_strict"])] + list(result["ents_per_type_strict"].items())
    prf_table(rows, counts=("gold", "pred"))
    widened = result["ents_token_widened"]
    msg.info(
        f"{scores.documents} documents, {scores.words} words, {result['words_per_second']} words/s. "
        f"Against gold widened to token boundaries (spaCy's ents_f) F1 would read {widened['f']:.2f}; "
        f"{result['gold_mentions_not_on_token_boundaries']} gold mentions are not on token boundaries."
    )
    if "ents_overlaps_dropped" in result:
        msg.info(
            f"Overlap rule: {result['ents_overlaps_dropped']} of the "
            f"{result['ents_head_predictions']} predictions of the entity heads overlapped a "
            "longer or higher-priority one and were left out of doc.ents."
        )
    if scores.unscored:
        counts = ", ".join(f"{label} {n}" for label, n in scores.unscored.items())
        msg.warn(
            f"{sum(scores.unscored.values())} predictions of labels this corpus does not "
            f"annotate ({counts}) not scored (scored: {', '.join(scores.labels) or 'none'})."
        )
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(output, result)
        msg.good(f"Saved scores to {output}")
