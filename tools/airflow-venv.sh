#!/usr/bin/env bash
# Builds the Airflow 3 virtualenv the Airflow tests run the generated DAGs in: .tools/airflow (or $1).
# A venv of its own because Airflow's pins (sqlalchemy, fastapi, opentelemetry...) conflict with mlflow's;
# it deliberately does NOT contain mlc: a generated DAG file must import nothing from mlc, and its tasks call
# the `mlc` executable found on PATH, as they would on a user's worker.
# Airflow publishes its constraint files outside PyPI, so the key packages are pinned here instead.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.tools/airflow}
PY=${PYTHON:-python3}
AIRFLOW=3.3.2
CNCF_KUBERNETES=10.25.0
STANDARD=1.21.0
if [[ -x $VENV/bin/airflow ]] && "$VENV/bin/python" -c "import airflow, sys; sys.exit(airflow.__version__ != '$AIRFLOW')" 2>/dev/null \
   && "$VENV/bin/python" -c "import airflow.providers.cncf.kubernetes" 2>/dev/null; then
  echo "airflow $AIRFLOW already in $VENV"
  exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/pip" install -q "apache-airflow==$AIRFLOW" "apache-airflow-providers-cncf-kubernetes==$CNCF_KUBERNETES" \
  "apache-airflow-providers-standard==$STANDARD"
"$VENV/bin/airflow" version
