#!/usr/bin/env bash
# Install what is missing, and nothing else: Debian's Fashion-MNIST (where apt exists and we are
# root), then this package with its dev extras. Safe to run again; quick when all is in place.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "note: Fashion-MNIST not found; run 'sudo apt-get install dataset-fashion-mnist' or 'rdmbench data fetch fashion-mnist'" >&2
  fi
fi

# pip resolves an already-satisfied editable install in seconds; the stamp skips even that.
# The example outside plugin (examples/rdmbench-usearch) is installed too: the tests exercise it.
stamp=.install-stamp
example=examples/rdmbench-usearch
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ $example/pyproject.toml -nt "$stamp" ] \
   || ! "$PYTHON" -c "import rdmbench, torch, diffusers, torch_fidelity, rdmbench_usearch" 2>/dev/null \
   || ! command -v rdmbench >/dev/null; then
  "$PYTHON" -m pip install -q --disable-pip-version-check -e ".[dev]" -e "$example"
  touch "$stamp"
fi
