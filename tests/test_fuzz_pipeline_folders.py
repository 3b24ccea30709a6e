"""Fuzz suite for loading pipeline folders you did not make (safe_loading).

Each case copies a clean saved pipeline and changes its transformer's saved
payload the way a hostile folder could: remote-code settings (`auto_map`,
`trust_remote_code`, true or not) at a random depth of the saved model config,
tokenizer files, tokenizer options or initial configs; tokenizer file names
that climb out of the temporary folder, are absolute, hidden or not plain
text; code files, with a payload that creates a marker file if it ever runs.
Every case is loaded with `spacy.load` and with `load_pipeline`.

Properties:
- no code runs (the marker never appears) and nothing is written outside the
  pipeline's folder (the traversal targets never appear);
- loading succeeds or raises a coded error ([E0xx]); no other exception;
- a case with a truthy remote-code setting, a non-plain file name or a code
  file is always refused.

Fast by default (a few derandomized cases); `-m slow` runs
`FUZZ_SLOW_EXAMPLES` (default 100) and prints the counts.
"""
import json
import os
import re
import shutil
import uuid
from collections import Counter
from pathlib import Path

import pytest
import spacy
import srsly
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from tiny_pipelines import save_tiny_ner_pipeline

from spacy_biobert.models.base_models import load_pipeline

FAST = settings(
    max_examples=int(os.environ.get("FUZZ_FAST_EXAMPLES", "8")),
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=list(HealthCheck),
)
SLOW = settings(FAST, max_examples=int(os.environ.get("FUZZ_SLOW_EXAMPLES", "100")))
COUNTS: Counter = Counter()
CODED = re.compile(r"\[E0\d\d\]")

EVIL = "from pathlib import Path\nPath({marker!r}).write_text('ran')\n"
TARGETS = ("config", "tokenizer_config.json", "kwargs", "_init_tokenizer_config")
REMOTE_KEYS = ("auto_map", "trust_remote_code")
VALUES = st.sampled_from([True, False, None, "", "x.Y", {}, {"AutoTokenizer": ["x.Y", None]}, [1]])


@st.composite
def mutations(draw):
    """A list of (kind, ...) changes to a saved transformer payload."""
    changes = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["setting", "name", "code"]))
        if kind == "setting":
            depth = draw(st.integers(0, 3))
            key = draw(st.sampled_from(REMOTE_KEYS + ("use_fast", "model_max_length", "note")))
            changes.append(("setting", draw(st.sampled_from(TARGETS)), depth, key, draw(VALUES)))
        elif kind == "name":
            style = draw(st.sampled_from(["climb", "absolute", "hidden", "folder", "suffix", "plain"]))
            changes.append(("name", style, draw(st.integers(1, 12))))
        else:
            changes.append(("code", draw(st.booleans())))  # with or without an auto_map
    return changes


@pytest.fixture(scope="module")
def clean(tiny_bert, tmp_path_factory) -> Path:
    return Path(save_tiny_ner_pipeline(tiny_bert, tmp_path_factory.mktemp("clean") / "model"))


