# syntax=docker/dockerfile:1
# The image stream operator on Python 3.11, as a non-root user, for machines with a Docker engine:
#
#   docker build --build-arg REVISION=$(git rev-parse HEAD) -t REGISTRY/imagestream-operator:0.1.0 .
#
# Without an engine, `make image` builds the same operator from Debian's python3.11 (docs/install.md). Both
# install exactly the Python packages of operator/imagestreams/imagebuild/requirements.lock, by hash, plus the
# project's wheel (tests/unit/test_image_build.py checks that this file keeps doing so). amd64 only: the lock
# hashes the x86_64 wheels.
#
# The base is python:3.11-slim-bookworm (Python 3.11.16, Debian 12) pinned to its linux/amd64 manifest, as the
# Docker Official Images publish it in github.com/docker-library/repo-info, repos/python/remote/
# 3.11-slim-bookworm.md (commits 33a22f41ac7bf613bc03380b0317536a9a7fb5e8 and
# bc9bbb47fc709dc4b29d3b128d66823b953b97a7, image built 2026-08-25; the tag's multi-platform index there is
# sha256:0bee7276f83efd4a1ee05bbbf4281d95ed28e079220a9457f25a93e3f1e3c31b, later
# sha256:fe556eaffd0d96abd8685b83bb8a69addd0dc730fa193669a7df0d49ddcfac02, both with this amd64 manifest).
# Check it where Docker Hub is reachable with `docker buildx imagetools inspect python:3.11-slim-bookworm`.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:2fc9207f64226cb05ac317cee0bab6fa55a9ea311ce5a086baddd4b4a83c2d3c

# Stage 1: the project's wheel, built with the pinned setuptools and pip.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY operator/imagestreams/imagebuild/build-requirements.lock /locks/
RUN pip install --no-deps --require-hashes -r /locks/build-requirements.lock
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-build-isolation --no-deps --wheel-dir /wheels .

# Stage 2: the locked dependencies and the project; pip, setuptools and wheel are removed afterwards, so the
# image holds the same distributions as `make image`'s (its SBOM lists them).
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ENV IMAGESTREAMS_BUILD_REVISION=${REVISION} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    HOME=/tmp
RUN --mount=type=bind,source=operator/imagestreams/imagebuild/requirements.lock,target=/locks/requirements.lock \
    --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-deps --require-hashes --only-binary=:all: -r /locks/requirements.lock \
    && pip install --no-deps --no-index --find-links=/wheels imagestreams \
    && imagestream-operator --help >/dev/null \
    && python3 -m pip uninstall --yes pip setuptools wheel
# A numeric user, so the chart's runAsNonRoot can verify it; the root filesystem can be read-only (the chart
# mounts an emptyDir at /tmp, which is also HOME).
USER 65532:65532
LABEL org.opencontainers.image.title="imagestream-operator" \
      org.opencontainers.image.description="OpenShift-style ImageStreams for any Kubernetes cluster" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENTRYPOINT ["python3", "-m", "imagestreams.controller"]
CMD ["--log-format=json"]
