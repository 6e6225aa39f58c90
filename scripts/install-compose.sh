#!/usr/bin/env bash
# Install the Docker Compose v2 CLI plugin when the machine lacks it.
#
# No container registry and no GitHub release downloads are reachable here,
# only the Go module proxy: so compose is built from its Go module at a
# pinned version. `go install` refuses that module (its go.mod has exclude
# directives), but building inside a writable copy of the module folder
# works. The Go build cache makes a second build fast; when `docker compose
# version` already works nothing is done at all.
#
# Environment:
#   COMPOSE_VERSION  module version to build (default v2.40.3, seen to work
#                    with Docker Engine 20.10 / API 1.41)
#   DOCKER_CONFIG    docker's config dir (default ~/.docker); the plugin goes
#                    to $DOCKER_CONFIG/cli-plugins/docker-compose
#   FORCE=1          build even when `docker compose version` works
set -euo pipefail

COMPOSE_VERSION="${COMPOSE_VERSION:-v2.40.3}"
PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
PLUGIN="$PLUGIN_DIR/docker-compose"
GO="${GO:-go}"

have_v2() {
	local v
	v="$(docker compose version --short 2>/dev/null)" || return 1
	# v1's docker-compose never answers as a docker plugin, but be strict.
	case "$v" in v2.* | 2.* | v[3-9].* | [3-9].*) return 0 ;; esac
	return 1
}

if [ "${FORCE:-}" != 1 ] && have_v2; then
	echo "install-compose: docker compose $(docker compose version --short) already present"
	exit 0
fi

command -v "$GO" >/dev/null || { echo "install-compose: go not found in PATH" >&2; exit 1; }
mkdir -p "$PLUGIN_DIR"

# Several worktrees may run `make tools` at once: build only once.
exec 9>"$PLUGIN_DIR/.docker-compose.lock"
flock 9
if [ "${FORCE:-}" != 1 ] && have_v2; then
	echo "install-compose: docker compose $(docker compose version --short) installed meanwhile"
	exit 0
fi

echo "install-compose: building docker compose $COMPOSE_VERSION from the Go module (takes minutes on 2 cores)"
dir="$(GOFLAGS=-mod=mod "$GO" mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [ -z "$dir" ] || [ ! -f "$dir/cmd/main.go" ]; then
	echo "install-compose: module download gave no usable folder (got '$dir')" >&2
	exit 1
fi

tmp="$(mktemp -d)"
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
# The module cache is read-only: build inside a writable copy.
cp -R "$dir" "$tmp/src"
chmod -R u+w "$tmp/src"
(
	cd "$tmp/src"
	# Same flags as compose's own Makefile; the main package is ./cmd.
	CGO_ENABLED=0 GOFLAGS=-mod=mod "$GO" build -trimpath \
		-ldflags "-w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
		-o "$tmp/docker-compose" ./cmd
)
install -m 0755 "$tmp/docker-compose" "$PLUGIN.new"
mv -f "$PLUGIN.new" "$PLUGIN"

if ! have_v2; then
	echo "install-compose: built $PLUGIN but 'docker compose version' still fails" >&2
	exit 1
fi
echo "install-compose: installed docker compose $(docker compose version --short) at $PLUGIN"
