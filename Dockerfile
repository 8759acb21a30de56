# syntax=docker/dockerfile:1
# Multi-stage build: a static binary on a distroless, non-root base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/towerrecall ./cmd/towerrecall

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/towerrecall /usr/local/bin/towerrecall
COPY configs /etc/towerrecall
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/towerrecall"]
CMD ["serve", "--config", "/etc/towerrecall/production.yaml"]
