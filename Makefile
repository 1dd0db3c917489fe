# Two commands do all the set-up on a fresh machine; each installs what is missing first.
#   make run    -> rdmbench run suites/k_train.yaml --jobs 2 (cpu profile) + report
#   make test   -> the test suite, including the smoke profile of every suite end to end
PYTHON ?= python3
PROFILE ?= cpu
# runs at once (rdmbench run --jobs): two one-thread runs train 1.45x faster than one two-thread run on 2 cores
JOBS ?= 2

.PHONY: install run test test-slow smoke

install:
	bash scripts/install.sh

run: install
	rdmbench run suites/k_train.yaml --profile $(PROFILE) --jobs $(JOBS)

# two workers (tests spread one at a time; module fixtures are built once per worker), one thread each
test: install
	$(PYTHON) -m pytest -q -n 2 --dist loadgroup --durations=15

test-slow: install
	$(PYTHON) -m pytest -q -m slow

smoke: install
	rdmbench run suites/k_train.yaml --profile smoke
