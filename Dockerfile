# dockmoat as a container image: a static binary on an empty (scratch) base.
#
# This file compiles dockmoat in a golang stage, so the Docker daemon that
# builds it needs access to a registry for the golang image and to the Go
# module proxy:
#
#   docker build -t dockmoat .
#
# A daemon without registry access builds Dockerfile.release instead. It has
# the same final stage and copies a static binary that was built on the host:
#
#   CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o dockmoat ./cmd/dockmoat
#   docker build -f Dockerfile.release -t dockmoat .
#
# The final stages of both files must stay the same; a test in test/e2e
# compares them and builds Dockerfile.release through the gateway.
#
# Run the gateway with the Docker socket mounted and its state in a volume.
# The first run creates the CA, a server certificate and the admin client
# (add --dns/--ip for the names clients dial):
#
#   docker run -d --name dockmoat -p 2376:2376 \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -v dockmoat-state:/var/lib/dockmoat dockmoat up --listen 0.0.0.0:2376
#
# Copy the admin bundle out with 'docker cp dockmoat:/var/lib/dockmoat/clients/admin .'.
# Later runs may use the default command, serve, which expects that state.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO_ENABLED=0 gives a static binary, which scratch needs because it has no
# C library.
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/dockmoat ./cmd/dockmoat

FROM scratch
COPY --from=build /out/dockmoat /usr/local/bin/dockmoat
# The state directory holds the CA key, so it belongs in a volume that only
# this container mounts.
ENV DOCKMOAT_DIR=/var/lib/dockmoat
VOLUME ["/var/lib/dockmoat"]
# Root in the container, because the mounted Docker socket belongs to root
# and to the docker group, whose id differs between hosts. To drop root, run
# with --user UID:GID, GID being the host's docker group id, and make the
# state volume writable by UID.
USER 0:0
EXPOSE 2376
ENTRYPOINT ["/usr/local/bin/dockmoat"]
CMD ["serve", "--listen", "0.0.0.0:2376", "--docker", "unix:///var/run/docker.sock"]
