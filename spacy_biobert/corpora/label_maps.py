"""Named entity-type mappings, usable wherever a `label_map` is taken (the
registered readers, `read_*`, the CLI's --label-map)."""
from typing import Dict, Mapping, Optional, Union

from ..errors import Errors

LABEL_MAPS: Dict[str, Dict[str, str]] = {
    # NCBI-disease: the usual disease NER setting maps the 4 classes to Disease.
    "ncbi": {
        "SpecificDisease": "Disease",
        "DiseaseClass": "Disease",
        "Modifier": "Disease",
        "CompositeMention": "Disease",
    },
    # ChemProt: one gene/protein type.
    "chemprot-gene": {"GENE-Y": "GENE", "GENE-N": "GENE"},
}


def resolve_label_map(
    label_map: Optional[Union[str, Mapping[str, str]]],
) -> Optional[Dict[str, str]]:
    """A mapping, a preset name from LABEL_MAPS, or None (keep types)."""
    if label_map is None:
        return None
    if isinstance(label_map, str):
        if label_map not in LABEL_MAPS:
            raise ValueError(
                Errors.E112.format(name=label_map, known=", ".join(sorted(LABEL_MAPS)))
            )
        return dict(LABEL_MAPS[label_map])
    return {str(k): str(v) for k, v in dict(label_map).items()}
