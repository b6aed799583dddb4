# Every target creates .venv and installs the project into it when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# what running needs; then the test, browser, server and cluster extras
RUN_STAMP := $(VENV)/.run-stamp
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-fast lint bench ui server clean-store reproduce reproduce-mnist reproduce-ch5 \
	completion screenshots

# uv installs what pyproject.toml pins, as pip would, in a tenth of pip's time (≈ 20 s, not
# ≈ 150 s, for a fresh venv here); pip installs uv itself
UV := $(VENV)/bin/uv pip install --quiet --python $(PY)

$(RUN_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# -qq: not even the warnings of a pip configuration that names missing folders
	test -x $(VENV)/bin/uv || $(PY) -m pip install -qq --disable-pip-version-check 'uv>=0.9,<1'
	$(UV) -e .
	@touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(UV) -e '.[dev]'
	@touch $(STAMP)

## run: a small sweep on the embedded digits (hidden × lr × seed), then the comparison table
run: $(RUN_STAMP)
	$(PY) pipelines/train.py -m model.hidden=16,32,64 optim.lr=0.1,0.5 seed=0,1 trainer.epochs=20
	$(PY) pipelines/compare.py
	@echo "The runs in the MLflow UI: make ui, then the 'see its runs' link above"

## test: the whole suite on every core, a test file to a worker (Fashion-MNIST tests run where
## dataset-fashion-mnist is installed)
test: $(STAMP)
	$(PY) -m pytest -n auto --dist loadfile

## lint: ruff with the rule set of pyproject.toml
lint: $(STAMP)
	$(VENV)/bin/ruff check src pipelines tests benchmarks

## test-fast: the in-process tests of every module, without the end-to-end and full-size ones
test-fast: $(STAMP)
	$(PY) -m pytest -n auto -m "not slow and not e2e"

## reproduce: the rows whose data ships with a package (Fashion-MNIST, scikit-learn's digits),
## 3 seeds, 2 at a time, into docs/reproduce/
reproduce: $(RUN_STAMP)
	$(PY) pipelines/reproduce.py "only=[fashion-*,sklearn-digits-*,rolisz-*]" seeds=3 n_jobs=2 \
		out=docs/reproduce

## reproduce-mnist: every MNIST row on the real MNIST, 3 seeds, 2 at a time, into docs/; the blog
## network's rows on a Kaggle-layout train.csv written from MNIST's training images
##   make reproduce-mnist MNIST_ROOT=/folder/of/the/four/idx/files [ONLY='nielsen-ch1-*']
MNIST_ROOT ?=
ONLY ?= [nielsen-*,rashid-*,lecun98-*,simard03-*,mnist-*,blog-network*]
KAGGLE_CSV ?= outputs/mnist-kaggle-train.csv
reproduce-mnist: $(RUN_STAMP)
	$(PY) pipelines/export_kaggle_csv.py mnist_root=$(MNIST_ROOT) out=$(KAGGLE_CSV)
	$(PY) pipelines/reproduce.py "only=$(ONLY)" mnist_root=$(MNIST_ROOT) kaggle_csv=$(KAGGLE_CSV) \
		seeds=3 n_jobs=2 out=docs/reproduce-mnist

## reproduce-ch5: Nielsen's chapter-5 speed of learning alone (nielsen-ch5-speed-*, 5 seeds each:
## the rows are judged on a band over seeds), into docs/reproduce-ch5/
##   make reproduce-ch5 MNIST_ROOT=/folder/of/the/four/idx/files
reproduce-ch5: $(RUN_STAMP)
	$(PY) pipelines/reproduce.py "only=nielsen-ch5-speed-*" mnist_root=$(MNIST_ROOT) seeds=5 \
		n_jobs=2 out=docs/reproduce-ch5

## bench: digitlab against scikit-learn, PyTorch, the blog network's loop and the BLAS floor; pipeline
## costs; every command against the typical Hydra + MLflow script (benchmarks/typical.py)
bench: $(STAMP)
	$(PY) benchmarks/bench_training.py
	$(PY) benchmarks/bench_pipeline.py
	$(PY) benchmarks/bench_commands.py

## server: a shared tracking server; make server BACKEND=postgresql://user@host/db for a team.
## Beyond loopback (SERVER_HOST=0.0.0.0) it authenticates (MLflow basic-auth): the first start
## needs MLFLOW_AUTH_ADMIN_PASSWORD; AUTH=off serves without, AUTH=on authenticates on loopback too
SERVER_HOST ?= 127.0.0.1
SERVER_PORT ?= 5001
BACKEND ?= sqlite:///$(CURDIR)/mlruns/mlflow.db
ARTIFACTS ?= $(CURDIR)/mlruns/server-artifacts
AUTH ?= auto
AUTH_DB ?= sqlite:///$(CURDIR)/mlruns/basic_auth.db
server: $(STAMP)
	$(PY) -m digitlab.server --backend $(BACKEND) --artifacts $(ARTIFACTS) \
		--host $(SERVER_HOST) --port $(SERVER_PORT) --auth $(AUTH) --auth-db $(AUTH_DB)

## completion: bash completion of the pipelines' keys and groups, for `python pipelines/….py` and
## `.venv/bin/python pipelines/….py` alike, without the base_<group> schemas:
##   eval "$$(make -s completion)"
completion: $(RUN_STAMP)
	@$(PY) pipelines/train.py -sc install=bash | sed \
		-e 's|"$${words\[0\]}" == "python"|"$${words[0]\#\#*/}" == "python"|' \
		-e 's|COMP_POINT=$$COMP_POINT COMP_LINE=$$COMP_LINE $$helper|COMP_POINT=$$((COMP_POINT - $${\#words[0]} + 6)) COMP_LINE="python $${COMP_LINE\#"$${words[0]}"}" $$helper|' \
		-e 's|-sc query=bash)|-sc query=bash \| tr " " "\\n" \| grep -v "=base_")|'

## screenshots: the pictures in docs/ taken again from the current MLflow UI and HTML report, in
## headless Chromium over a real sweep (tests/e2e/test_ui.py and test_report.py take them)
screenshots: $(STAMP)
	DIGITLAB_TEST_OUTPUT=$(CURDIR)/test-output $(PY) -m pytest -q \
		tests/e2e/test_ui.py tests/e2e/test_report.py
	cp test-output/ui/runs.png docs/mlflow-ui-runs.png
	cp test-output/ui/compare.png docs/mlflow-ui-compare.png
	cp test-output/ui/run-curves.png docs/mlflow-ui-run-curves.png
	cp test-output/report/report.png docs/report.png

## ui: the MLflow UI on 127.0.0.1 against the project's store (make ui UI_PORT=5002)
UI_PORT ?= 5000
ui: $(RUN_STAMP)
	@# the store at a glance and the link to the latest sweep's runs (nothing on a new clone)
	-@UI_PORT=$(UI_PORT) $(PY) pipelines/status.py reap=false 2>/dev/null
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(VENV)/bin/mlflow ui \
		--backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db \
		--default-artifact-root $(CURDIR)/mlruns/artifacts --host 127.0.0.1 --port $(UI_PORT) --workers 1
