# The two commands of the README. Both install what is missing first (once; later calls are instant).
.PHONY: run test install bench

run:
	@bash devstack/install.sh
	@.venv/bin/python -m devstack.run

test:
	@bash devstack/install.sh --test
	@.venv/bin/python -m pytest $(PYTEST_ARGS)

bench:
	@bash devstack/install.sh
	@for script in bench/[!_]*.py; do .venv/bin/python $$script || exit 1; done
