# Wardline. `make run` starts the server on the embedded store; `make test`
# runs the whole suite (set WARDLINE_INTEGRATION=1 to make missing services fail).
GO        ?= go
PKGS      ?= ./...
BENCHTIME ?= 1x
STATICCHECK_VERSION ?= v0.7.0

.PHONY: run build test test-race test-short bench fuzz lint tools

build:
	$(GO) build -o bin/wardline ./cmd/wardline

run: build
	./bin/wardline serve

test:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

fuzz:
	./scripts/fuzz.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1)
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)
