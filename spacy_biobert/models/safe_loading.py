"""What a saved transformer may hold, checked before anything of it is loaded.

A pipeline folder, its bytes and a base-model folder are data. Hugging Face
loaders run code shipped with a model when asked (`trust_remote_code` with an
`auto_map` naming a `tokenization_*.py` or `modeling_*.py` file), and
spacy-transformers' `HFShim.from_bytes` writes the saved tokenizer files to a
temporary folder under the names stored in the bytes, then hands the saved
options to `AutoTokenizer.from_pretrained`. So before that happens we refuse:

- settings that ask for model code: `trust_remote_code` (true) or `auto_map`
  anywhere in the saved model config, a tokenizer JSON file, the tokenizer's
  load options or the initial configs (E007);
- tokenizer load options other than `use_fast`, which is all spacy-transformers
  saves (E007), and a `use_fast` that is not true or false (E019);
- file names that are not plain names (a path, `..`, a hidden file) or are not
  tokenizer data (`.json`, `.txt`, `.model`, `.vocab`): a code file is refused
  even without `auto_map` (E008);
- a component `model` saved as a folder (spacy-transformers v1.0), which
  spacy-transformers loads with the pipeline config's own settings (E009).

Pickled weights are refused by torch's `weights_only` loader (E005, see
`base_models.refused_pickles`).
"""
import json
import re
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple, Union

from ..errors import Errors

REMOTE_CODE_KEYS = ("trust_remote_code", "auto_map")
TOKENIZER_OPTIONS = ("use_fast",)
DATA_SUFFIXES = (".json", ".txt", ".model", ".vocab")
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
# The keys of a saved HFShim (spacy_transformers.layers.hf_shim.HFShim.to_bytes).
HF_PAYLOAD_KEYS = frozenset({"config", "state", "tokenizer"})


def check_transformer_payload(msg: Dict[str, Any], where: str) -> None:
    """Refuse a decoded HFShim payload that would run code or write outside
    its temporary folder when spacy-transformers loads it."""
    config = msg.get("config") or {}
    _check_settings(config, where, "the saved model config (config.json)")
    tokenizer = msg.get("tokenizer") or {}
    if not isinstance(tokenizer, dict):
        raise ValueError(Errors.E008.format(
            where=where, name=type(tokenizer).__name__, file="the saved tokenizer",
            reason="the tokenizer is not a mapping of file names to contents",
        ))
    for name, content in tokenizer.items():
        if name == "kwargs":
            _check_tokenizer_options(content, where)
            continue
        check_file_name(name, where, "a saved tokenizer file")
        if str(name).endswith(".json"):
            _check_settings(_json_or_none(content), where, f"the saved tokenizer file '{name}'")
    for key in ("_init_tokenizer_config", "_init_transformer_config"):
        _check_settings(msg.get(key) or {}, where, f"the saved {key.strip('_').replace('_', ' ')}")


def check_model_bytes(data: bytes, where: str) -> None:
    """Check every Hugging Face payload among the shims of a thinc model's
    bytes (the `model` file of a component, or its `model` field in bytes)."""
    import srsly

    msg = _msgpack_or_none(srsly, data)
    if not isinstance(msg, dict):
        return  # not a thinc model: spaCy's own loader reports it
    for node_shims in msg.get("shims") or []:
        for shim_bytes in node_shims or []:
            payload = _msgpack_or_none(srsly, shim_bytes)
            if isinstance(payload, dict) and HF_PAYLOAD_KEYS <= set(payload):
                check_transformer_payload(payload, where)


def check_component_folder(path: Union[str, Path], where: str) -> None:
    """Check a component's saved folder: its `model` file, or refuse a
    `model` folder (the v1.0 layout, loaded with the config's own settings)."""
    model = Path(path) / "model"
    if model.is_dir():
        raise ValueError(Errors.E009.format(where=where))
    if model.is_file():
        check_model_bytes(model.read_bytes(), where)


def check_pipeline_folder(path: Union[str, Path]) -> None:
    """Check every component folder of a saved pipeline, whatever its factory
    (spacy-transformers' own `transformer` included), before `spacy.load`."""
    root = Path(path)
    for component, folder in _component_folders(root):
        check_component_folder(folder, f"the component '{component}' in '{root}'")


def check_model_folder(path: Union[str, Path], where: str) -> None:
    """Check a base-model folder given by path: no settings asking for model
    code in its JSON files, and no code files."""
    folder = Path(path)
    for file in sorted(folder.iterdir()):
        if not file.is_file():
            continue
        if file.suffix in (".py", ".pyc", ".so", ".dll", ".dylib"):
            raise ValueError(Errors.E008.format(
                where=where, name=file.name, file=f"the folder '{folder}'",
                reason="it is a code file; a model folder holds only weights and settings",
            ))
        if file.suffix == ".json":
            _check_settings(_json_or_none(file.read_bytes()), where, f"'{file}'")


def check_file_name(name: Any, where: str, what: str) -> None:
    if not isinstance(name, str) or not PLAIN_NAME.fullmatch(name) or ".." in name:
        raise ValueError(Errors.E008.format(
            where=where, name=name, file=what,
            reason="it is not a plain file name (no folders, no '..', no leading dot)",
        ))
    if not name.endswith(DATA_SUFFIXES):
        raise ValueError(Errors.E008.format(
            where=where, name=name, file=what,
            reason=f"a tokenizer file is data ({', '.join(DATA_SUFFIXES)}), never code",
        ))


def _check_tokenizer_options(options: Any, where: str) -> None:
    _check_settings(options, where, "the saved tokenizer options")
    if not isinstance(options, dict):
        raise ValueError(Errors.E019.format(where=where, key="kwargs", value=options, kind="a mapping"))
    extra = sorted(set(options) - set(TOKENIZER_OPTIONS))
    if extra:
        raise ValueError(Errors.E007.format(
            where=where, key=extra[0], file=f"the saved tokenizer options (only {TOKENIZER_OPTIONS[0]})"
        ))
    if not isinstance(options.get("use_fast", True), bool):
        raise ValueError(Errors.E019.format(
            where=where, key="use_fast", value=options["use_fast"], kind="true or false"
        ))


def _check_settings(settings: Any, where: str, file: str) -> None:
    for path, value in _walk(settings):
        key = path.rsplit(".", 1)[-1]
        if key in REMOTE_CODE_KEYS and value not in (None, False, {}, [], ""):
            raise ValueError(Errors.E007.format(where=where, key=path, file=file))


def _walk(value: Any, prefix: str = "") -> Iterator[Tuple[str, Any]]:
    """(dotted key, value) of every mapping entry, nested ones included."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path, item
            yield from _walk(item, path)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, prefix)


def _json_or_none(content: Any) -> Optional[Any]:
    """Parsed JSON, or None where it is not JSON (the loader then reports it)."""
    try:
        return json.loads(content)
    except (TypeError, ValueError):
        return None


def _msgpack_or_none(srsly: Any, data: Any) -> Optional[Any]:
    if not isinstance(data, (bytes, bytearray)):
        return None
    try:
        return srsly.msgpack_loads(data)
    except (ValueError, TypeError):
        return None


def _component_folders(root: Path) -> Iterator[Tuple[str, Path]]:
    """(name, folder) of each component saved in the pipeline folder `root`."""
    from spacy.util import load_config

    config_path = root / "config.cfg"
    if not config_path.is_file():
        return
    names = load_config(config_path, interpolate=False).get("nlp", {}).get("pipeline", [])
    for name in names:
        if isinstance(name, str) and PLAIN_NAME.fullmatch(name) and (root / name).is_dir():
            yield name, root / name
