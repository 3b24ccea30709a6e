"""`spacy-biobert init-config` and `spacy-biobert debug-data`: your own labels
and data, from a config to the checks before the first step."""

from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer
from wasabi import msg

from ..corpora.formats import INPUT_FORMATS
from ._app import app

_FORMATS_HELP = ", ".join(("auto",) + INPUT_FORMATS)


@app.command("init-config")
def init_config_cli(
    output: Path = typer.Argument(..., dir_okay=False, help="The config file to write (e.g. my.cfg)"),
    entities: str = typer.Option(
        ..., "--entities", "-e", help="Entity labels, comma-separated: Drug,AdverseEvent"
    ),
    relation: Optional[List[str]] = typer.Option(
        None, "--relation", "-r",
        help="A relation: LABEL:HEAD->TAIL[,HEAD->TAIL...][:mention|document], e.g. "
        "CAUSES:Drug->AdverseEvent; repeat for more labels; none: NER only",
    ),
    train: Path = typer.Option(..., "--train", help="Training data: a file or folder of a corpus format"),
    dev: Path = typer.Option(..., "--dev", help="Development data, the same way"),
    fmt: str = typer.Option("auto", "--format", "-f", help=f"Format of train and dev: {_FORMATS_HELP}"),
    gpu: bool = typer.Option(False, "--gpu", help="Settings for a GPU (mixed precision, larger batches)"),
    linking: bool = typer.Option(
        False, "--linking",
        help="Add abbreviation detection and linking (kb_id_); on for document-level relations",
    ),
    kb: Optional[str] = typer.Option(
        None, "--kb", help="A knowledge base folder (spacy-biobert build-kb); default: the train split's ids"
    ),
    base_model: str = typer.Option(
        "minilm-offline", "--base-model", help="Base transformer: a local folder, an alias or a hub id"
    ),
    max_steps: int = typer.Option(600, "--max-steps", help="Training steps"),
    force: bool = typer.Option(False, "--force", help="Overwrite OUTPUT"),
) -> None:
    """Write a training config for your own entity and relation labels: NER and
    relations on one transformer, trained together from the first step
    (relations on gold entities), reading your files with the format table's
    reader. Then: spacy-biobert debug-data OUTPUT; spacy-biobert train OUTPUT."""
    from ..errors import Errors
    from ..training.own_config import describe, init_config

    if output.exists() and not force:
        msg.fail(Errors.E817.format(path=output), exits=1)
    one_format = None if fmt == "auto" else fmt
    try:
        config = init_config(
            entities.split(","), relation or [], train, dev, train_format=one_format,
            dev_format=one_format, gpu=gpu, linking=linking, kb=kb, base_model=base_model,
            max_steps=max_steps,
        )
    except (FileNotFoundError, ValueError) as err:
        msg.fail(str(err), exits=1)
    output.parent.mkdir(parents=True, exist_ok=True)
    config.to_disk(output)
    rows = [(key, str(value)) for key, value in describe(config).items()]
    msg.table(rows, divider=True, widths="auto", max_col=90)
    msg.good(f"Wrote {output}")
    msg.text(f"Next: spacy-biobert debug-data {output}", show=True)


@app.command(
    "debug-data",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def debug_data_cli(
    ctx: typer.Context,
    config_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="Training config"),
) -> None:
    """Check the training data against the config before the first step: per
    label the gold mentions and relations, relation arguments that name no
    mention, relation labels in the data but not in the config (and the
    reverse), candidate pairs and positives per label, entity-type pairs that
    never occur. Exits 1 where a relation label would train on nothing (its
    cause is named). Extra options override the config, as with `spacy train`."""
    from spacy.cli._util import parse_config_overrides, show_validation_error
    from spacy.util import load_config, load_model_from_config, resolve_dot_names

    from ..extensions import install_extensions
    from ..training.data_checks import Problem, check_relation_data

    install_extensions()
    overrides = parse_config_overrides(ctx.args)
    with show_validation_error(config_path):
        config = load_config(config_path, overrides=overrides, interpolate=False)
        nlp = load_model_from_config(config, auto_fill=True, validate=True)
        interpolated = nlp.config.interpolate()
        training = interpolated["training"]
        train_corpus, dev_corpus = resolve_dot_names(
            interpolated, [training["train_corpus"], training["dev_corpus"]]
        )
    try:
        train = list(train_corpus(nlp))
        dev = list(dev_corpus(nlp))
    except (FileNotFoundError, ValueError) as err:
        msg.fail(str(err), exits=1)
    msg.divider("Entities")
    train_ents = _entity_counts(train)
    dev_ents = _entity_counts(dev)
    msg.table(
        [(label, train_ents[label], dev_ents[label]) for label in sorted(set(train_ents) | set(dev_ents))]
        or [("(none)", 0, 0)],
        header=("label", f"train ({len(train)} docs)", f"dev ({len(dev)} docs)"),
        divider=True, aligns=("l", "r", "r"),
    )
    problems: List[Problem] = []
    init_settings = interpolated.get("initialize", {}).get("components", {})
    for name, pipe in nlp.pipeline:
        if nlp.get_pipe_meta(name).factory != "biobert_relations":
            continue
        settings: Dict[str, Any] = init_settings.get(name) or {}
        data_levels: Dict[str, str] = {}
        for eg in train:
            for rel in eg.reference._.gold_relations or []:
                data_levels.setdefault(rel["label"], rel.get("level", "mention"))
        labels = settings.get("labels")
        configured = labels is not None
        labels = list(labels) if configured else sorted(data_levels)
        concept = settings.get("concept_labels")
        if concept is None:
            concept = [label for label in labels if data_levels.get(label) == "concept"]
        report = check_relation_data(
            train, pipe.candidates, labels=labels, concept_labels=concept, name=name, configured=configured
        )
        dev_report = check_relation_data(
            dev, pipe.candidates, labels=labels, concept_labels=concept, name=name
        )
        msg.divider(f"Relations: {name}")
        rows = []
        for label in list(labels) + [x for x in report.data_labels if x not in labels]:
            rows.append((
                label if label in labels else f"{label} (not learned)",
                report.level_of(label) if label in labels else "-",
                report.data_level(label) or "-",
                report.relations[label],
                report.unresolved[label],
                report.positives(label) if label in labels else "-",
                dev_report.relations[label],
            ))
        msg.table(
            rows or [("(none)",) + ("-",) * 6],
            header=("label", "level", "data level", "train relations", "no mention", "positive pairs",
                    "dev relations"),
            divider=True, aligns=("l", "l", "l", "r", "r", "r", "r"),
        )
        msg.info(
            f"{report.candidate_pairs} candidate pairs on the gold entities of {report.documents} "
            f"training documents ({_types(report.candidate_types)})"
        )
        problems.extend(report.problems())
        if not pipe.cfg.get("gold_entities"):
            from ..errors import Warnings

            problems.append(Problem("W805", Warnings.W805.format(name=name)))
    msg.divider("Summary")
    errors = [p for p in problems if p.is_error]
    for problem in problems:
        (msg.fail if problem.is_error else msg.warn)(problem.message)
    if errors:
        msg.fail(f"{len(errors)} error(s): training would learn nothing for these labels", exits=1)
    msg.good(f"No blocking problem ({len(problems)} warning(s)). Next: spacy-biobert train {config_path}")


def _entity_counts(examples) -> Counter:
    return Counter(ent.label_ for eg in examples for ent in eg.reference.ents)


def _types(counts: Counter) -> str:
    if not counts:
        return "none"
    return ", ".join(f"{h} -> {t}: {n}" for (h, t), n in counts.most_common())
