# The two commands a newcomer needs. Each installs what is missing first.

.PHONY: run test spa

## run: build and serve the app with demo data on http://127.0.0.1:3000
run:
	scripts/run.sh

## test: every test (unit, both databases, browser)
test:
	scripts/test.sh

## spa: build the client as a static single-page app into frontend/dist/
spa:
	scripts/spa.sh
