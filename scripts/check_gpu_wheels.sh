#!/usr/bin/env bash
# Check that the wheels of scripts/gpu_wheels.sh install into a clean Python 3.12 virtual environment with no
# network, on top of the packages the GPU image already holds. Usage: scripts/check_gpu_wheels.sh [PYTHON3.12] [WHEELS]
# 1. a fresh venv gets, from PyPI, the GPU image's own packages that the carried ones import (numpy, scipy, pandas,
#    scikit-learn, ...; torch is left out: PyPI's is a CUDA build of several GB, and the image has its own);
# 2. the carried wheels are installed with --no-index --no-deps (no network, nothing resolved);
# 3. `pip check` must report nothing but torch, and nibabel, nilearn's MNI152 template and an MLflow SQLite store
#    must work.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${1:-python3.12}"
wheels="${2:-wheels}"
venv="$(mktemp -d)/venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet numpy scipy pandas scikit-learn joblib lxml requests pyyaml protobuf click \
    anyio cloudpickle typing-extensions zipp packaging jinja2 markupsafe h11 idna certifi urllib3 charset-normalizer \
    attrs python-dateutil six annotated-doc 2>&1 | grep -v "^WARNING: Location" || true
"$venv/bin/python" -m pip install --no-index --no-deps --quiet "$wheels"/*.whl
problems="$("$venv/bin/python" -m pip check 2>&1 | grep -v -i "requires torch" | grep -v "^No broken" || true)"
if [ -n "$problems" ]; then
    echo "error: $wheels: pip check found unmet requirements besides torch:" >&2
    echo "$problems" >&2
    exit 1
fi
"$venv/bin/python" - <<'PY'
import tempfile, nibabel, nilearn.datasets
from mlflow.tracking import MlflowClient
template = nilearn.datasets.load_mni152_template(resolution=2)
uri = f"sqlite:///{tempfile.mkdtemp()}/mlruns.db"
client = MlflowClient(uri)
run = client.create_run(client.create_experiment("check")).info.run_id
client.log_metric(run, "psnr", 27.0)
print(f"ok: {nibabel.__version__=}, MNI152 {template.shape}, MLflow SQLite store {uri} took a metric")
PY
echo "ok: $(ls "$wheels"/*.whl | wc -l) wheels installed offline into $venv ($("$venv/bin/python" --version))"
