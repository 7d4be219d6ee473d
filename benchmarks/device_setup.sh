#!/usr/bin/env bash
# Source this at the start of a device-tool command: installs the carried py3.12 wheels (.whl/, an
# ignored folder: pydantic, jsonschema, optuna ...) and this package (editable, offline) on the GPU machine.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null
python3 -c "import skillbank.runtime.networks.factory, skillbank.specs; print('skillbank importable')"
