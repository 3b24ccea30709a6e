"""The learning-rate schedule's `total_steps` follows `--training.max_steps`.

The committed configs write `total_steps` out as a number equal to
`[training] max_steps` (not `${training.max_steps}`: spaCy resolves
`[training.optimizer]` on its own in `nlp.initialize()`, which `spacy debug
data` calls, and a variable there is an unresolved string). So that
`spacy-biobert train CONFIG --training.max_steps N` still decays the rate to
zero at step N, as the interpolated configs did, `follow_max_steps` adds
`training.optimizer.learn_rate.total_steps = N` to the overrides when the
config's `total_steps` equals its `max_steps` and no override sets it.
"""
from pathlib import Path
from typing import Any, Dict, Union


def follow_max_steps(config_path: Union[str, Path], overrides: Dict[str, Any]) -> Dict[str, Any]:
    """`overrides`, with `total_steps` following an overridden `max_steps`."""
    from spacy.util import load_config

    key = "training.optimizer.learn_rate.total_steps"
    if "training.max_steps" not in overrides or key in overrides:
        return overrides
    training = load_config(config_path, interpolate=False).get("training", {})
    learn_rate = training.get("optimizer", {}).get("learn_rate")
    if not isinstance(learn_rate, dict) or "total_steps" not in learn_rate:
        return overrides
    if learn_rate["total_steps"] != training.get("max_steps"):
        return overrides
    return {**overrides, key: overrides["training.max_steps"]}
