"""What `spacy-biobert.TrainingLogger.v1` writes: no relation score columns
for a level with no label (they read 0.00 all run long, like a failure), and
no progress bar when stderr is not a terminal (a redirected log)."""
import io

import spacy
from spacy.util import registry

import spacy_biobert  # noqa: F401

LISTENER = {
    "@architectures": "spacy-transformers.TransformerListener.v1",
    "upstream": "biobert", "pooling": {"@layers": "reduce_mean.v1"},
}


def mention_level_pipeline():
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": "unused"}})
    nlp.add_pipe("biobert_relations", config={"model": {"tok2vec": LISTENER}})
    nlp.get_pipe("biobert_relations").add_label("CAUSES", level="mention")
    # the factory's default weights: rel_micro_* and rel_doc_*
    nlp.config["training"]["score_weights"] = {
        "rel_micro_f": 0.5, "rel_micro_p": 0.0, "rel_micro_r": 0.0,
        "rel_doc_f": 0.5, "rel_doc_p": 0.0, "rel_doc_r": 0.0,
    }
    nlp.config["training"]["max_steps"] = 10
    nlp.config["training"]["eval_frequency"] = 5
    return nlp


def test_no_document_level_columns_for_mention_level_labels_and_no_bar_in_a_log():
    nlp = mention_level_pipeline()
    out, err = io.StringIO(), io.StringIO()  # not terminals
    log_step, finalize = registry.loggers.get("spacy-biobert.TrainingLogger.v1")(progress_every=0)(
        nlp, out, err
    )
    info = {"epoch": 0, "step": 5, "score": 0.4, "losses": {"biobert": 0.0, "biobert_relations": 1.0},
            "other_scores": {"rel_micro_f": 0.8, "rel_micro_p": 0.8, "rel_micro_r": 0.8},
            "checkpoints": [], "seconds": 1, "words": 10, "output_path": None}
    log_step(info)
    log_step(None)
    finalize()
    table = out.getvalue()
    assert "REL_MICRO_F" in table and "REL_DOC" not in table
    assert "\r" not in err.getvalue() and "it/s" not in err.getvalue()
    # only the table changed: the saved config keeps its weights
    assert nlp.config["training"]["score_weights"]["rel_doc_f"] == 0.5
