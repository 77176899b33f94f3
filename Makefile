# Two commands on a fresh machine with Python 3.11+ and make:
#   make demo   make test
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-nojit bench bench-quick install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench,plot,pandas,dask,sdr]'
	touch $(STAMP)

# byte-compile once: some environments set PYTHONDONTWRITEBYTECODE, and start-up counts
.PHONY: bytecode
bytecode: $(STAMP)
	@$(PY) -m compileall -q groundseg benchmarks

install: $(STAMP)

demo: $(STAMP) bytecode
	$(PY) -m groundseg replay fixtures/demo/demo.cadu --mission fixtures/missions/demo.toml \
		--archive archive --report archive/demo-report.json
	$(PY) -m groundseg plot archive/demo.h5 --apid hk --field bus_voltage --field battery_temp \
		--field cpu_load --out archive/demo-hk.png
	$(PY) -m groundseg inspect archive/demo.h5

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests

test-nojit: $(STAMP)
	NUMBA_DISABLE_JIT=1 $(PY) -m pytest -q -p no:cacheprovider -m "not slow" tests/unit

bench: $(STAMP)
	$(PY) -m benchmarks.run

bench-quick: $(STAMP)
	$(PY) -m benchmarks.run --quick

clean:
	rm -rf $(VENV) build *.egg-info archive out
