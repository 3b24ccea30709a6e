"""Every registered name is declared in setup.cfg's entry points and vice versa,
and every declared entry point resolves to the decorated function."""
import configparser
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from spacy.util import registry

import spacy_biobert  # noqa: F401  (registers everything by decorator)

SETUP_CFG = Path(__file__).resolve().parents[1] / "setup.cfg"
GROUPS = {
    "spacy_factories": registry.factories,
    "spacy_architectures": registry.architectures,
    "spacy_readers": registry.readers,
    "spacy_misc": registry.misc,
    "spacy_tokenizers": registry.tokenizers,
    "spacy_loggers": registry.loggers,
    "spacy_callbacks": registry.callbacks,
    "spacy_scorers": registry.scorers,
}


def declared():
    cfg = configparser.ConfigParser()
    cfg.read(SETUP_CFG)
    section = cfg["options.entry_points"]
    out = {}
    for group in GROUPS:
        lines = [ln.strip() for ln in section.get(group, "").splitlines() if ln.strip()]
        out[group] = dict(tuple(part.strip() for part in ln.split("=", 1)) for ln in lines)
    return out


def ours(group):
    names = registry_names(GROUPS[group])
    if group == "spacy_factories":
        return {n for n in names if n.startswith("biobert")}
    return {n for n in names if n.startswith("spacy-biobert.")}


def registry_names(reg):
    # Only names registered in this process by decorator (not via entry points).
    return set(reg.get_all().keys())


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_decorated_names_are_declared(group):
    assert ours(group) == set(declared()[group])


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_declared_entry_points_resolve(group):
    import importlib

    for name, target in declared()[group].items():
        module, attr = target.split(":")
        func = getattr(importlib.import_module(module), attr)
        registered = GROUPS[group].get(name)
        if group == "spacy_factories" and registered is not func:
            # A stateless component (@Language.component) is registered as a
            # factory that returns the function itself.
            assert registered(None, name) is func, f"{name} resolves to {registered}"
        elif group == "spacy_factories":
            # spaCy registers the factory under its name, wrapping nothing.
            assert registered is func
        else:
            assert registered is func, f"{name} resolves to {registered}, not {target}"


def test_installed_metadata_matches_setup_cfg():
    """The installed distribution (what spaCy reads) declares the same entry points."""
    for group, names in declared().items():
        installed = {ep.name: ep.value for ep in entry_points(group=group)}
        for name, target in names.items():
            assert installed.get(name) == target, (
                f"entry point {group}:{name} is not installed; run pip install -e ."
            )
