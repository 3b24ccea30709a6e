"""`ner` listening to `biobert`: trains, saves, reloads in a fresh process
(without importing spacy_biobert, via entry points), and survives
`replace_listeners`."""
import json
import subprocess
import sys

import pytest
import spacy
from spacy.training import Example


def _ents(text, *mentions):
    return (text, [(text.index(m), text.index(m) + len(m), label) for m, label in mentions])


TRAIN = [
    _ents("Cocaine induced acute heart failure .",
          ("Cocaine", "Chemical"), ("acute heart failure", "Disease")),
    _ents("Lithium causes nephrotoxicity in rats .",
          ("Lithium", "Chemical"), ("nephrotoxicity", "Disease")),
    _ents("Aspirin was associated with hypotension .",
          ("Aspirin", "Chemical"), ("hypotension", "Disease")),
    _ents("Patients with epilepsy were given morphine .",
          ("epilepsy", "Disease"), ("morphine", "Chemical")),
]
PROBE = ["Cocaine induced acute heart failure .", "Patients with epilepsy were given morphine ."]
LISTENER = {
    "@architectures": "spacy-transformers.TransformerListener.v1",
    "grad_factor": 1.0,
    "upstream": "biobert",
    "pooling": {"@layers": "reduce_mean.v1"},
}


def train_ner(model_name: str, steps: int = 60):
    from thinc.api import fix_random_seed

    fix_random_seed(0)  # the same weights whatever ran before in this process
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": model_name}})
    nlp.add_pipe("ner", config={"model": {"@architectures": "spacy.TransitionBasedParser.v2",
                                          "state_type": "ner", "hidden_width": 32,
                                          "maxout_pieces": 2, "use_upper": False,
                                          "extra_state_tokens": False, "tok2vec": LISTENER}})
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 1e-3
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    return nlp


def ents(nlp):
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(PROBE)]


@pytest.fixture(scope="module")
def trained(tiny_bert):
    return train_ner(tiny_bert)


def test_listener_is_wired(trained):
    biobert = trained.get_pipe("biobert")
    assert biobert.listening_components == ["ner"]


def test_ner_overfits_through_the_listener(trained):
    assert ents(trained) == [TRAIN[0][1], TRAIN[3][1]]


def test_reload_in_fresh_process_without_importing_plugin(trained, tmp_path):
    trained.to_disk(tmp_path / "model")
    code = (
        "import json, sys, spacy\n"
        f"nlp = spacy.load({str(tmp_path / 'model')!r})\n"
        f"docs = list(nlp.pipe({PROBE!r}))\n"
        "print(json.dumps([[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in docs]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    reloaded = [[tuple(e) for e in doc] for doc in json.loads(out.strip().splitlines()[-1])]
    assert reloaded == ents(trained)


def test_bytes_round_trip(trained):
    nlp2 = spacy.blank("en").from_config(trained.config)
    nlp2.from_bytes(trained.to_bytes())
    assert ents(nlp2) == ents(trained)


def test_replace_listeners_survives_save_and_reload(tiny_bert, tmp_path):
    nlp = train_ner(tiny_bert, steps=40)
    before = ents(nlp)
    nlp.replace_listeners("biobert", "ner", ["model.tok2vec"])
    assert nlp.get_pipe("biobert").listening_components == []
    tok2vec_cfg = nlp.config["components"]["ner"]["model"]["tok2vec"]
    assert tok2vec_cfg["@architectures"] == "spacy-biobert.Tok2VecTransformer.v1"
    assert ents(nlp) == before
    nlp.remove_pipe("biobert")  # ner now owns its transformer
    nlp.to_disk(tmp_path / "replaced")
    reloaded = spacy.load(tmp_path / "replaced")
    assert reloaded.pipe_names == ["ner"]
    assert ents(reloaded) == before
