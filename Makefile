# `make test` is the project's test command (README, .ci/run).
export PATH := $(PATH):/usr/local/go/bin
# Fuzz budgets are execution counts (about 20 s each on the 2-CPU CI
# machines), not durations: with a duration, Go 1.26's fuzz coordinator can
# fail a clean run with "context deadline exceeded" when the time runs out
# while a worker is busy (go.dev/issue/75804, fixed in Go 1.27). Set
# FUZZTIME (e.g. FUZZTIME=5m) to give every target that budget instead.
fuzzbudget = $(or $(FUZZTIME),$(1))
# A new input that widens coverage is minimized before it joins the corpus,
# for up to 60 s by default, with the count standing still meanwhile; 10 s
# keeps a CI run's length predictable.
fuzzflags = -fuzzminimizetime 10s

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

# Each fuzz target runs a bounded budget; new crashers land in testdata/.
fuzz:
	go test -run '^$$' -fuzz '^FuzzResolve$$' $(fuzzflags) -fuzztime $(call fuzzbudget,50000x) ./static/
	go test -run '^$$' -fuzz '^FuzzParse$$' $(fuzzflags) -fuzztime $(call fuzzbudget,300000x) ./conf/
	go test -run '^$$' -fuzz '^FuzzDecode$$' $(fuzzflags) -fuzztime $(call fuzzbudget,800000x) ./appserver/wire/
	go test -run '^$$' -fuzz '^FuzzParseVars$$' $(fuzzflags) -fuzztime $(call fuzzbudget,400000x) ./upstream/uwsgi/
	go test -run '^$$' -fuzz '^FuzzReadResponse$$' $(fuzzflags) -fuzztime $(call fuzzbudget,400000x) ./upstream/uwsgi/

build:
	go build -o bin/tandem ./cmd/tandem

example:
	go run ./cmd/tandem run -c examples/quickstart/tandem.conf
