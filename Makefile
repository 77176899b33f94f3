# Two commands on a fresh machine with Python 3.11+ and make:
#   make demo   make test
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo demo-live test test-nojit bench bench-quick install clean

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
	@mkdir -p archive
	$(PY) -m groundseg replay fixtures/demo/demo.cadu --mission fixtures/missions/demo.toml \
		--archive archive --report archive/demo-report.json
	$(PY) -m groundseg plot archive/demo.h5 --apid hk --field bus_voltage --field battery_temp \
		--field cpu_load --out archive/demo-hk.png
	$(PY) -m groundseg inspect archive/demo.h5

# the live path: receiver emulator -> real pty -> `groundseg receive` -> archive, for a few seconds
LIVE_DEV := out/groundseg-demo
demo-live: $(STAMP) bytecode
	@mkdir -p out archive
	$(PY) -m groundseg simulate --mission fixtures/missions/demo.toml --out out/live.cadu --frames 1500 --seed 7 -q
	@rm -f $(LIVE_DEV); \
	$(PY) -m groundseg emulate --capture out/live.cadu --profile usb-cdc-raw --mission fixtures/missions/demo.toml \
		--link $(LIVE_DEV) --rate 3e6 --stall 3 --stall-after 2 --hold -1 -q & emu=$$!; \
	for i in $$(seq 100); do [ -e $(LIVE_DEV) ] && break; sleep 0.1; done; \
	$(PY) -m groundseg receive --port $(LIVE_DEV) --mission fixtures/missions/demo.toml --profile usb-cdc-raw \
		--archive archive --journal archive/journal --report archive/live-report.json --duration 10 \
		--show hk.bus_voltage --show hk.battery_temp; rc=$$?; \
	kill $$emu 2>/dev/null; wait $$emu 2>/dev/null; exit $$rc
	$(PY) -m groundseg inspect archive/demo.h5

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests

test-nojit: $(STAMP)
	NUMBA_DISABLE_JIT=1 $(PY) -m pytest -q -p no:cacheprovider -m "not slow" tests/unit

bench: $(STAMP) bytecode
	$(PY) -m benchmarks.run

bench-quick: $(STAMP) bytecode
	$(PY) -m benchmarks.run --quick

clean:
	rm -rf $(VENV) build *.egg-info archive out
