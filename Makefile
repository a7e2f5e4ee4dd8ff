# The two commands of the README.  Both set up .venv (Python >= 3.11) with everything needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# command:Debian package of the tools the tests use as real clients
TOOLS  := tar:tar unzip:unzip md5sum:coreutils gzip:gzip chromium:chromium \
          chromedriver:chromium-driver strace:strace \
          unshare:util-linux mount:mount

REAL   := .cache/real-data
# A real ALMA MeasurementSet and real SMA caltables ship in this wheel (not in later ones)
PYUVDATA := pyuvdata==3.2.3

.PHONY: demo test lint tools bench bench-scale clean real-data interop

$(STAMP): pyproject.toml setup.py src/almaqa2/md5pair.c src/almaqa2/tarheader.c \
		src/almaqa2/manyfiles.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[ms,plot,batch,test]'
	touch $(STAMP)

# Command-line tools the tests use as real clients; installed from Debian when missing.
tools:
	@missing=""; for t in $(TOOLS); do \
		command -v $${t%%:*} >/dev/null || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# Real bytes for the tests, unpacked from the wheel into an ignored cache (see scripts/real_data.py).
real-data: $(REAL)/.done

$(REAL)/.done: scripts/real_data.py | $(STAMP)
	rm -rf $(REAL) && mkdir -p $(REAL)
	$(BIN)/pip download --quiet --no-deps --only-binary=:all: $(PYUVDATA) -d $(REAL)/wheel
	$(BIN)/python scripts/real_data.py $(REAL)/wheel/pyuvdata-*.whl $(REAL)
	rm -rf $(REAL)/wheel
	touch $@

demo: $(STAMP) tools
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy

# On every core (at most 4): run one at a time, the tests leave the second core mostly idle.
test: $(STAMP) tools lint real-data
	$(BIN)/pytest --numprocesses auto --maxprocesses 4

bench: $(STAMP)
	$(BIN)/python benchmarks/package_bench.py
	$(BIN)/python benchmarks/ms_bench.py
	$(BIN)/python benchmarks/split_bench.py
	$(BIN)/python benchmarks/transfer_bench.py
	$(BIN)/python benchmarks/batch_bench.py
	$(BIN)/python benchmarks/batch_bench.py --workdir /dev/shm  # CPU-bound: the 1.6x target's case
	$(BIN)/python benchmarks/scale_bench.py --workdir /dev/shm

# CASA itself (from PyPI, in a venv of its own: it is heavy), for `make interop` only.
# casatasks imports six without declaring it.
CASA_VENV := .cache/casa-venv
CASA_PKGS := casatools==6.7.0.31 casatasks==6.7.0.31 casadata==2025.9.22 six

$(CASA_VENV)/.installed:
	$(PYTHON) -m venv $(CASA_VENV)
	$(CASA_VENV)/bin/pip install --quiet --upgrade pip
	$(CASA_VENV)/bin/pip install --quiet $(CASA_PKGS)
	touch $@

# qa2 split against CASA's own split, value by value (not part of make test).
interop: $(STAMP) real-data $(CASA_VENV)/.installed
	$(BIN)/python scripts/interop_split.py --casa-python $(CASA_VENV)/bin/python
	$(BIN)/python benchmarks/split_bench.py --casa-python $(CASA_VENV)/bin/python

# The million-file case of scale_bench (about 10 minutes, 2 GB of tmpfs): one run of each
# command, not the best of 3 (30 minutes).
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale_bench.py --workdir /dev/shm --million --repeat 1

clean:
	rm -rf $(VENV) demo-output .cache
