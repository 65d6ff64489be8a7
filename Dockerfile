# tally: one image for the API, the projector and the webhook sender (compose.yaml picks the subcommand).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY store store
COPY api api
COPY projector projector
COPY cli cli
RUN pip install --no-cache-dir .
EXPOSE 8080
ENTRYPOINT ["tally"]
