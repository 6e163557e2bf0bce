.PHONY: help run test ci lint bench spec reliability
help:            ## list targets
	@grep -E '^[a-z]+:.*##' Makefile | sed 's/:.*##/\t/'
run:             ## set up and serve with demo data (README command 1)
	./scripts/start.sh
test:            ## set up and run all checks and tests (README command 2)
	./scripts/test.sh
ci:              ## what CI runs: tests with PostgreSQL mandatory
	./.ci/run
lint:            ## ruff and mypy only
	.venv/bin/ruff check src tests bench scripts && .venv/bin/ruff format --check src tests bench scripts && .venv/bin/mypy
bench:           ## benchmark on SQLite and PostgreSQL (see bench/README.md)
	.venv/bin/python -m bench run
spec:            ## rebuild src/medcard/fhir/spec from the R4 definitions (needs npm)
	.venv/bin/python scripts/build_fhir_spec.py
reliability:     ## long-form reliability battery (~50 min); writes RELIABILITY.md
	./scripts/reliability.sh
