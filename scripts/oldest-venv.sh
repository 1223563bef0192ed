#!/bin/sh
# A virtual environment of the oldest versions pyproject.toml allows (uv's
# lowest-direct resolution: each dependency at its lower bound), with kiemke
# and its test tools installed in it: `make test-oldest` runs the tests there,
# so that the lower bounds stay true. The bounds are those of Python 3.11 (CI's,
# kiemke's oldest): a newer PYTHON may find no wheel of an oldest version.
# Usage: scripts/oldest-venv.sh VENV PYTHON UV
set -eu
venv=$1
python=$2
uv=$3
"$uv" venv --quiet --clear --python "$python" "$venv"
"$uv" pip compile --quiet pyproject.toml --extra test --resolution lowest-direct \
  --python "$venv/bin/python" --output-file "$venv/requirements.txt"
VIRTUAL_ENV="$venv" "$uv" pip install --quiet --requirement "$venv/requirements.txt"
VIRTUAL_ENV="$venv" "$uv" pip install --quiet --no-deps --editable .
