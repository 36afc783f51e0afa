GO ?= go

.PHONY: build test demo

build:
	$(GO) build -o bin/dockmoat ./cmd/dockmoat

# The suite starts private dockerds, so it runs as root; see the README.
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

# Runs dockmoat's gateway end to end with the docker CLI, against a
# throwaway private dockerd (which needs root) unless
# DEMO_FLAGS=--use-existing.
demo:
	scripts/demo $(DEMO_FLAGS)
