# The vcpe controller: `vcpe apply/status/delete` and the forwarder's supervisor, with the
# OCI runtime (runc) and wireguard-go that it starts service containers with. It works on
# the host's kernel objects, so it runs as root with the host's network and PID view
# (see README, "Docker and Kubernetes").
#   docker buildx build --platform linux/amd64,linux/arm64 -f Dockerfiles/vcpe.Dockerfile -t vcpe:dev .
ARG SWIFT_VERSION=6.3
ARG DEBIAN_RELEASE=bookworm

FROM swift:${SWIFT_VERSION}-${DEBIAN_RELEASE} AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libnl-3-dev libnl-route-3-dev libnl-genl-3-dev \
       libmnl-dev libnftnl-dev libbpf-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The Swift runtime linked in: the runtime stage needs only the C libraries below.
RUN swift build -c release --static-swift-stdlib --product vcpe \
    && install -D -m 0755 "$(swift build -c release --static-swift-stdlib --show-bin-path)/vcpe" /out/vcpe

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# Debian 12 point releases replace package versions; the release pins the ABI.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libnl-3-200 libnl-route-3-200 libnl-genl-3-200 \
       libmnl0 libnftnl11 libbpf1 runc wireguard-go \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/vcpe /usr/local/bin/vcpe
ENV VCPE_STATE_DIR=/var/lib/vcpe
VOLUME ["/var/lib/vcpe"]
ENTRYPOINT ["/usr/local/bin/vcpe"]
CMD ["--help"]
