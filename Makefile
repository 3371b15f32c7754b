# Shortcuts for developers; CI (.ci/run) runs `lint` and `types`, then ./test.sh.
.PHONY: lint types fast test check

lint:  ## ruff over bot/ and actions/ (ruff.toml)
	.venv/bin/ruff check bot actions

types:  ## mypy over bot/ and actions/ (mypy.ini)
	.venv/bin/mypy

fast:  ## every test that starts no server and runs no Rasa command line (under two minutes)
	./test.sh --fast

test:  ## every test: the README's test command
	./test.sh

check: lint types test
