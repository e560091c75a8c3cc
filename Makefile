# `make test` is the project's test command (README, .ci/run).
export PATH := $(PATH):/usr/local/go/bin
FUZZTIME ?= 20s

.PHONY: test vet unit pytest fuzz build example

test: vet unit pytest fuzz

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...

unit:
	go test -race -count=1 -timeout 10m ./...

# The Python worker's own tests, with Debian's interpreter (where
# python3-flask and python3-django live).
pytest:
	PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m unittest discover -s appserver/python

# Each fuzz target runs for a bounded time; new crashers land in testdata/.
fuzz:
	go test -run '^$$' -fuzz '^FuzzResolve$$' -fuzztime $(FUZZTIME) ./static/
	go test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./conf/
	go test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./appserver/wire/
	go test -run '^$$' -fuzz '^FuzzParseVars$$' -fuzztime $(FUZZTIME) ./upstream/uwsgi/
	go test -run '^$$' -fuzz '^FuzzReadResponse$$' -fuzztime $(FUZZTIME) ./upstream/uwsgi/

build:
	go build -o bin/tandem ./cmd/tandem

example:
	go run ./cmd/tandem run -c examples/quickstart/tandem.conf
