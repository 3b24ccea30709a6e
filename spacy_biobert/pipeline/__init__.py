"""Pipeline components (factories)."""
from .transformer import make_biobert

__all__ = ["make_biobert"]
