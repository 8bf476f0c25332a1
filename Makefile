# Vigil: top-level entry points (see README.md). Meson + Ninja do the building.
SHELL := /bin/bash
BUILD ?= build
# The tests run a second build with vigild's test-only knobs compiled in (-Dtest_knobs=true:
# the --test-* flags); $(BUILD), the programs users run and install, refuses them.
TEST_BUILD ?= build-test
PYTEST := /usr/bin/python3 -m pytest

# Every Debian package the build, the tests, the demo and the benchmarks need.
DEB_PACKAGES := build-essential meson ninja-build pkg-config \
	libraft-dev libuv1-dev libsqlite3-dev libjansson-dev libmicrohttpd-dev libssh-dev \
	libcurl4-openssl-dev libsodium-dev libgnutls28-dev libmnl-dev libhttp-parser-dev libcmocka-dev \
	python3 python3-pytest python3-requests python3-paramiko curl iproute2 openssh-client \
	etcd-server etcd-client wrk haproxy nginx-light clang libclang-rt-14-dev util-linux gdb \
	dpkg-dev debhelper lintian man-db prometheus nftables nodejs chromium

.PHONY: all deps build test-build test test-asan unit system demo demo-stop bench deb faults clean

all: build

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root to install packages" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		for s in nginx haproxy etcd prometheus prometheus-node-exporter; do systemctl disable --now $$s >/dev/null 2>&1 || true; done; \
	fi
	@# npm: Debian's package, unless the installed Node.js brings its own (NodeSource's does).
	@command -v npm >/dev/null || { echo "installing: npm"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
	@# The web UI's npm packages, at the versions ui/package-lock.json pins (again only when it changed).
	@cmp -s ui/package-lock.json ui/node_modules/.vigil-installed-lock || { \
		echo "npm ci (ui/)"; (cd ui && npm ci --no-audit --no-fund --loglevel=error) && \
		cp ui/package-lock.json ui/node_modules/.vigil-installed-lock; }

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

# --reconfigure also turns the knobs on in a $(TEST_BUILD) made by hand without them, and
# in one made before the option existed (meson configure would not know it yet).
test-build:
	test -f $(TEST_BUILD)/build.ninja || meson setup $(TEST_BUILD) -Dtest_knobs=true
	meson setup --reconfigure $(TEST_BUILD) -Dtest_knobs=true >/dev/null
	ninja -C $(TEST_BUILD)

unit: test-build
	meson test -C $(TEST_BUILD) --print-errorlogs

# The harness runs $(TEST_BUILD)'s vigild; test_flags.py checks that $(BUILD)'s refuses the knobs.
system: build test-build
	VIGILD=$(CURDIR)/$(TEST_BUILD)/src/controller/vigild \
		VIGILD_DEFAULT=$(CURDIR)/$(BUILD)/src/controller/vigild $(PYTEST) tests/system tests/faults -v -rs

test: deps
	$(MAKE) build
	$(MAKE) unit
	$(MAKE) system

# The unit tests and the controller's system tests against an ASan/UBSan build.
test-asan: deps
	test -f build-asan/build.ninja || meson setup build-asan -Dsanitize=true -Dtest_knobs=true
	meson setup --reconfigure build-asan -Dsanitize=true -Dtest_knobs=true >/dev/null
	ninja -C build-asan
	meson test -C build-asan --print-errorlogs
	VIGILD=$(CURDIR)/build-asan/src/controller/vigild ASAN_OPTIONS=detect_leaks=0 \
		$(PYTEST) tests/system --ignore=tests/system/se --ignore=tests/system/netns -q

demo: deps
	$(MAKE) build
	./scripts/demo.sh start

demo-stop:
	./scripts/demo.sh stop

bench: deps
	$(MAKE) build
	$(MAKE) test-build
	./bench/run.sh

# The Debian package (debian/), built by dpkg-buildpackage in a copy of the tree under
# build-deb/ and checked by lintian: build-deb/vigil_VERSION_ARCH.deb.
deb: deps
	./scripts/build_deb.sh build-deb

# The randomised fault campaign (tests/faults, docs/reliability.md): FAULTS_RUNS runs of
# FAULTS_SECONDS each on the namespace test bed (root), a report under build-test/faults/.
# FAULTS_SEED=S replays the schedules of seeds S, S+1, ...
FAULTS_RUNS ?= 20
FAULTS_SECONDS ?= 90
faults: deps
	$(MAKE) test-build
	VIGILD=$(CURDIR)/$(TEST_BUILD)/src/controller/vigild /usr/bin/python3 tests/faults/campaign.py \
		--runs $(FAULTS_RUNS) --seconds $(FAULTS_SECONDS) $(if $(FAULTS_SEED),--seed $(FAULTS_SEED),)

clean:
	rm -rf $(BUILD) $(TEST_BUILD) build-deb
