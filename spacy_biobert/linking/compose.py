"""Putting the normalisation components into existing pipelines.

- `add_linking(nlp, kb)`: `biobert_abbreviations` + `biobert_linker` after the
  entity recogniser, with a loaded KB (what `spacy-biobert add-linker` saves).
- `add_relations(nlp, relation_nlp)`: source `biobert_relations` from a
  trained relation pipeline into an entity pipeline for end-to-end relation
  extraction from raw text: the relation component gets its own copy of the
  transformer it was trained with (`replace_listeners`), and
  `gold_entities = false`, so it pairs the entities `ner` + the linker
  predict and aggregates them by their `kb_id_` (`doc._.kb_relations`).
"""

from pathlib import Path
from typing import Any, Optional, Union

from ..errors import Errors
from .kb import NameKB


def add_linking(
    nlp: Any,
    kb: Union[NameKB, str, Path],
    *,
    threshold: Optional[float] = None,
    abbreviations: bool = True,
    linker_name: str = "biobert_linker",
) -> Any:
    """Add (or refresh) `biobert_abbreviations` and `biobert_linker` at the
    end of `nlp` (after `ner`), set the KB and return `nlp`."""
    if not isinstance(kb, NameKB):
        kb = NameKB.load(kb)
    if abbreviations and "biobert_abbreviations" not in nlp.pipe_names:
        if linker_name in nlp.pipe_names:
            nlp.add_pipe("biobert_abbreviations", before=linker_name)
        else:
            nlp.add_pipe("biobert_abbreviations")
    config = {"use_abbreviations": abbreviations}
    if threshold is not None:
        config["threshold"] = threshold
    if linker_name in nlp.pipe_names:
        linker = nlp.get_pipe(linker_name)
        linker.cfg.update(config)
    else:
        linker = nlp.add_pipe("biobert_linker", name=linker_name, config=config)
    linker.set_kb(kb)
    return nlp


def predicted_entities_only(nlp: Any) -> Any:
    """Switch every `biobert_relations` component of `nlp` to the entities the
    pipeline predicts (`gold_entities` off, in place), for end-to-end scoring.
    Returns `nlp`; E408 when it has none."""
    names = [n for n in nlp.pipe_names if nlp.get_pipe_meta(n).factory == "biobert_relations"]
    if not names:
        raise ValueError(
            Errors.E408.format(
                name="biobert_relations",
                what=f" in the pipeline (it has {', '.join(nlp.pipe_names)})",
                fix="pass a pipeline trained with biobert_relations and an entity recogniser "
                "(e.g. training/biomed-joint/model-best), or use --entities.",
            )
        )
    for name in names:
        nlp.get_pipe(name).cfg["gold_entities"] = False
    return nlp


def add_relations(
    nlp: Any,
    relation_nlp: Any,
    *,
    component: str = "biobert_relations",
    transformer: Optional[str] = None,
) -> Any:
    """Source `component` from `relation_nlp` (a pipeline or a path) into
    `nlp`, last, with its own copy of its transformer and gold_entities off.
    Returns `nlp`."""
    import spacy

    if not hasattr(relation_nlp, "pipe_names"):
        relation_nlp = spacy.load(relation_nlp)
    if component not in relation_nlp.pipe_names:
        raise ValueError(
            Errors.E408.format(
                name=component,
                what=f" in the relation pipeline (it has {', '.join(relation_nlp.pipe_names)})",
                fix="pass a pipeline trained with biobert_relations (e.g. training/cid/model-best).",
            )
        )
    if transformer is None:
        factories = {n: relation_nlp.get_pipe_meta(n).factory for n in relation_nlp.pipe_names}
        found = [n for n, f in factories.items() if f in ("biobert", "transformer")]
        transformer = found[0] if found else None
    if transformer is not None:
        relation_nlp.replace_listeners(transformer, component, ["model.tok2vec"])
    name = component if component not in nlp.pipe_names else f"{component}_e2e"
    nlp.add_pipe(component, name=name, source=relation_nlp)
    nlp.get_pipe(name).cfg["gold_entities"] = False
    return nlp
