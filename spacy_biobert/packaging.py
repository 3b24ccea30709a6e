"""Assembling the release pipeline from a trained one.

`spacy assemble configs/package.cfg OUTPUT --paths.model training/bc5cdr/model-best`
sources `biobert`, `ner` and `biobert_relations` from the one jointly trained
pipeline (configs/bc5cdr.cfg), without `replace_listeners`, so both
components keep listening to its single transformer, and builds
`biobert_linker` anew with the KB given. A sourced component keeps its
source's settings, so settings that must differ in the release pipeline are
changed by the registered callback `spacy-biobert.ConfigureComponents.v1`,
run by `spacy assemble` as `[initialize.after_init]`:

```ini
[initialize.after_init]
@callbacks = "spacy-biobert.ConfigureComponents.v1"

[initialize.after_init.settings.biobert_relations]
gold_entities = false
```

It sets the value both in the component's config (what the saved
`config.cfg` says) and in its `cfg` (what it saves beside its weights and
reads back on load), so the saved pipeline has the new setting either way.
"""

from typing import Any, Callable, Dict, Optional

from spacy.util import registry

from .errors import Errors


@registry.callbacks("spacy-biobert.ConfigureComponents.v1")
def create_configure_components(
    settings: Optional[Dict[str, Dict[str, Any]]] = None,
) -> Callable[[Any], Any]:
    """A callback (nlp -> nlp) that sets top-level settings of components:
    `settings` maps a component name to {setting: value}, e.g.
    {"biobert_relations": {"gold_entities": false}}. Only settings the
    component keeps in its `cfg` (trainable components: what they save) can
    be changed; anything else raises (E502, E503) rather than being ignored."""

    def configure_components(nlp: Any) -> Any:
        for name, values in (settings or {}).items():
            if name not in nlp.component_names:
                raise ValueError(Errors.E502.format(name=name, names=", ".join(nlp.component_names)))
            pipe = nlp.get_pipe(name)
            pipe_config = nlp.get_pipe_config(name)
            cfg = getattr(pipe, "cfg", None)
            for key, value in values.items():
                if not isinstance(cfg, dict) or key not in cfg or key not in pipe_config:
                    known = sorted(k for k in (cfg or {}) if k in pipe_config)
                    raise ValueError(
                        Errors.E503.format(key=key, name=name, known=", ".join(known) or "none")
                    )
                cfg[key] = value
                pipe_config[key] = value
        return nlp

    return configure_components
