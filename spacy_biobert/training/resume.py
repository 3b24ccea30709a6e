"""Resume a training run from its last checkpoint (OUTPUT/model-last).

The checkpoint's components are *sourced* (spaCy then calls
`resume_training`), the remaining steps are run, and the linear learning-rate
schedule continues where it stopped. Adam's moment estimates are not saved by
spaCy, so they restart; the first steps after a resume are therefore not
bit-identical to an uninterrupted run.
"""
from pathlib import Path
from typing import Any, Dict, Tuple

import srsly
from thinc.api import Config

from ..errors import Errors
from .logger import STATE_FILE


def resume_config(config: Config, output: Path) -> Tuple[Config, Dict[str, Any]]:
    """The config that continues the run saved in `output`, and its state."""
    state_path = output / STATE_FILE
    last = output / "model-last"
    if not state_path.exists() or not last.exists():
        raise ValueError(Errors.E010.format(output=output))
    state = srsly.read_json(state_path)
    done = int(state["step"])
    config = config.copy()
    training = config["training"]
    max_steps = int(training["max_steps"])
    if max_steps and done >= max_steps:
        raise ValueError(Errors.E011.format(output=output, step=done, max_steps=max_steps))
    for name in config["nlp"]["pipeline"]:
        config["components"][name] = {"source": str(last.resolve())}
    if max_steps:
        training["max_steps"] = max_steps - done
    logger = training.get("logger", {})
    if logger.get("@loggers") == "spacy-biobert.TrainingLogger.v1":
        # The state keeps counting from the start of the whole run, so a
        # second resume continues from the right step.
        logger["step_offset"] = done
        logger["seconds_offset"] = float(state.get("seconds", 0.0))
    lr = training["optimizer"].get("learn_rate")
    if isinstance(lr, dict) and lr.get("@schedules") == "warmup_linear.v1":
        warmup, total = int(lr["warmup_steps"]), int(lr["total_steps"])
        if done >= warmup:
            lr["initial_rate"] = float(lr["initial_rate"]) * max(0.0, total - done) / max(1, total - warmup)
            lr["warmup_steps"] = 0
        else:
            lr["warmup_steps"] = warmup - done
        lr["total_steps"] = max(1, total - done)
    return config, state


def checkpoint_score(model_dir: Path) -> float:
    """The weighted score spaCy selected `model_dir` by: its config's
    [training.score_weights] over the performance in its meta.json."""
    from spacy.util import load_config

    meta_path, config_path = model_dir / "meta.json", model_dir / "config.cfg"
    if not meta_path.exists() or not config_path.exists():
        return 0.0
    performance = srsly.read_json(meta_path).get("performance", {})
    weights = load_config(config_path, interpolate=False)["training"]["score_weights"]
    return sum(
        float(w) * float(performance.get(key) or 0.0) for key, w in weights.items() if w
    )
