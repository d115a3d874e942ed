# otelcol-iiot — build, test, demo and release targets.
# Every target installs what it needs (pinned Go tools, Debian and npm packages) on a fresh machine.

SHELL       := /bin/bash
.SHELLFLAGS := -euo pipefail -c
GO          ?= go
TOOLS       := $(CURDIR)/.tools
OCB         := $(TOOLS)/builder
MDATAGEN    := $(TOOLS)/mdatagen
STATICCHECK := $(TOOLS)/staticcheck
BUILD       := $(CURDIR)/_build
BINARY      := $(BUILD)/otelcol-iiot
GOBUILD     := CGO_ENABLED=0 $(GO) build -trimpath
# python3-serial-asyncio is only a Recommends of python3-pymodbus, but pymodbus.server imports it.
APT_PKGS    := prometheus socat python3-pymodbus python3-serial-asyncio lintian rpm victoria-metrics
E2E_TIMEOUT ?= 50m
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all tools generate generate-dist check-generated build build-probe build-gateway gateway-sources test deps preflight unit e2e fmt-check vet staticcheck rules-check lint bench dist demo clean

all: build

# --- tools (pinned in internal/tools/go.mod) -------------------------------------------
$(OCB) $(MDATAGEN) $(STATICCHECK): internal/tools/go.mod
	cd internal/tools && GOBIN=$(TOOLS) $(GO) install tool
	@touch $(OCB) $(MDATAGEN) $(STATICCHECK)

tools: $(OCB) $(MDATAGEN) $(STATICCHECK)

# --- code generation ---------------------------------------------------------------------
# mdatagen for every component, then the distribution's main package from builder-config.yaml.
generate: $(MDATAGEN)
	@for f in $$(git ls-files --cached --others --exclude-standard '*metadata.yaml' | grep -v '^_build/'); do \
	  d=$$(dirname $$f); echo "mdatagen $$d"; (cd $$d && $(MDATAGEN) metadata.yaml); done
	$(MAKE) generate-dist

