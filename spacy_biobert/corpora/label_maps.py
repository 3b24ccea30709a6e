"""Named entity-type mappings, usable wherever a `label_map` is taken (the
registered readers, `read_*`, the CLI's --label-map NAME): the configs name
them by preset (`label_map = "ncbi"` under [corpora.*], `--paths.label_map
ncbi`) rather than spell the dicts out."""

from typing import Dict, Mapping, Optional, Union

from ..errors import Errors

# NCBI-disease's four mention classes are all diseases; plain disease NER maps
# them to one type, as BioBERT and scispaCy report it.
NCBI_DISEASE: Dict[str, str] = {
    "SpecificDisease": "Disease",
    "DiseaseClass": "Disease",
    "Modifier": "Disease",
    "CompositeMention": "Disease",
}

# ChemProt: one gene/protein type (GENE-Y normalisable, GENE-N not).
CHEMPROT_GENE: Dict[str, str] = {"GENE-Y": "GENE", "GENE-N": "GENE"}

# ChemProt in the types of BC5CDR and the multi-corpus model
# (configs/biomed.cfg): Chemical, and one Gene type.
CHEMPROT_BIOMED: Dict[str, str] = {"CHEMICAL": "Chemical", "GENE-Y": "Gene", "GENE-N": "Gene"}

LABEL_MAPS: Dict[str, Dict[str, str]] = {
    "ncbi": NCBI_DISEASE,
    "chemprot-gene": CHEMPROT_GENE,
    "chemprot": CHEMPROT_BIOMED,
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
