# indiredis: the two set-up commands of the README, and the package build.
#   make run   installs everything, then runs inditoredis against a local indiserver
#              with the telescope and CCD simulators and a local Redis
#   make test  installs everything, then runs ruff, mypy and the test suite against real servers
#   make deb   builds the Debian package into dist/
#   make docs  builds the documentation (docs/ and the API reference) into build/docs/html

# the venv runs on Debian's interpreter, the one the package runs on: a python3 found first on PATH may be
# another build (a pyenv build without PGO and LTO ran the bridges 1.6 times slower per message)
PYTHON ?= /usr/bin/python3
VENV   ?= .venv
APT_PACKAGES = redis-server mosquitto mosquitto-clients indi-bin systemd openssl chromium chromium-driver nginx python3 python3-venv \
               systemd-container debootstrap libsystemd-dev pkg-config gcc libjs-dygraphs
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# the tools around the build; the build dependencies themselves come from debian/control (apt-get build-dep)
DEB_TOOLS = dpkg-dev fakeroot lintian
BUILD_DIR = build/deb

.PHONY: deps venv run check test deb docs clean

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: setup.cfg setup.py
	$(PYTHON) -m venv --clear $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,docs]'
	touch $@

# a venv made on another interpreter than $(PYTHON) (another installation, or another minor version) is
# made again
WHICH_PYTHON = import sys; print(sys.base_prefix, *sys.version_info[:2])
venv: deps
	@if [ -f $(VENV)/.installed ] && \
	    [ "$$($(VENV)/bin/python -c '$(WHICH_PYTHON)')" != "$$($(PYTHON) -c '$(WHICH_PYTHON)')" ]; then \
	  echo "$(VENV) was made on another interpreter: making it again on $(PYTHON)"; rm -f $(VENV)/.installed; \
	fi
	@$(MAKE) --no-print-directory -s $(VENV)/.installed

run: venv
	$(VENV)/bin/python -m indiredis.demo

# the gates, in order, each failing the build: lint, format, types, then the tests (pytest's status 5,
# "no tests collected", fails too, as every non-zero status does)
LINTED = indiredis tests bench
check: venv
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy

# the suite on every core (pytest-xdist), each test file on one worker, in its order (module-wide servers
# start once; `-n 0` runs it in one process)
test: check
	$(VENV)/bin/python -m pytest -n auto --dist loadfile

# make docs: Sphinx with warnings as errors (tests/docs builds it too, so make test fails on a broken docstring)
docs: venv
	$(VENV)/bin/python -m sphinx -W --keep-going -q -b html docs build/docs/html
	@echo "documentation: build/docs/html/index.html"

# make deb: the Debian package, built from a clean copy of the tree (git's files, ignored ones left out), into dist/
deb:
	@missing=""; for p in $(DEB_TOOLS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	rm -rf $(BUILD_DIR) && mkdir -p $(BUILD_DIR)/indiredis dist
	git ls-files -co --exclude-standard -z | tar --null -T - --ignore-failed-read -cf - | tar -xf - -C $(BUILD_DIR)/indiredis
	cd $(BUILD_DIR)/indiredis && { dpkg-checkbuilddeps 2>/dev/null || { $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -q --no-install-recommends ./; }; }
	cd $(BUILD_DIR)/indiredis && dpkg-buildpackage -us -uc -b
	rm -f dist/indiredis_*.deb && cp $(BUILD_DIR)/indiredis_*.deb dist/
	lintian --fail-on error dist/indiredis_*.deb

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