# ocb renders the manifest; we keep only the Go sources (the root go.mod is the one source of versions).
generate-dist: $(OCB)
	@mkdir -p $(BUILD)
	$(OCB) --config builder-config.yaml --skip-compilation --skip-get-modules >/dev/null
	cp $(BUILD)/gen/components.go $(BUILD)/gen/main.go $(BUILD)/gen/main_others.go $(BUILD)/gen/main_windows.go cmd/otelcol-iiot/
	gofmt -w cmd/otelcol-iiot/*.go

check-generated: generate
	@git diff --exit-code -- cmd/otelcol-iiot '*/internal/metadata/*' '*documentation.md' '*generated_*' \
	  || { echo "generated files drifted: run 'make generate' and commit"; exit 1; }

# --- build ---------------------------------------------------------------------------------
# Always asks go build: its cache makes an unchanged rebuild take seconds.
build: build-probe
	@mkdir -p $(BUILD)
	$(GOBUILD) -o $(BINARY) ./cmd/otelcol-iiot
	@echo "built $(BINARY)"

# The commissioning tool: a small binary of its own (no collector inside), cheap enough for every build.
PROBE := $(BUILD)/otelcol-iiot-probe
build-probe:
	@mkdir -p $(BUILD)
	$(GOBUILD) -o $(PROBE) ./cmd/otelcol-iiot-probe
	@echo "built $(PROBE)"

# The gateway tier has its own manifest (kafka, loadbalancing, spanmetrics, prometheus receiver: heavy
# dependencies the edge binary must not carry); ocb generates a module in _build/gateway that uses this
# repository through a replace, and builds it.
GATEWAY := $(BUILD)/gateway/otelcol-iiot-gateway
gateway-sources: $(OCB)
	@mkdir -p $(BUILD)/gateway
	$(OCB) --config distributions/otelcol-iiot-gateway/builder-config.yaml --skip-compilation

build-gateway: gateway-sources
	cd $(BUILD)/gateway && $(GOBUILD) -o $(GATEWAY) .
	@echo "built $(GATEWAY)"

# --- tests ---------------------------------------------------------------------------------
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
	@if [ -f test/e2e/opcua/package.json ]; then \
	  [ -d test/e2e/opcua/node_modules ] || (cd test/e2e/opcua && npm ci --no-audit --no-fund --loglevel=error); fi
	@$(MAKE) --no-print-directory preflight

# Each peer the e2e tests start is started (or imported) once here, so a missing dependency fails in
# seconds naming its package instead of as an e2e timeout.
preflight:
	@fail=0; \
	/usr/bin/python3 -c 'import pymodbus.server, serial_asyncio' 2>/tmp/otelcol-iiot-preflight.err \
	  || { echo "preflight: pymodbus server cannot start (Debian packages python3-pymodbus python3-serial-asyncio): $$(tail -1 /tmp/otelcol-iiot-preflight.err)"; fail=1; }; \
	(cd test/e2e/opcua && node -e 'require("node-opcua")') 2>/tmp/otelcol-iiot-preflight.err \
	  || { echo "preflight: node-opcua does not load (Debian nodejs + npm ci in test/e2e/opcua): $$(tail -1 /tmp/otelcol-iiot-preflight.err)"; fail=1; }; \
	promtool --version >/dev/null 2>&1 || { echo "preflight: promtool not found (Debian package prometheus)"; fail=1; }; \
	prometheus --version >/dev/null 2>&1 || { echo "preflight: prometheus not found (Debian package prometheus)"; fail=1; }; \
	socat -V >/dev/null 2>&1 || { echo "preflight: socat not found (Debian package socat)"; fail=1; }; \
	command -v victoria-metrics >/dev/null 2>&1 || { echo "preflight: victoria-metrics not found (Debian package victoria-metrics)"; fail=1; }; \
	rm -f /tmp/otelcol-iiot-preflight.err; \
	[ $$fail = 0 ] && echo "preflight: pymodbus server, node-opcua, prometheus, promtool, socat, victoria-metrics OK"; exit $$fail

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^_build/')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/...

unit:
	$(GO) test -count=1 ./...

e2e: deps build build-gateway
	OTELCOL_IIOT_BINARY=$(BINARY) OTELCOL_IIOT_GATEWAY_BINARY=$(GATEWAY) $(GO) test -count=1 -tags e2e -timeout $(E2E_TIMEOUT) ./test/e2e/...

test: deps fmt-check vet golangci-lint rules-check check-generated unit e2e package-test

# Prometheus rules of the edge distribution: syntax (promtool check) and unit tests (promtool test).
RULES_DIR := distributions/otelcol-iiot/prometheus
.PHONY: rules-check
rules-check:
	@command -v promtool >/dev/null || { echo "rules-check: promtool not found (Debian package 'prometheus'): run 'make deps'"; exit 1; }
	promtool check rules $(RULES_DIR)/otelcol-iiot.rules.yml
	promtool test rules $(RULES_DIR)/otelcol-iiot.rules.test.yml
	@# every alert links its runbook, and every runbook_url names a section of docs/runbooks.md
	@n=$$(grep -c '^      - alert:' $(RULES_DIR)/otelcol-iiot.rules.yml); r=$$(grep -c 'runbook_url:' $(RULES_DIR)/otelcol-iiot.rules.yml); \
	  [ "$$n" = "$$r" ] || { echo "rules-check: $$n alerts but $$r runbook_url annotations"; exit 1; }
	@for a in $$(sed -n 's/.*runbook_url: .*docs\/runbooks.md#//p' $(RULES_DIR)/otelcol-iiot.rules.yml); do \
	  grep -qi "^## $$a\$$" docs/runbooks.md || { echo "rules-check: no section '## $$a' in docs/runbooks.md"; exit 1; }; done

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

lint: fmt-check vet golangci-lint

# golangci-lint (.golangci.yml: the standard linters, staticcheck among them, plus errorlint, gosec,
# forbidigo, misspell, unconvert, nolintlint) from its own tools module, so its dependencies cannot move ocb's.
GOLANGCI := $(TOOLS)/golangci-lint
$(GOLANGCI): internal/tools/golangci/go.mod
	cd internal/tools/golangci && GOBIN=$(TOOLS) $(GO) install tool
	@touch $(GOLANGCI)

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI)
	$(GOLANGCI) run ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./...

# Footprint of the built edge binary on the edge default configuration (test/footprint, issue 17): CPU
# per 1,000 device-polls, peak and steady RSS, remote-write bytes per sample, binary size, for Modbus
# 2 units / 50 devices (pymodbus), OPC UA 8 nodes (opcuasim) and idle. About 6 minutes; not part of
# `make test`. FOOTPRINT_FLAGS='-polls 120 -workloads modbus-50dev' narrows or lengthens it.
FOOTPRINT_FLAGS ?=
.PHONY: bench-footprint
bench-footprint: deps build
	$(GO) run ./test/footprint -binary $(BINARY) $(FOOTPRINT_FLAGS)

# What the stripped edge binary is made of (issue 17: size against Telegraf's): builds it as `make dist`
# does, once with its symbol table and once stripped, and prints its sections, the top modules, the
# families (collector core, contrib, gRPC, OTel SDK, …) and what pulls each package in (the collector's
# infrastructure or which component). Not part of `make test`. SIZE_FLAGS='-top 30' for longer tables.
SIZE_FLAGS ?=
.PHONY: size-profile
size-profile:
	@mkdir -p $(BUILD)/size
	$(GOBUILD) -o $(BUILD)/size/otelcol-iiot ./cmd/otelcol-iiot
	$(GOBUILD) -ldflags='-s -w' -o $(BUILD)/size/otelcol-iiot.stripped ./cmd/otelcol-iiot
	$(GO) run ./test/footprint/sizeprofile -binary $(BUILD)/size/otelcol-iiot -stripped $(BUILD)/size/otelcol-iiot.stripped -pkg ./cmd/otelcol-iiot $(SIZE_FLAGS)

# --- release -------------------------------------------------------------------------------
PLATFORMS := linux/amd64 linux/arm64 linux/arm/7
# dist cross-compiles both distributions for every platform (stripped) and prints their sizes.
dist: gateway-sources
	@mkdir -p dist
	@for p in $(PLATFORMS); do \
	  os=$${p%%/*}; rest=$${p#*/}; arch=$${rest%%/*}; arm=""; suffix=$${os}_$${arch}; \
	  if [ "$$arch" = arm ]; then arm=$${rest#*/}; suffix=$${suffix}v$$arm; fi; \
	  echo "building dist/otelcol-iiot_$$suffix"; \
	  GOOS=$$os GOARCH=$$arch GOARM=$$arm $(GOBUILD) -ldflags='-s -w' -o dist/otelcol-iiot_$$suffix ./cmd/otelcol-iiot; \
	  GOOS=$$os GOARCH=$$arch GOARM=$$arm $(GOBUILD) -ldflags='-s -w' -o dist/otelcol-iiot-probe_$$suffix ./cmd/otelcol-iiot-probe; \
	  echo "building dist/otelcol-iiot-gateway_$$suffix"; \
	  (cd $(BUILD)/gateway && GOOS=$$os GOARCH=$$arch GOARM=$$arm $(GOBUILD) -ldflags='-s -w' -o $(CURDIR)/dist/otelcol-iiot-gateway_$$suffix .); \
	done
	@ls -l dist/ | awk 'NR>1 {printf "%-40s %6.1f MB\n", $$9, $$5/1048576}'

