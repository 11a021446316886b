# syntax=docker/dockerfile:1
# A mirror of `make build`: the sidecar and every plugin, in a small image that
# runs as a non-root user. Build: docker build -t outrigger .
FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN make build VERSION=${VERSION}

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/outrigger /usr/local/bin/outrigger
COPY --from=build /src/bin/plugins /usr/local/bin/plugins
ENV DAPR_COMPONENTS_SOCKETS_FOLDER=/tmp/dapr-components-sockets
USER nonroot:nonroot
EXPOSE 3500 50001 9090
ENTRYPOINT ["/usr/local/bin/outrigger", "sidecar"]
