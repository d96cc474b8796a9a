# syntax=docker/dockerfile:1
#
# logbox in a container: a static binary on distroless (CA certificates and
# tzdata included, no shell), running as the unprivileged user "nonroot".
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t logbox .
#   docker run -d --name logbox -p 7070:7070 -v logbox-data:/data \
#     -v /var/log:/var/log:ro --group-add 4 -e LOGBOX_HOST=$(hostname) \
#     -e LOGBOX_COLLECT='/var/log/*.log' \
#     -v /etc/logbox/tokens:/run/secrets/logbox-tokens:ro \
#     -e LOGBOX_AUTH_TOKEN_FILE=/run/secrets/logbox-tokens \
#     logbox
#
# The default command binds 0.0.0.0:7070, which logbox refuses without
# authentication: give it a token file or an htpasswd file (docs/deploy.md).
# Settings go in env LOGBOX_<FLAG> or a mounted --config file; arguments
# after the image name replace the whole default command.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o /out/logbox . \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/logbox /logbox
# A new named volume starts as a copy of this directory, owned by nonroot
# (65532), so logbox can write its state there.
COPY --from=build --chown=65532:65532 /out/data /data
USER nonroot
EXPOSE 7070
VOLUME /data
ENTRYPOINT ["/logbox"]
CMD ["run", "--data", "/data", "--http", "0.0.0.0:7070"]
