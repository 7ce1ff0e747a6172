# The README's test commands: `make test` (everything, as CI runs it) and `make test-quick` (the edit loop).
PYTEST = python -m pytest -n 2 --dist loadgroup

.PHONY: test test-quick tools
tools:
	@command -v promtool >/dev/null 2>&1 || { echo "installing promtool (apt-get install prometheus)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

test: tools
	$(PYTEST)

# Leaves out the tests marked slow: those that train the full examples, execute the compiled pipelines, or
# install the image lock into a fresh venv.
test-quick: tools
	$(PYTEST) -m "not slow"
