#!/usr/bin/env bash
# A Python venv with the FHIR R4 models (fhir.resources, PyPI) for the EHR export test:
# target/fhir-venv (or $CARGO_TARGET_DIR/fhir-venv); the tests use its python, or LENDING_FHIR_PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${CARGO_TARGET_DIR:-target}/fhir-venv"
stamp="$dest/requirements.txt"
if [ -x "$dest/bin/python" ] && cmp -s scripts/fhir-requirements.txt "$stamp"; then
    exit 0
fi
rm -rf "$dest"
python3 -m venv "$dest"
"$dest/bin/pip" install --quiet --disable-pip-version-check -r scripts/fhir-requirements.txt
cp scripts/fhir-requirements.txt "$stamp"
"$dest/bin/python" -c 'import fhir.resources as f; assert f.__fhir_version__ == "4.0.1", f.__fhir_version__; print("fhir.resources", f.__version__, "FHIR", f.__fhir_version__, "in", "'"$dest"'")'
