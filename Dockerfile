# The image Kubeflow Pipelines runs Conveyor's components in
# (conveyor pipeline compile --engine kubeflow --image IMAGE).
# The project is copied to /app, the image's working directory, so a pipeline
# file in the repository is found by its relative path.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . /app
# gcc builds the C tf.Example decoder (beam_utils/_wire.c) and leaves after.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install -c constraints.txt . \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/*

CMD ["conveyor", "--help"]
