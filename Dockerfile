# Stylebot on a CUDA GPU. Data (database, weight cache, outputs) lives in the /data volume.
#   docker build -t stylebot .
#   docker run --gpus all -v stylebot-data:/data -p 8080:8080 \
#       -e STYLEBOT_DISCORD_TOKEN=... stylebot
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    STYLEBOT_HOME=/data \
    STYLEBOT_HTTP_HOST=0.0.0.0 \
    HF_HOME=/data/huggingface

RUN useradd --create-home --uid 10001 stylebot \
 && mkdir -p /data && chown stylebot:stylebot /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY storage ./storage
COPY bot ./bot
COPY stylebot ./stylebot
# torch comes with the base image (CUDA build); everything else from PyPI. compose.yaml
# builds with EXTRAS=ray,postgres for the scaled-out deployment (docs/scaling.md).
ARG EXTRAS=""
RUN pip install ".${EXTRAS:+[$EXTRAS]}" && stylebot --help >/dev/null

USER stylebot
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)" || exit 1
ENTRYPOINT ["stylebot"]
CMD ["run"]
