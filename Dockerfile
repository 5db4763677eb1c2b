# The Losslens server and worker image (one image, two commands: see docker-compose.yml).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY server server
COPY worker worker
COPY client_sdk client_sdk
COPY migrations migrations
COPY frontend frontend
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 losslens
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY --chown=losslens frontend /app/frontend
COPY --chown=losslens examples /app/examples
WORKDIR /app
USER losslens
ENV LOSSLENS_DATA_DIR=/home/losslens/.losslens PYTHONUNBUFFERED=1
EXPOSE 8765
CMD ["losslens", "serve", "--host", "0.0.0.0", "--port", "8765"]
