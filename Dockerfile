# One image for the Django admin, the init job and every Airflow component of docker-compose.yaml.
FROM python:3.12-slim
# uv pinned (the lock file's installer); .dockerignore keeps .venv, var/, .env and databases out of the image.
COPY --from=ghcr.io/astral-sh/uv:0.13 /uv /usr/local/bin/uv
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1
WORKDIR /app
# Dependencies first (a layer that only changes with uv.lock), then the project.
COPY pyproject.toml uv.lock README.md .python-version ./
RUN uv sync --locked --no-dev --no-install-project
COPY . .
RUN uv sync --locked --no-dev
# An unprivileged user owns what the volumes mount (a new named volume takes the image folder's owner).
RUN useradd --system --uid 50000 --home-dir /app --shell /usr/sbin/nologin etl \
    && mkdir -p /var/lib/etl /opt/airflow /app/dags/generated \
    && chown -R etl /var/lib/etl /opt/airflow /app/dags/generated
USER etl
EXPOSE 8000 8080 8793
CMD ["python", "-m", "deploy.services", "--help"]
