# syntax=docker/dockerfile:1
# The image stream operator: `imagestream-operator` on Python 3.11, as a non-root user.
#
#   docker build -t REGISTRY/imagestream-operator:0.1.0 .
#
# Not built by this repository's CI: the development and CI machines have the docker client but no engine
# (and no BuildKit or registry access to pull the base). Build it where an engine exists; see docs/install.md.
#
# The base is pinned by digest. This file was written on a machine that cannot reach Docker Hub, so the digest
# below is a placeholder of zeros: the build fails at the pull until it is replaced. Resolve the current one with
#   docker buildx imagetools inspect python:3.11-slim-bookworm      (the "Digest:" line), or
#   crane digest python:3.11-slim-bookworm
# and write it here (or pass --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest>).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:0000000000000000000000000000000000000000000000000000000000000000

# Stage 1: the project's wheel and a wheel of every dependency, so the runtime stage installs offline.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --wheel-dir /wheels .

# Stage 2: only the installed packages; no compilers, no source tree, no wheels left behind.
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    HOME=/tmp
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels imagestreams \
    && imagestream-operator --help >/dev/null
# A numeric user, so the chart's runAsNonRoot can verify it; the root filesystem can be read-only (the chart
# mounts an emptyDir at /tmp, which is also HOME).
USER 65532:65532
LABEL org.opencontainers.image.title="imagestream-operator" \
      org.opencontainers.image.description="OpenShift-style ImageStreams for any Kubernetes cluster" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["imagestream-operator"]
CMD ["--log-format=json"]
