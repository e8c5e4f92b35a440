# iamchars: reproducible pipeline. Every target bootstraps .venv itself.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build resolves locally on these machines; for a CUDA build see README ("GPU").
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
STAMP := $(VENV)/.installed
CONFIG ?= pipelines/demo.toml
IAM_CONFIG ?= pipelines/iam.toml
DEMO := data/demo
IAM_RAW ?= data/raw/iam
IAM_OUT ?= data/processed/iam

.PHONY: venv demo iam test test-fast lint bench faults box-gap zoo aligner-weights clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	# the PAGE 2019 and LOC XLink schemas that the tests validate against; the package's own dependencies are not needed
	$(BIN)/python -m pip install -q --no-deps "ocrd_validators==2.67.1"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/iamchars synth --config $(CONFIG) --out $(DEMO)/iam --preview --force
	$(BIN)/iamchars build-dataset --config $(CONFIG) --iam-root $(DEMO)/iam --out $(DEMO)/dataset
	$(BIN)/iamchars evaluate-segmentation --gt $(DEMO)/iam/chars_gt.csv --manifest $(DEMO)/dataset/manifest.parquet --iam-root $(DEMO)/iam --out $(DEMO)/segeval
	$(BIN)/iamchars train --config $(CONFIG) --data $(DEMO)/dataset --out $(DEMO)/run --force
	@echo "QA pictures:        $(DEMO)/dataset/qa/"
	@echo "Segmentation eval:  $(DEMO)/segeval/"
	@echo "Training pictures:  $(DEMO)/run/plots/"

iam: $(STAMP)
	$(BIN)/iamchars download --out $(IAM_RAW)
	$(BIN)/iamchars info --iam-root $(IAM_RAW)
	$(BIN)/iamchars build-dataset --config $(IAM_CONFIG) --iam-root $(IAM_RAW) --out $(IAM_OUT)
	$(BIN)/iamchars train --config $(IAM_CONFIG) --data $(IAM_OUT) --out data/runs/iam

test: $(STAMP)
	$(BIN)/python -m pytest

# The edit loop: every test but those marked slow (dataset builds, trainings, self-training).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check iamchars tests tools
	$(BIN)/ruff format --check iamchars tests tools
	$(BIN)/mypy iamchars tools

bench: $(STAMP)
	$(BIN)/python -m tools.bench

faults: $(STAMP)
	$(BIN)/python -m tests.faults

# Every model on the demo dataset with the same budget: data/demo/zoo/zoo.md (builds the dataset if needed).
zoo: $(STAMP)
	test -f $(DEMO)/dataset/manifest.parquet || $(BIN)/iamchars synth --config $(CONFIG) --out $(DEMO)/iam --force
	test -f $(DEMO)/dataset/manifest.parquet || $(BIN)/iamchars build-dataset --config $(CONFIG) --iam-root $(DEMO)/iam --out $(DEMO)/dataset
	$(BIN)/iamchars zoo --config $(CONFIG) --data $(DEMO)/dataset --out $(DEMO)/zoo

# What segmentation costs the recogniser: trained on true vs estimated boxes, tested on true-box crops.
# One seed moves by up to 5 points: ten seeds (about 20 minutes on 2 cores on pen-dev) tell 2 points from 3.
BOXGAP_CORPUS ?= ../shared/pen-dev
BOXGAP_SEEDS ?= 10
BOXGAP_ALIGN_SEEDS ?= 1
box-gap: $(STAMP)
	$(BIN)/python -m tools.boxgap $(BOXGAP_CORPUS) --seeds $(BOXGAP_SEEDS) --align-seeds $(BOXGAP_ALIGN_SEEDS)

# The aligner's starting weights (iamchars/segment/align/weights.pt) from a synthetic corpus in the tuning fonts.
aligner-weights: $(STAMP)
	$(BIN)/python -m tools.pretrain_aligner

clean:
	rm -rf $(VENV) data/demo
