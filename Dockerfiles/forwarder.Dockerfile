# The classifier's forwarder on its own (`vcpe forwarder run STATE`): for hosts where an
# orchestrator, not vcpe's supervisor, runs it. Not root: the binary carries the four
# capabilities it uses (NET_ADMIN, NET_RAW, SYS_ADMIN for setns into chains' namespaces,
# BPF for the flow cache); grant the same with --cap-add and do not set no-new-privileges.
#   docker buildx build --platform linux/amd64,linux/arm64 -f Dockerfiles/forwarder.Dockerfile -t vcpe-forwarder:dev .
ARG SWIFT_VERSION=6.3
ARG DEBIAN_RELEASE=bookworm

FROM swift:${SWIFT_VERSION}-${DEBIAN_RELEASE} AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libnl-3-dev libnl-route-3-dev libnl-genl-3-dev \
       libmnl-dev libnftnl-dev libbpf-dev libcap2-bin \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN swift build -c release --static-swift-stdlib --product vcpe \
    && install -D -m 0755 "$(swift build -c release --static-swift-stdlib --show-bin-path)/vcpe" /out/vcpe \
    && setcap cap_net_admin,cap_net_raw,cap_sys_admin,cap_bpf+ep /out/vcpe

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libnl-3-200 libnl-route-3-200 libnl-genl-3-200 \
       libmnl0 libnftnl11 libbpf1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 vcpe && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/vcpe --create-home vcpe
# COPY keeps the file capabilities set in the build stage.
COPY --from=build /out/vcpe /usr/local/bin/vcpe
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/vcpe", "forwarder", "run"]
CMD ["/var/lib/vcpe"]