def _apply(payload, change, marker: Path, outside: list) -> bool:
    """Apply one change; return whether it must be refused."""
    tok = payload["tokenizer"]
    if change[0] == "setting":
        _, target, depth, key, value = change
        nested = {key: value}
        for _ in range(depth):  # a fresh key per level: no change overwrites another
            nested = {f"nested-{uuid.uuid4().hex[:8]}": nested}
        if target == "tokenizer_config.json":
            settings_ = json.loads(tok[target])
            settings_.update(nested)
            tok[target] = json.dumps(settings_).encode()
        elif target == "kwargs":
            tok["kwargs"] = {**tok.get("kwargs", {}), **nested}
        elif target == "config":
            payload["config"].update(nested)
        else:
            payload[target] = {**(payload.get(target) or {}), **nested}
        return False  # judged on the final payload (_must_refuse_settings)
    if change[0] == "name":
        _, style, climb = change
        unique = f"fuzz-{uuid.uuid4().hex}"
        name = {
            "climb": "../" * climb + unique + ".txt",
            "absolute": f"/tmp/{unique}.txt",
            "hidden": f".{unique}.txt",
            "folder": f"sub/{unique}.txt",
            "suffix": f"{unique}.py",
            "plain": f"{unique}.txt",
        }[style]
        outside.extend([Path("/tmp") / f"{unique}.txt", Path("/") / f"{unique}.txt"])
        tok[name] = b"written"
        return style != "plain"
    _, with_map = change
    tok["tokenization_evil.py"] = EVIL.format(marker=str(marker)).encode()
    if with_map:
        settings_ = json.loads(tok["tokenizer_config.json"])
        settings_["auto_map"] = {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}
        tok["tokenizer_config.json"] = json.dumps(settings_).encode()
        tok["kwargs"] = {"use_fast": False, "trust_remote_code": True}
    return True


def _must_refuse_settings(payload) -> bool:
    """Whether the final payload holds a truthy remote-code setting anywhere,
    or tokenizer options other than a boolean use_fast."""
    tok = payload["tokenizer"]
    options = tok.get("kwargs", {})
    if set(options) - {"use_fast"} or not isinstance(options.get("use_fast", True), bool):
        return True
    parts = [payload["config"], payload.get("_init_tokenizer_config") or {}]
    parts += [json.loads(v) for k, v in tok.items() if k.endswith(".json")]
    return any(_truthy_anywhere(part) for part in parts)


def _truthy_anywhere(value) -> bool:
    if isinstance(value, dict):
        return any(
            (k in REMOTE_KEYS and v not in (None, False, {}, [], "")) or _truthy_anywhere(v)
            for k, v in value.items()
        )
    return isinstance(value, list) and any(_truthy_anywhere(v) for v in value)


def _check_case(clean: Path, tmp: Path, changes) -> None:
    folder = tmp / f"case-{uuid.uuid4().hex}"
    shutil.copytree(clean, folder)
    marker = tmp / f"RAN-{uuid.uuid4().hex}"
    outside: list = []
    model = folder / "biobert" / "model"
    msg = srsly.msgpack_loads(model.read_bytes())
    node = next(i for i, shims in enumerate(msg["shims"]) if shims)
    payload = srsly.msgpack_loads(msg["shims"][node][0])
    must_refuse = False
    for change in changes:
        must_refuse |= _apply(payload, change, marker, outside)
    must_refuse |= _must_refuse_settings(payload)
    msg["shims"][node][0] = srsly.msgpack_dumps(payload)
    model.write_bytes(srsly.msgpack_dumps(msg))
    for load in (spacy.load, load_pipeline):
        try:
            load(folder)
        except (ValueError, OSError) as err:
            assert CODED.search(str(err)), f"uncoded error for {changes}: {err}"
            COUNTS["refused"] += 1
        else:
            assert not must_refuse, f"loaded a case that must be refused: {changes}"
            COUNTS["loaded"] += 1
        assert not marker.exists(), f"code ran: {changes}"
        assert not any(p.exists() for p in outside), f"written outside: {changes}"
    COUNTS["cases"] += 1
    COUNTS["must_refuse"] += must_refuse
    shutil.rmtree(folder)


@FAST
@given(changes=mutations())
def test_hostile_pipeline_folders_run_nothing_and_write_nothing_outside(clean, tmp_path_factory, changes):
    _check_case(clean, tmp_path_factory.mktemp("fuzz"), changes)


@pytest.mark.slow
@SLOW
@given(changes=mutations())
def test_hostile_pipeline_folders_slow_profile(clean, tmp_path_factory, changes):
    _check_case(clean, tmp_path_factory.mktemp("fuzz"), changes)


def teardown_module(module) -> None:
    if COUNTS:
        print(f"\npipeline-folder fuzz: {dict(COUNTS)}")
