# EVM toolchain and contracts.
#
# Included by the top-level Makefile; also usable on its own from the repository
# root: `make -f mk/evm.mk tools forge-test contracts contracts-check`.
#
#   tools            install the pinned anvil, forge, cast and solc-js (npm ci in
#                    tools/evm; a no-op when already installed)
#   contracts        compile contracts/src and write contracts/artifacts/<Name>.json
#   contracts-check  fail if contracts/artifacts is not what `contracts` would write
#   forge-test       run the forge suite (contracts/test)
#   gas-bench        gas table (whole transactions, forge --isolate), see docs/CONTRACTS.md
#                    (forge-gas is the same)
#   trapdoor-fixture rewrite contracts/test/fixtures/trapdoor-proofs.json
#
# ANVIL, FORGE and CAST point into tools/evm/node_modules and are exported, so
# recipes (e.g. cargo test in the top-level Makefile) see them in the environment.

EVM_MK_FILE := $(lastword $(MAKEFILE_LIST))
EVM_MK_DIR := $(patsubst %/,%,$(dir $(EVM_MK_FILE)))
# Included: keep the includer's default goal (this file defines targets of its own).
EVM_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)
EVM_ROOT := $(abspath $(EVM_MK_DIR)/..)
EVM_TOOLS_DIR := $(EVM_ROOT)/tools/evm
EVM_NODE_MODULES := $(EVM_TOOLS_DIR)/node_modules
CONTRACTS_DIR := $(EVM_ROOT)/contracts
CONTRACT_ARTIFACTS_DIR := $(CONTRACTS_DIR)/artifacts

NODE ?= node
NPM ?= npm

ANVIL := $(EVM_NODE_MODULES)/@foundry-rs/anvil-linux-amd64/bin/anvil
FORGE := $(EVM_NODE_MODULES)/@foundry-rs/forge-linux-amd64/bin/forge
CAST := $(EVM_NODE_MODULES)/@foundry-rs/cast-linux-amd64/bin/cast
# Native-looking solc (node shim over the pinned solc-js); forge is pointed at it.
SOLC := $(EVM_TOOLS_DIR)/bin/solc
export ANVIL FORGE CAST

# forge never downloads a compiler: the shim, offline.
EVM_FORGE_ENV := FOUNDRY_SOLC=$(SOLC) FOUNDRY_OFFLINE=true
FORGE_TEST_FLAGS ?=

EVM_TOOLS_STAMP := $(EVM_NODE_MODULES)/.zkpow-tools-installed

.PHONY: tools contracts contracts-check forge-test gas-bench forge-gas trapdoor-fixture evm-clean

tools: $(EVM_TOOLS_STAMP)

$(EVM_TOOLS_STAMP): $(EVM_TOOLS_DIR)/package.json $(EVM_TOOLS_DIR)/package-lock.json
	cd $(EVM_TOOLS_DIR) && $(NPM) ci --no-audit --no-fund
	@for t in $(ANVIL) $(FORGE) $(CAST) $(SOLC); do \
	  test -x "$$t" || { echo "evm.mk: $$t missing after npm ci" >&2; exit 1; }; \
	done
	@$(SOLC) --version | grep -q '^Version: 0\.8\.' || { echo "evm.mk: solc shim does not answer --version" >&2; exit 1; }
	@touch $@

contracts: tools
	$(NODE) $(EVM_TOOLS_DIR)/build-artifacts.js $(CONTRACTS_DIR) $(CONTRACT_ARTIFACTS_DIR)

contracts-check: tools
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(NODE) $(EVM_TOOLS_DIR)/build-artifacts.js $(CONTRACTS_DIR) "$$tmp" >/dev/null && \
	if diff -r "$$tmp" $(CONTRACT_ARTIFACTS_DIR) >/dev/null; then \
	  echo "contracts/artifacts is up to date"; \
	else \
	  diff -rq "$$tmp" $(CONTRACT_ARTIFACTS_DIR) | sed "s|$$tmp|<regenerated>|" >&2; \
	  echo "contracts/artifacts is stale: run 'make contracts' and commit contracts/artifacts" >&2; \
	  exit 1; \
	fi

forge-test: tools
	cd $(CONTRACTS_DIR) && $(EVM_FORGE_ENV) $(FORGE) test $(FORGE_TEST_FLAGS)

gas-bench: tools
	cd $(CONTRACTS_DIR) && $(EVM_FORGE_ENV) $(FORGE) test --isolate --match-test 'test_gasBenchmark' -vv

forge-gas: gas-bench

trapdoor-fixture: tools
	cd $(CONTRACTS_DIR) && $(EVM_FORGE_ENV) $(FORGE) script script/WriteTrapdoorFixture.s.sol

evm-clean:
	rm -rf $(CONTRACTS_DIR)/out $(CONTRACTS_DIR)/cache

ifneq ($(firstword $(MAKEFILE_LIST)),$(EVM_MK_FILE))
.DEFAULT_GOAL := $(EVM_SAVED_DEFAULT_GOAL)
endif
