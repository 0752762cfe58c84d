# Two commands for a fresh machine:  make demo  (set up, run the three commands on generated data)
#                                    make test  (set up, run the fast test suite)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := demo
# The demo trains the card's network (--arch cnn; the default is cnn5) at 128x128 so it ends in a few minutes on
# 2 CPU cores; train-cnn's default is 256.
DEMO_TRAIN := --arch cnn --epochs 12 --image-size 128 --out runs/demo
# make test spreads the test files over this many pytest-xdist processes (a file's tests stay in one process, so its
# module fixtures are built once); four on two cores, because many tests wait on processes, servers and files
# they start (docs/testing.md measures 2, 3 and 4).
TEST_WORKERS ?= 4

.PHONY: setup demo test test-slow lint bench clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

setup: $(STAMP)

demo: setup
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(BIN)/python -m data.make_sample $(DEMO)/deepfashion --per-class 100 --seed 0
	cd $(DEMO) && ../$(BIN)/make-labels deepfashion -o labels.csv
	cd $(DEMO) && ../$(BIN)/train-cnn $(DEMO_TRAIN)
	cd $(DEMO) && ../$(BIN)/analyze-model runs/demo --flops --receptive-field
	@echo "demo run folder: $(DEMO)/runs/demo"
	@$(BIN)/python -c "import json; m = json.load(open('$(DEMO)/runs/demo/metrics.json')); print('test accuracy (top-1): %.3f' % m['top1'])"

test: setup
	$(BIN)/python -m pytest -m "not slow" -n $(TEST_WORKERS) --dist loadfile

lint: setup
	$(BIN)/python -m pyflakes common labeling cnn analysis data tests benchmarks notebooks
	$(BIN)/lint-imports

test-slow: setup
	$(BIN)/python -m pytest -m slow

bench: setup
	$(BIN)/python benchmarks/bench_make_labels.py
	$(BIN)/python benchmarks/bench_analyze_model.py
	$(BIN)/python benchmarks/bench_layer_timing.py
	$(BIN)/python benchmarks/bench_training.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
