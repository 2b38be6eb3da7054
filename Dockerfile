# syntax=docker/dockerfile:1
# One image for every role of the cluster (api, Ray head, Ray worker): Ray and Python must be
# the same version on every node and driver. Targets: `cpu` (tensorflow-cpu) and `gpu`
# (TensorFlow with its CUDA wheels). Build: docker build --target cpu -t automl:cpu .
#
# The app runs from its source tree (/app): migrations/, alembic.ini and the dashboard's
# templates/static are read next to the code, so the project is installed editable there.

# Pinned to the Python of the development venv (3.11.7).
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
WORKDIR /app

# ---- build stages: a venv with the pinned set, no compilers left in the final image ----
FROM base AS deps
RUN python -m venv /opt/venv
COPY pyproject.toml constraints.txt ./
# The project's runtime dependencies (not the dev extras), read from pyproject.toml, except
# TensorFlow: each target installs its own flavour at the pinned version. Ray gets its
# `default` extra too: the head's dashboard needs it (its extra packages are not in
# constraints.txt, which pins the development venv; Ray itself stays pinned).
RUN python - > /tmp/requirements.txt <<'PY'
import tomllib
for req in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    if not req.startswith("tensorflow"):
        print(req.replace("ray[tune]", "ray[default,tune]"))
PY
RUN grep -v '^tensorflow==' constraints.txt > /tmp/constraints.txt \
    && grep '^tensorflow==' constraints.txt | cut -d= -f3 > /tmp/tf-version \
    && pip install -c /tmp/constraints.txt -r /tmp/requirements.txt

FROM deps AS build-cpu
# tensorflow-cpu: the same TensorFlow release without the CUDA wheels
RUN pip install -c /tmp/constraints.txt "tensorflow-cpu==$(cat /tmp/tf-version)"
COPY . .
# --no-deps: the project's `tensorflow` requirement is met by tensorflow-cpu here
RUN pip install --no-deps -e .

FROM deps AS build-gpu
# and-cuda pulls the NVIDIA runtime libraries that this TensorFlow release was built against
RUN pip install -c /tmp/constraints.txt "tensorflow[and-cuda]==$(cat /tmp/tf-version)"
COPY . .
RUN pip install --no-deps -e .

# ---- runtime: a non-root user with a writable home and Ray temp dir ----
FROM base AS runtime
ARG UID=10001
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl procps tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --home-dir /home/automl --uid ${UID} --shell /bin/bash automl \
    && mkdir -p /data/artifacts /tmp/ray \
    && chown -R automl:automl /data /tmp/ray /home/automl
ENV HOME=/home/automl \
    RAY_TMPDIR=/tmp/ray \
    RAY_USAGE_STATS_ENABLED=0 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    AUTOML_ARTIFACT_DIR=/data/artifacts \
    AUTOML_HOST=0.0.0.0
EXPOSE 8000
# tini reaps Ray's daemons and forwards SIGTERM (docker stop) to the command only: the command
# stops its own children in order (`automl worker` drains its node; `automl serve` stops the
# controller while the API container's raylet still runs)
ENTRYPOINT ["tini", "--"]
CMD ["automl", "serve"]

FROM runtime AS gpu
COPY --from=build-gpu /opt/venv /opt/venv
COPY --from=build-gpu --chown=automl:automl /app /app
# fractional GPU requests (spec.resources.gpus: 0.5) share one device: each TensorFlow process
# takes memory as it needs it instead of all of it at start
ENV TF_FORCE_GPU_ALLOW_GROWTH=true
USER automl

# last, so that a plain `docker build .` gives the CPU image
FROM runtime AS cpu
COPY --from=build-cpu /opt/venv /opt/venv
COPY --from=build-cpu --chown=automl:automl /app /app
USER automl
