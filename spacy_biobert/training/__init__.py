"""Training helpers: a logger that records checkpoints, and resuming."""
from .logger import STATE_FILE, create_training_logger
from .resume import checkpoint_score, resume_config
from .steps import follow_max_steps

__all__ = ["STATE_FILE", "checkpoint_score", "create_training_logger", "follow_max_steps",
           "resume_config"]
