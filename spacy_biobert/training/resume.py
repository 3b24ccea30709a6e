"""Resume a training run from its last checkpoint (OUTPUT/model-last).

`spacy-biobert train --resume-if-unfinished` resumes only the run its own
settings started: a fresh run records a fingerprint of its settings in
OUTPUT/training_run.json (`run_fingerprint`: the interpolated config, and the
content of every file its [paths] name), and `check_earlier_run` compares it,
so a project workflow killed mid-training continues where it stopped when run
again, and starts afresh when the config, the corpora or the base model
changed. Content, not modification times: a corpus folder copied or mounted
anew (as in a fresh checkout beside `../shared`) is the same data. An
unfinished run that is not resumed is set aside in OUTPUT/superseded, not
deleted (spaCy's `train` clears model-best and model-last).

The checkpoint's components are *sourced* (spaCy then calls
`resume_training`), the remaining steps are run, and the linear learning-rate
schedule continues where it stopped. Adam's moment estimates are not saved by
spaCy, so they restart; the first steps after a resume are therefore not
bit-identical to an uninterrupted run.
"""
import hashlib
import shutil
from pathlib import Path
from typing import Any, Dict, Iterator, NamedTuple, Optional, Tuple

import srsly
from thinc.api import Config

from ..corpora.io import file_sha256
from ..errors import Errors
from .curve import CURVE_FILE
from .logger import STATE_FILE

RUN_FILE = "training_run.json"
SUPERSEDED_DIR = "superseded"
# Steps over which a resumed run's rate ramps up again (`_continued_schedule`):
# about what Adam's first moment (beta1 0.9) takes to fill again.
RESUME_WARMUP_STEPS = 20
# What makes up a run in OUTPUT: what `set_aside_run` moves.
RUN_PARTS = ("model-best", "model-last", STATE_FILE, RUN_FILE, CURVE_FILE)


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
        lr.update(_continued_schedule(int(lr["warmup_steps"]), int(lr["total_steps"]),
                                      float(lr["initial_rate"]), done))
    return config, state


def _continued_schedule(warmup: int, total: int, rate: float, done: int) -> Dict[str, Any]:
    """warmup_linear.v1 settings for the steps after `done`: the same linear
    decay to zero at `total`, reached after a short warm-up again. spaCy does
    not save Adam's moments, so they restart, and Adam's first bias-corrected
    steps move every weight by about the full rate whatever its gradient's
    noise (one update after a resume at 8e-5, stage 2 of biomed had moved
    ChemProt relation P/R from 28/16 to 12/45). Past `RESUME_WARMUP_STEPS` the
    rate is exactly the uninterrupted schedule's."""
    remaining = max(1, total - done)
    if done < warmup:  # still warming up: the ramp goes on to `rate`
        return {"warmup_steps": warmup - done, "total_steps": remaining, "initial_rate": rate}
    rewarm = min(RESUME_WARMUP_STEPS, remaining - 1)
    return {
        "warmup_steps": rewarm,
        "total_steps": remaining,
        "initial_rate": rate * max(0, total - done - rewarm) / max(1, total - warmup),
    }


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


def run_fingerprint(config: Config) -> str:
    """What identifies a run's settings: the interpolated config, and the
    sha256 of every file under each [paths] value that names an existing file
    or folder (corpora, the base model, a sourced pipeline), with its path
    inside that value: the same bytes elsewhere, or copied anew, are the
    same settings; one changed byte is not."""
    digest = hashlib.sha256(config.to_str().encode("utf8"))
    for _, value in sorted(config.get("paths", {}).items()):
        if isinstance(value, str) and value and Path(value).exists():
            for name, content_hash in _file_hashes(Path(value)):
                digest.update(f"{name}\t{content_hash}\n".encode("utf8"))
    return digest.hexdigest()


def _file_hashes(path: Path) -> Iterator[Tuple[str, str]]:
    files = [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.is_file())
    for f in files:
        yield (f.name if f == path else f.relative_to(path).as_posix()), file_sha256(f)


def record_run(config: Config, output: Path) -> None:
    """Before a fresh run: its fingerprint in OUTPUT/training_run.json, and no
    state left from an earlier run in OUTPUT (which a resume would take for
    this run's until the first evaluation overwrote it)."""
    (output / STATE_FILE).unlink(missing_ok=True)
    srsly.write_json(output / RUN_FILE, {"fingerprint": run_fingerprint(config)})


class EarlierRun(NamedTuple):
    """What `check_earlier_run` found in OUTPUT."""

    resume: bool  # a run of these settings stopped before max_steps
    set_aside: bool  # an unfinished run of other (or unrecorded) settings: keep it
    why: str  # in words, for the user


def check_earlier_run(config: Config, output: Path) -> EarlierRun:
    """Whether OUTPUT holds a run of these settings (`config`, interpolated)
    that stopped before max_steps, and why (not), in words."""
    state_path, run_path = output / STATE_FILE, output / RUN_FILE
    if not state_path.exists() or not (output / "model-last").exists():
        return EarlierRun(False, False, f"no earlier run in {output}")
    state = srsly.read_json(state_path)
    done, max_steps = int(state["step"]), int(config["training"]["max_steps"])
    if not run_path.exists():
        return EarlierRun(False, True, f"the run in {output} has no {RUN_FILE} "
                          "(it predates --resume-if-unfinished)")
    if srsly.read_json(run_path).get("fingerprint") != run_fingerprint(config):
        return EarlierRun(False, True, f"the run in {output} was made with other settings "
                          "(config, corpora or base model changed since)")
    if max_steps and done >= max_steps:
        return EarlierRun(False, False, f"the run in {output} finished (step {done} of {max_steps})")
    if state.get("finished"):
        return EarlierRun(False, False, f"the run in {output} finished at step {done} of "
                          f"{max_steps or 'unlimited'} (stopped by {early_stoppers(config)})")
    return EarlierRun(True, False,
                      f"the run in {output} stopped at step {done} of {max_steps or 'unlimited'}")


def early_stoppers(config: Config) -> str:
    """The settings that can end spaCy's loop before max_steps, in words."""
    max_epochs = int(config["training"].get("max_epochs", 0))
    return "training.patience" + (" or training.max_epochs" if max_epochs > 0 else "")


def record_finished(output: Path) -> None:
    """Mark the run in OUTPUT as ended by its own loop (max_steps reached, or
    stopped early by `training.patience` or `training.max_epochs`), so
    `check_earlier_run` does not take a run that stopped early for one a kill
    cut short. The logger writes a
    fresh state at every checkpoint, so a resumed run drops the mark."""
    state_path = output / STATE_FILE
    if state_path.exists():
        srsly.write_json(state_path, dict(srsly.read_json(state_path), finished=True))


def set_aside_run(output: Path) -> Optional[Path]:
    """Move the run in OUTPUT (its models, state, fingerprint and curve) into
    OUTPUT/superseded, replacing one set aside before; None if nothing moved."""
    parts = [output / name for name in RUN_PARTS if (output / name).exists()]
    if not parts:
        return None
    aside = output / SUPERSEDED_DIR
    shutil.rmtree(aside, ignore_errors=True)
    aside.mkdir()
    for part in parts:
        shutil.move(str(part), str(aside / part.name))
    return aside
