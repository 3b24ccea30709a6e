"""The `smoke` workflow runs the whole chain (train from the raw corpus,
evaluate, package), and the packaged wheel installs into a fresh virtual
environment and loads by name."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke_project(tmp_path_factory, corpora_dir, offline_model):
    project = tmp_path_factory.mktemp("project")
    shutil.copy(ROOT / "project.yml", project)
    shutil.copytree(ROOT / "configs", project / "configs")
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "smoke", str(project),
         "--vars.corpora", str(corpora_dir)],
        capture_output=True, text=True, env=env,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return project


@pytest.mark.slow
def test_smoke_workflow_trains_evaluates_and_packages(smoke_project):
    scores = json.loads((smoke_project / "metrics" / "smoke_dev.json").read_text())
    assert scores["documents"] == 4
    assert set(scores["ents_strict"]) >= {"p", "r", "f"}
    assert list((smoke_project / "packages").glob("*/dist/*.whl"))


@pytest.mark.slow
def test_packaged_wheel_loads_in_a_fresh_venv(smoke_project, tmp_path):
    wheel = next((smoke_project / "packages").glob("*/dist/*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")

    def pip(*args):
        r = subprocess.run([py, "-m", "pip", "install", "--quiet", *args],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-3000:]

    pip("torch==2.13.0")  # the CPU build, before anything asks for torch
    pip(str(ROOT), str(wheel))
    code = (
        "import spacy\n"
        "nlp = spacy.load('en_biobert_smoke')\n"
        "doc = nlp('Naloxone reverses the antihypertensive effect of clonidine.')\n"
        "print(nlp.pipe_names, len(doc))\n"
    )
    out = subprocess.run([py, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "['biobert', 'ner']" in out.stdout
