# Dispatch as one self-contained executable (migrations embedded) on a distroless base.
#   docker build -t dispatch .
#   docker run --rm -p 8080:8080 -e DATABASE_URL=postgres://… dispatch [serve|api|worker|migrate]
# No HEALTHCHECK: the runtime image has no shell or curl. Probe GET /healthz (liveness) and
# GET /readyz (readiness) from the orchestrator instead; every role, worker included, serves them.

FROM denoland/deno:2.9.6 AS build
WORKDIR /app
# Dependencies first, so code changes reuse this layer.
COPY deno.json deno.lock ./
RUN deno install --frozen
COPY main.ts ./
COPY src/ src/
COPY migrations/ migrations/
RUN deno task compile

# glibc and libgcc, which the Deno runtime needs, and nothing else; runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
WORKDIR /home/nonroot
COPY --from=build /app/dist/dispatch /usr/local/bin/dispatch
ENV ADDR=:8080
EXPOSE 8080
USER nonroot
ENTRYPOINT ["/usr/local/bin/dispatch"]
CMD ["serve"]
