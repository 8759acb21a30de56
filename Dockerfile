# syntax=docker/dockerfile:1
# Multi-stage build for machines with a container engine and registry
# access: a static binary on a distroless, non-root base. Image names are
# fully qualified so podman and buildah resolve them too. The binary is
# built by deploy/build-binary.sh, the same script as `make build` and
# deploy/build-image.sh (the registry-free image on scratch that CI builds
# and runs); the .git directory is in the context so the binary is stamped
# with its revision (`towerrecall version`).
FROM docker.io/library/golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN ./deploy/build-binary.sh /out/towerrecall

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/towerrecall /usr/local/bin/towerrecall
COPY configs /etc/towerrecall
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/towerrecall"]
CMD ["serve", "--config", "/etc/towerrecall/production.yaml"]
