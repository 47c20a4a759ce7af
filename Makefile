# The two commands a newcomer needs. Each installs what is missing first.

.PHONY: run test bench fuzz spa

## run: build and serve the app with demo data on http://127.0.0.1:3000
run:
	scripts/run.sh

## test: every test (unit, both databases, browser)
test:
	scripts/test.sh

## spa: build the client as a static single-page app into frontend/dist/
spa:
	scripts/spa.sh

## bench: the scale benchmark at 10 million jobs; writes BENCHMARKS.md
bench:
	scripts/bench.sh

## fuzz: run each fuzz target for 10 minutes (FUZZ_SECONDS to change)
fuzz:
	scripts/fuzz.sh $${FUZZ_SECONDS:-600}
