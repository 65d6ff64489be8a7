# tally: one image for the API, the projector and the webhook sender (compose.yaml picks the subcommand).
# The build stage compiles domain/ with mypyc (setup.py) into a wheel: it needs a C compiler, which the slim
# image lacks (the Python headers it has). The runtime stage installs that wheel and has no compiler.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY domain domain
COPY store store
COPY api api
COPY projector projector
COPY cli cli
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
EXPOSE 8080
ENTRYPOINT ["tally"]
