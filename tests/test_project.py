"""The `smoke` workflow runs the whole chain (train NER and CID relations
together on one transformer from the raw corpus, evaluate, assemble the
release pipeline with the KB, score CID end to end, package), and the
packaged wheel installs into a fresh virtual environment, loads by name and
annotates entities and document-level relations (`doc._.kb_relations`)."""
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
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
    end_to_end = json.loads((smoke_project / "metrics" / "smoke_cid_end_to_end.json").read_text())
    assert end_to_end["documents"] == 4 and "rel_doc_f" in end_to_end["thresholds"]["0.5"]
    # configs/package.cfg: one transformer that ner and the relations listen
    # to; the relations trained on gold entities run on predicted ones.
    release = smoke_project / "training" / "smoke-release"
    config = (release / "config.cfg").read_text()
    pipeline = '["biobert","ner","biobert_abbreviations","biobert_linker","biobert_relations"]'
    assert f"pipeline={pipeline}" in config.replace(" ", "")
    assert config.count('@architectures = "spacy-transformers.TransformerListener.v1"') == 2
    assert "Tok2VecTransformer" not in config
    cfg = json.loads((release / "biobert_relations" / "cfg").read_text())
    assert cfg["gold_entities"] is False and cfg["labels"] == ["CID"]


@pytest.mark.slow
def test_packaged_wheel_loads_in_a_fresh_venv(smoke_project, tmp_path):
    wheel = next((smoke_project / "packages").glob("*/dist/*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA")))
    assert re.search(r"^Requires-Dist: spacy-biobert\b", metadata.decode(), re.M)
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
        "import json, spacy\n"
        "from spacy.tokens import Span\n"
        "nlp = spacy.load('en_biobert_smoke')\n"
        "doc = nlp('Naloxone reverses the antihypertensive effect of clonidine.')\n"
        "print(nlp.pipe_names, len(doc), type(doc._.relations).__name__)\n"
        "# The relations of given entities (the smoke NER is barely trained):\n"
        "doc = nlp.make_doc('Naloxone reverses the hypotension of clonidine .')\n"
        "doc.ents = [Span(doc, 0, 1, 'Chemical'), Span(doc, 3, 4, 'Disease'), Span(doc, 5, 6, 'Chemical')]\n"
        "for name in ('biobert', 'biobert_linker', 'biobert_relations'):\n"
        "    doc = nlp.get_pipe(name)(doc)\n"
        "print(json.dumps({f'{h}-{t}': s for (h, t), s in sorted(doc._.relations.items())}))\n"
        "print(json.dumps({'ids': [e.kb_id_ for e in doc.ents], 'kb': sorted(doc._.kb_relations)}))\n"
    )
    out = subprocess.run([py, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert out.returncode == 0, out.stderr[-3000:]
    first, second, third = out.stdout.strip().splitlines()[-3:]
    pipe_names = "['biobert', 'ner', 'biobert_abbreviations', 'biobert_linker', 'biobert_relations']"
    assert first.startswith(pipe_names) and first.endswith(" dict")
    relations = json.loads(second)
    assert sorted(relations) == ["0-3", "5-3"]  # Chemical -> Disease pairs only
    assert all(set(s) == {"CID"} and 0.0 <= s["CID"] <= 1.0 for s in relations.values())
    # The KB built from the training split (build-kb-smoke) travels in the wheel:
    # the entities get MeSH ids and the relations are aggregated by them.
    linked = json.loads(third)
    assert linked["ids"] == ["D009270", "D007022", "D003000"]
    assert linked["kb"] == [["D003000", "D007022"], ["D009270", "D007022"]]