# --- demo ----------------------------------------------------------------------------------
demo:
	./distributions/otelcol-iiot/demo.sh

clean:
	rm -rf $(BUILD) dist

# --- packages: .deb/.rpm with nfpm, container recipes (issue 16) ----------------------------------
# Not part of `make build`: `make package` cross-compiles both distributions for every platform (make
# dist) and packages each binary; `make package-test` builds only the amd64 edge package and installs it.
NFPM         := $(TOOLS)/nfpm
PKG_DISTS    := otelcol-iiot otelcol-iiot-gateway
PKG_VERSION  ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' --abbrev=0 2>/dev/null || true); v=$${v:-v0.1.0}; echo $${v#v})
PKG_GEN      := $(BUILD)/package
.PHONY: package package-files package-test

# nfpm is pinned in its own module so its dependencies cannot move ocb's.
$(NFPM): internal/tools/nfpm/go.mod
	cd internal/tools/nfpm && GOBIN=$(TOOLS) $(GO) install tool
	@touch $(NFPM)

# Generated package files, gzipped (-n: reproducible): the upstream changelog, a Debian changelog entry
# for the packaging revision (dated by the commit, not the build), the man page of each distribution.
package-files:
	@rev=$$(git rev-parse --short HEAD); date=$$(git log -1 --format=%cD); \
	for d in $(PKG_DISTS); do mkdir -p $(PKG_GEN)/$$d; \
	  gzip -9nc CHANGELOG.md > $(PKG_GEN)/$$d/changelog.gz; \
	  printf '%s (%s-1) stable; urgency=medium\n\n  * Package of %s %s (commit %s); the changes are in\n    /usr/share/doc/%s/changelog.gz.\n\n -- otelcol-iiot maintainers <maintainers@otelcol-iiot.dev>  %s\n' \
	    $$d $(PKG_VERSION) $$d $(PKG_VERSION) $$rev $$d "$$date" | gzip -9n > $(PKG_GEN)/$$d/changelog.Debian.gz; \
	  gzip -9nc distributions/$$d/packaging/$$d.1 > $(PKG_GEN)/$$d/$$d.1.gz; done
	@gzip -9nc cmd/otelcol-iiot-probe/otelcol-iiot-probe.1 > $(PKG_GEN)/otelcol-iiot/otelcol-iiot-probe.1.gz

