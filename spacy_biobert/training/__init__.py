"""Training helpers: a logger that records checkpoints and the dev curve, and resuming."""
from .curve import CURVE_FILE, flattening_step, read_curve
from .logger import STATE_FILE, create_training_logger
from .resume import (
    RUN_FILE,
    SUPERSEDED_DIR,
    EarlierRun,
    check_earlier_run,
    checkpoint_score,
    early_stoppers,
    record_finished,
    record_run,
    resume_config,
    set_aside_run,
)
from .steps import follow_max_steps

__all__ = ["CURVE_FILE", "RUN_FILE", "STATE_FILE", "SUPERSEDED_DIR", "EarlierRun",
           "check_earlier_run", "checkpoint_score", "create_training_logger", "early_stoppers",
           "flattening_step", "follow_max_steps", "read_curve", "record_finished", "record_run",
           "resume_config", "set_aside_run"]
