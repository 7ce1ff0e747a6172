# The README's test command: `make test`.
.PHONY: test
test:
	@command -v promtool >/dev/null 2>&1 || { echo "installing promtool (apt-get install prometheus)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	python -m pytest -n 2 --dist loadgroup