# pkg DIST ARCH(dist suffix) FORMAT: one package into dist/ (nfpm's arch names: amd64, arm64, arm7).
define nfpm-pkg
PKG_VERSION=$(PKG_VERSION) PKG_ARCH=$$(a=$(2); [ $$a = armv7 ] && a=arm7; echo $$a) \
  PKG_BINARY=dist/$(1)_linux_$(2) PKG_PROBE_BINARY=dist/otelcol-iiot-probe_linux_$(2) PKG_GENERATED=$(PKG_GEN)/$(1) \
  $(NFPM) package --config distributions/$(1)/packaging/nfpm.yaml --packager $(3) --target dist/
endef

package: dist package-files $(NFPM)
	@for d in $(PKG_DISTS); do for a in amd64 arm64 armv7; do for f in deb rpm; do \
	  $(call nfpm-pkg,$${d},$${a},$${f}); done; done; done
	@ls -l dist/*.deb dist/*.rpm | awk '{printf "%-60s %6.1f MB\n", $$9, $$5/1048576}'

# Installs the amd64 edge .deb for real (dpkg -i, checks, validate, dpkg --purge; root only, else
# skipped), lints it, checks the .rpm with rpm -qp and the Dockerfiles' COPY sources.
package-test: deps package-files $(NFPM)
	@mkdir -p dist
	$(GOBUILD) -ldflags='-s -w' -o dist/otelcol-iiot_linux_amd64 ./cmd/otelcol-iiot
	$(GOBUILD) -ldflags='-s -w' -o dist/otelcol-iiot-probe_linux_amd64 ./cmd/otelcol-iiot-probe
	rm -f dist/otelcol-iiot_*_amd64.deb dist/otelcol-iiot-[0-9]*.x86_64.rpm
	$(call nfpm-pkg,otelcol-iiot,amd64,deb)
	$(call nfpm-pkg,otelcol-iiot,amd64,rpm)
	$(GO) vet -tags package ./test/package/
	OTELCOL_IIOT_DEB=$$(ls dist/otelcol-iiot_*_amd64.deb) OTELCOL_IIOT_RPM=$$(ls dist/otelcol-iiot-[0-9]*.x86_64.rpm) \
	  $(GO) test -count=1 -v -tags package ./test/package/
