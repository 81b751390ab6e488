# CrowdDesk in a container: the project is trained while the image is built, and served by an
# image without PyTorch (the served encoder is the ONNX export the training wrote).
#
#   docker build -t crowddesk .                          # the demo project in this repository
#   docker build -t mybot --build-arg PROJECT=mybot .    # a project folder inside the build context
#   docker compose up --build                            # with PostgreSQL and Redis (compose.yaml)
#
# Secrets never go into the image: pass CROWDDESK_API_TOKEN, database and Redis URLs at run time.

ARG PYTHON=3.11

FROM python:${PYTHON}-slim AS train
WORKDIR /src
COPY pyproject.toml README.md ./
COPY errors errors
COPY storage storage
COPY bot bot
COPY nlu nlu
COPY knowledge_base knowledge_base
COPY connectors connectors
# PyTorch's CPU build (PyPI's default build carries several GB of CUDA libraries).
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu '.[train]'
ARG PROJECT=.
COPY ${PROJECT}/config.yml ${PROJECT}/domain.yml ${PROJECT}/endpoints.yml ${PROJECT}/credentials.yml /project/
COPY ${PROJECT}/data /project/data
COPY ${PROJECT}/actions /project/actions
RUN crowddesk train --project /project

FROM python:${PYTHON}-slim
COPY --from=train /src /src
RUN pip install --no-cache-dir /src && rm -rf /src \
    && useradd --system --create-home crowddesk
COPY --from=train --chown=crowddesk /project /project
USER crowddesk
WORKDIR /project
EXPOSE 5005
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5005/health', timeout=4)"]
# One process on the embedded SQLite by default; compose.yaml runs --workers 2 on PostgreSQL + Redis.
CMD ["crowddesk", "run", "--project", "/project", "--host", "0.0.0.0"]
