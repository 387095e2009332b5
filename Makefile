# xdplb build, test and benchmark entry points.
#
# The BPF objects and their Go bindings are committed: `make build` and
# `make test` need only Go. `make generate` needs the pinned clang below.

CLANG ?= clang-14
ARCH_INCLUDE := /usr/include/$(shell uname -m)-linux-gnu
BPF_CFLAGS ?= -O2 -g -Wall -Werror -I$(ARCH_INCLUDE)
GO ?= go
BIN := bin/xdplb

.PHONY: all deps generate check-generated build test root-test bench lint fmt clean demo root-demo

all: build

## deps: install what a fresh Debian machine lacks (apt-get, only when missing)
deps:
	./.ci/deps.sh

## generate: rebuild BPF objects and Go bindings with the pinned clang
generate:
	cd loader && BPF_CLANG="$(CLANG)" BPF_CFLAGS="$(BPF_CFLAGS)" $(GO) generate ./...

## check-generated: fail if the committed objects differ from a fresh build
check-generated: generate
	@git diff --exit-code --stat -- loader/ || \
		{ echo "generated files are stale: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- loader/)" || \
		{ git status --porcelain -- loader/; echo "untracked generated files: commit them"; exit 1; }

build:
	$(GO) build -o $(BIN) ./cmd/xdplb

# as_root runs make target $(1) as root: directly when make is root, else
# through sudo with this PATH kept (sudo's own PATH often lacks go).
as_root = if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory $(1); \
	elif command -v sudo >/dev/null 2>&1; then \
		echo "make: $(1) needs root (BPF, network namespaces): running it with sudo"; \
		sudo env "PATH=$$PATH" $(MAKE) --no-print-directory $(1); \
	else echo "make: $(1) needs root (BPF, network namespaces): run it as root"; exit 1; fi

## test: every test, privileged ones included (as root, through sudo if needed)
test:
	@$(call as_root,root-test)

root-test: build
	./.ci/deps.sh --warn-only
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

## bench: data-plane, Maglev, control-plane and VRRP failover figures
## (BENCH_ARGS="--sections dataplane --json" for one section, as JSON)
BENCH_ARGS ?= --sections all
bench: build
	$(GO) run ./bench $(BENCH_ARGS)

lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

fmt:
	gofmt -w $$(git ls-files '*.go')

## demo: the lab of network namespaces, end to end (as root, through sudo if needed)
demo:
	@$(call as_root,root-demo)

root-demo: build
	./$(BIN) lab demo

clean:
	rm -rf bin
