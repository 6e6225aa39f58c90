#!/usr/bin/env bash
# Wall time of `unhost migrate` against `docker compose config -q` on the
# same generated file, as the median of interleaved pairs (the order
# alternates in each pair), and their ratio.
#
#   scripts/bench-migrate.sh SERVICES [PAIRS]     (default 500 services, 7 pairs)
#
# The file is the one migrate/bench_test.go's genStack writes: host-network
# databases, APIs that reach them on localhost and web front ends with
# ports: entries, a third of each. unhost runs with --no-engine (no image
# metadata), prints the diff to /dev/null, and must exit 0; so must compose.
# Run it on an idle machine: the goal is wall time there.
set -euo pipefail

n="${1:-500}"
pairs="${2:-7}"
cd "$(dirname "$0")/.."
GO="${GO:-go}"
CGO_ENABLED=0 "$GO" build -o bin/unhost ./cmd/unhost
docker compose version >/dev/null

dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
awk -v n="$n" 'BEGIN {
	printf "# generated: %d host-network services\nservices:\n", n
	for (i = 0; i < n; i++) {
		if (i % 3 == 0)
			printf "  db%d:\n    image: postgres:16\n    network_mode: host  # db\n    environment:\n      PGPORT: \"%d\"\n\n", i, 20000+i
		else if (i % 3 == 1)
			printf "  api%d:\n    image: example/api:1\n    network_mode: host\n    environment:\n      PORT: \"%d\"\n      DATABASE_URL: postgres://u@localhost:%d/app\n\n", i, 20000+i, 20000+i-1
		else
			printf "  web%d:\n    image: example/web:1\n    network_mode: host\n    ports:\n      - \"%d:%d\"\n    command: [\"--upstream\", \"http://127.0.0.1:%d\"]\n\n", i, 20000+i, 20000+i, 20000+i-1
	}
}' >"$dir/compose.yaml"

t() { # run a command; print its wall and CPU (user+sys) time in ms
	/usr/bin/time -f '%e %U %S' -o "$dir/time" "$@" >/dev/null
	awk '{ printf "%d %d\n", $1 * 1000, ($2 + $3) * 1000 }' "$dir/time"
}
run_unhost() { t ./bin/unhost migrate --no-engine -f "$dir/compose.yaml" -p bench; }
run_compose() { t docker compose -f "$dir/compose.yaml" -p bench config -q; }

run_unhost >/dev/null # warm the page cache and the binaries
run_compose >/dev/null
uw=() uc=() cw=() cc=()
for ((i = 0; i < pairs; i++)); do
	if ((i % 2 == 0)); then
		read -r w c < <(run_unhost); uw+=("$w") uc+=("$c")
		read -r w c < <(run_compose); cw+=("$w") cc+=("$c")
	else
		read -r w c < <(run_compose); cw+=("$w") cc+=("$c")
		read -r w c < <(run_unhost); uw+=("$w") uc+=("$c")
	fi
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo "services=$n pairs=$pairs load=$(cut -d' ' -f1 /proc/loadavg)"
echo "  unhost wall ms: ${uw[*]}  cpu ms: ${uc[*]}"
echo "  compose wall ms: ${cw[*]}  cpu ms: ${cc[*]}"
awk -v uw="$(median "${uw[@]}")" -v cw="$(median "${cw[@]}")" -v uc="$(median "${uc[@]}")" -v cc="$(median "${cc[@]}")" -v n="$n" 'BEGIN {
	printf "%d services (medians): unhost migrate %d ms wall / %d ms CPU, docker compose config -q %d ms wall / %d ms CPU: wall ratio %.2f, CPU ratio %.2f\n", n, uw, uc, cw, cc, uw / cw, uc / cc
}'
