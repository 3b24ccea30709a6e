"""Named entity-type mappings, usable as `--label-map NAME` in the CLI; the
configs spell the same dicts out under [corpora.*] label_map."""
from typing import Dict

# NCBI-disease's four mention classes are all diseases; plain disease NER maps
# them to one type, as BioBERT and scispaCy report it.
NCBI_DISEASE: Dict[str, str] = {
    "SpecificDisease": "Disease",
    "DiseaseClass": "Disease",
    "Modifier": "Disease",
    "CompositeMention": "Disease",
}

LABEL_MAPS: Dict[str, Dict[str, str]] = {"ncbi": NCBI_DISEASE}
