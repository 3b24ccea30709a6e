"""Score the last step of a finished run when no evaluation covered it.

spaCy evaluates every `eval_frequency` steps *of its own process*: a run whose
max_steps is off that grid, or a resumed one (its process starts the grid at
the resume: biomed's stage 2, resumed at steps 153 and 343, was evaluated at
643 and 943 and never at its last step, 1,200), ends with steps that model-last
holds and no evaluation scored. `evaluate_last_step` evaluates model-last on
the run's dev corpus as spaCy's loop does, records it (model-last's meta, the
state, the curve) and makes it model-best when it scores at least as high,
the rule spaCy's loop applies at each evaluation.
"""
import shutil
import time
from pathlib import Path
from typing import NamedTuple, Optional

import srsly
from thinc.api import Config

from .curve import append_point, curve_point
from .logger import STATE_FILE, peak_rss_mb, predict_gold_relations_only_in_score
from .memory import release_freed_memory
from .resume import checkpoint_score


class LastStep(NamedTuple):
    """What `evaluate_last_step` found."""

    step: int  # the run's last step, now evaluated
    evaluated_step: int  # the last step evaluated before
    score: float  # the last step's weighted score
    best_score: float  # model-best's before (the same weights)
    is_best: bool  # model-best is now the last step


def unevaluated_last_step(output: Path) -> Optional[int]:
    """The last step of the run in OUTPUT when no evaluation covered it, else None."""
    state_path = Path(output) / STATE_FILE
    if not state_path.exists():
        return None
    state = srsly.read_json(state_path)
    step = int(state["step"])
    return step if int(state.get("evaluated_step", step)) < step else None


def evaluate_last_step(config: Config, output: Path) -> Optional[LastStep]:
    """Evaluate OUTPUT/model-last when it holds steps after the run's last
    evaluation (`config`: the run's interpolated config, whose [training]
    names the dev corpus); None when the last step was evaluated already."""
    import spacy
    from spacy.training.loop import create_evaluation_callback
    from spacy.util import resolve_dot_names

    output = Path(output)
    step = unevaluated_last_step(output)
    if step is None:
        return None
    state = srsly.read_json(output / STATE_FILE)
    started = time.time()
    last = output / "model-last"
    nlp = spacy.load(last)
    predict_gold_relations_only_in_score(nlp)
    (dev_corpus,) = resolve_dot_names(config, [config["training"]["dev_corpus"]])
    weights = nlp.config["training"]["score_weights"]
    score, scores = create_evaluation_callback(nlp, dev_corpus, weights)()
    del nlp
    release_freed_memory()

    # model-last's meta as spaCy's `update_meta` writes it at an evaluation
    # (no losses: they are summed between evaluations and were not logged)
    meta_path = last / "meta.json"
    meta = srsly.read_json(meta_path)
    meta["performance"] = {key: scores.get(key, 0.0) for key in weights if key is not None}
    srsly.write_json(meta_path, meta)

    best_dir = output / "model-best"
    best_score = checkpoint_score(best_dir) if best_dir.exists() else float("-inf")
    is_best = score >= best_score
    if is_best:
        shutil.rmtree(best_dir, ignore_errors=True)
        shutil.copytree(last, best_dir)
    seconds = float(state.get("seconds", 0.0)) + time.time() - started
    peak = max(float(state.get("peak_rss_mb", 0.0)), peak_rss_mb())
    info = {"score": score, "other_scores": scores, "losses": {}}
    append_point(output, curve_point(step, info, seconds, peak))
    evaluated_before = int(state.pop("evaluated_step"))
    state.update(score=score, other_scores=scores, seconds=round(seconds, 1), peak_rss_mb=peak)
    srsly.write_json(output / STATE_FILE, state)
    return LastStep(step, evaluated_before, score, best_score, is_best)
