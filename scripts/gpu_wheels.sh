#!/usr/bin/env bash
# Download, on a CPU machine with network, exactly the wheels the GPU machine lacks (Python 3.12, x86_64) into
# wheels/ (git-ignored), for `scripts/gpu_run.py` to install there with no network (`pip install --no-index
# --no-deps wheels/*.whl`). The GPU image already holds torch, numpy, scipy, scikit-image, matplotlib, pandas, tqdm,
# onnx, onnxruntime, requests, pyyaml, protobuf, click, anyio and the rest listed in the device tool's KINDS.md; the
# run needs neither ITK nor pydicom (no DICOM there), so they are not carried. Versions are those this bundle is
# tested with. Usage: scripts/gpu_wheels.sh [FOLDER]   (default wheels/; prints the total size)
set -euo pipefail
cd "$(dirname "$0")/.."
folder="${1:-wheels}"
mkdir -p "$folder"
packages=(
    monai==1.6.1 pytorch-ignite==0.5.5 nibabel==5.4.2 nilearn==0.14.1
    # MLflow tracking into SQLite: the client without the server, and the SQL store's own dependencies
    mlflow-skinny==3.17.2 mlflow-tracing==3.17.2 sqlalchemy==2.1.9 alembic==1.20.1 mako==1.4.3
    cachetools==7.3.3 databricks-sdk==0.167.0 google-auth==2.63.0 pyasn1==0.6.3 pyasn1-modules==0.4.2
    cryptography==48.0.0 cffi==2.0.0 pycparser==3.0 fastapi==0.165.0 starlette==1.10.0 uvicorn==0.55.0
    gitpython==3.2.1 gitdb==4.0.12 smmap==5.0.3 importlib-metadata==9.1.0 importlib-resources==7.1.0
    opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2 opentelemetry-proto==1.45.2
    opentelemetry-semantic-conventions==0.66b2 pydantic==2.13.4 pydantic-core==2.46.4 annotated-types==0.7.0
    typing-inspection==0.4.2 python-dotenv==1.2.2 sqlparse==0.6.1
)
for spec in "${packages[@]}"; do
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$folder" \
        --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any "$spec"
done
echo "$(ls "$folder"/*.whl | wc -l) wheels in $folder, $(du -sh "$folder" | cut -f1) in all"
