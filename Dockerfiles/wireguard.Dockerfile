# A VPN service's daemon: wireguard-go, as vcpe runs it (in the foreground, the UAPI
# socket under /var/run/wireguard). Not root: the binary carries NET_ADMIN, the one
# capability it uses (to make its TUN device); give the container --cap-add NET_ADMIN and
# --device /dev/net/tun, and join the service's network namespace.
#   docker buildx build --platform linux/amd64,linux/arm64 -f Dockerfiles/wireguard.Dockerfile -t vcpe-wireguard:dev .
ARG DEBIAN_RELEASE=bookworm

FROM debian:${DEBIAN_RELEASE}-slim AS build
# wireguard-go is Debian's build; setcap needs libcap2-bin, which the runtime stage does not.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends wireguard-go libcap2-bin \
    && rm -rf /var/lib/apt/lists/* \
    && install -D -m 0755 /usr/bin/wireguard-go /out/wireguard-go \
    && setcap cap_net_admin+ep /out/wireguard-go

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN groupadd --system --gid 10002 wireguard && useradd --system --uid 10002 --gid 10002 --no-create-home wireguard \
    && install -d -o wireguard -g wireguard -m 0755 /var/run/wireguard
COPY --from=build /out/wireguard-go /usr/local/bin/wireguard-go
USER 10002:10002
ENV WG_PROCESS_FOREGROUND=1 LOG_LEVEL=error
ENTRYPOINT ["/usr/local/bin/wireguard-go"]
CMD ["wg0"]
