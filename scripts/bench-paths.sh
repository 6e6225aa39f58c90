#!/usr/bin/env bash
# A check on the method of `unhost verify --bench` (issue 14): in one run on
# this engine, unhost's path baselines and a plain ping-pong
# (scripts/pingpong, no code shared with verify/netbench) on the same paths,
# side by side.
#
#   scripts/bench-paths.sh [PAIRS]     (default 2; run by: make bench-paths)
#
# It starts the bench stack's original (testdata/verify/bench/original.yaml,
# host network) and runs, PAIRS times, a ping-pong set and then
#   bin/unhost verify -f testdata/verify/bench/migrated.yaml --bench --allow-skip --format json
# and a last ping-pong set after them (P U P U P for 2 pairs): the sets run
# right around each unhost run, never during one (2 cores). A set, like one
# unhost run, gives per path 10,000 round trips of 64 bytes on one
# connection (after 500 untimed), 1,000 connect + 1-byte echo, and the median
# of 5 single-stream throughputs of 0.3 s; it visits the paths in an order
# that rotates from set to set. The paths, as unhost builds them:
#   host-loopback   two processes on the host, 127.0.0.1
#   published-port  client on the host, server in a container on a
#                   user-defined bridge, its ports published on 127.0.0.1
#   bridge          client and server containers on that bridge (both
#                   started once; the client measures through docker exec)
#   host-gateway    that client container, server on the host
#                   listening on docker0's address only, reached as
#                   host.docker.internal (--add-host ...:host-gateway)
# It prints markdown: the machine, the first unhost run's report, every
# figure of every run and set, and the comparison (medians over runs and
# over sets). Everything it creates is labelled and removed on exit. The
# engine part runs under flock $UNHOST_ENGINE_LOCK (default
# /tmp/unhost-engine.lock; empty: no lock).
set -euo pipefail

pairs="${1:-2}"
cd "$(dirname "$0")/.."
GO="${GO:-go}"
lock="${UNHOST_ENGINE_LOCK-/tmp/unhost-engine.lock}"
paths=(host-loopback published-port bridge host-gateway)
measures=(rtt_p50_us rtt_p99_us connect_p50_us connect_p99_us throughput_mbit_s)

id="bp$(date +%s)$$"
label="unhost.bench-paths=$id"
net="unhost-bench-paths-$id"
proj="unhost-bench-paths-$id"
ppimg="unhost-bench-paths/pingpong:$id"
tsimg="unhost-bench-paths/testserver:$id"
tmp="$(mktemp -d)"
hostpids=()

cleanup() {
	set +e
	for p in "${hostpids[@]}"; do kill "$p" 2>/dev/null; done
	if [[ -n "${UNHOST_TEST_IMAGE:-}" ]]; then
		docker compose -p "$proj" -f testdata/verify/bench/original.yaml down -v --timeout 3 >/dev/null 2>&1
	fi
	mapfile -t cs < <(docker ps -aq --filter "label=$label")
	((${#cs[@]})) && docker rm -f "${cs[@]}" >/dev/null
	docker network rm "$net" >/dev/null 2>&1
	docker rmi -f "$ppimg" "$tsimg" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

# Builds: unhost, and the two static programs as FROM scratch images.
make -s build GO="$GO"
static() { CGO_ENABLED=0 GOOS=linux "$GO" build -trimpath -o "$1" "$2"; }
static "$tmp/pingpong" ./scripts/pingpong
static "$tmp/testserver" ./internal/testserver
image() { # image TAG BINARY
	local dir="$tmp/img-${1##*/}"
	mkdir -p "$dir/root"
	cp "$2" "$dir/root/app"
	echo "$1" >"$dir/root/tag" # no layer shared with another build
	printf 'FROM scratch\nCOPY root/ /\nENTRYPOINT ["/app"]\n' >"$dir/Dockerfile"
	if ! docker build -q --label "$label" -t "$1" "$dir" >"$dir/build.log" 2>&1; then
		cat "$dir/build.log" >&2
		return 1
	fi
}

if [[ -n "$lock" ]]; then
	exec 9>"$lock"
	flock 9
fi
image "$ppimg" "$tmp/pingpong"
image "$tsimg" "$tmp/testserver"
export UNHOST_TEST_IMAGE="$tsimg"

# The ping-pong servers: one in a container (published and bridge paths),
# two on the host (loopback, and docker0's address for host-gateway).
docker network create --label "$label" "$net" >/dev/null
docker run -d --name "$net-srv" --label "$label" --network "$net" \
	-p 127.0.0.1::7000 -p 127.0.0.1::7001 "$ppimg" serve -echo :7000 -sink :7001 >/dev/null
# The client container lives through the run, as unhost's probes do (a
# container just started still has the engine busy with it); its main
# process is an idle server, the measures run through docker exec.
docker run -d --name "$net-cli" --label "$label" --network "$net" \
	--add-host host.docker.internal:host-gateway "$ppimg" serve >/dev/null
srvip="$(docker inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$net-srv")"
pubecho="$(docker port "$net-srv" 7000/tcp | head -n1)"
pubsink="$(docker port "$net-srv" 7001/tcp | head -n1)"
# host-gateway is docker0's address unless the daemon sets host-gateway-ip.
gw="$(ip -4 -o addr show docker0 | awk '{ split($4, a, "/"); print a[1]; exit }')"
hostserve() { # hostserve NAME IP: a pingpong server on the host
	"$tmp/pingpong" serve -echo "$2:0" -sink "$2:0" >"$tmp/$1.addr" &
	hostpids+=($!)
	for _ in {1..50}; do
		[[ $(wc -l <"$tmp/$1.addr") -ge 2 ]] && return
		sleep 0.1
	done
	echo "pingpong server on $2 did not start" >&2
	exit 1
}
hostserve lo 127.0.0.1
hostserve gw "$gw"
addr() { awk -v k="$2" '$1 == k { print $2 }' "$tmp/$1.addr"; }
gwport() { local a; a="$(addr gw "$1")"; echo "${a##*:}"; }

client() { # client PATH: one ping-pong measure of PATH, one JSON line
	case "$1" in
	host-loopback) "$tmp/pingpong" client -echo "$(addr lo echo)" -sink "$(addr lo sink)" ;;
	published-port) "$tmp/pingpong" client -echo "$pubecho" -sink "$pubsink" ;;
	bridge) docker exec "$net-cli" /app client -echo "$srvip:7000" -sink "$srvip:7001" ;;
	host-gateway) docker exec "$net-cli" /app client -echo "host.docker.internal:$(gwport echo)" -sink "host.docker.internal:$(gwport sink)" ;;
	esac
}
sets=0
pingpong_set() {
	local k p
	for ((k = 0; k < ${#paths[@]}; k++)); do
		p="${paths[(k + sets) % ${#paths[@]}]}"
		client "$p" >>"$tmp/pp-$p.jsonl"
	done
	sets=$((sets + 1))
}

docker compose -p "$proj" -f testdata/verify/bench/original.yaml up -d --wait >/dev/null 2>&1
load0="$(cut -d' ' -f1-3 /proc/loadavg)"
for ((i = 1; i <= pairs; i++)); do
	echo "pair $i of $pairs: ping-pong set, then unhost verify --bench" >&2
	pingpong_set
	./bin/unhost verify -q -f testdata/verify/bench/migrated.yaml --bench --allow-skip --format json -o "$tmp/unhost-$i.json"
done
pingpong_set
load1="$(cut -d' ' -f1-3 /proc/loadavg)"

# The report.
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
unhost_fig() { # unhost_fig PATH MEASURE: one line per run
	for ((i = 1; i <= pairs; i++)); do
		jq -r --arg p "$1" --arg m "$2" '.bench[] | select(.kind == "baseline" and .path == $p) | if $m == "ratio_to_host" then .ratio_to_host.rtt_p50 else .[$m] end // 0' "$tmp/unhost-$i.json"
	done
}
pp_fig() { jq -r --arg m "$2" '.[$m]' "$tmp/pp-$1.jsonl"; }
r1="$tmp/unhost-1.json"
cat <<EOF
### Machine

$(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), load average $load0 at the start and $load1 at the end; Docker Engine $(docker version -f '{{.Server.Version}}'), API $(docker version -f '{{.Server.APIVersion}}'), published route $(jq -r .bench_env.published_route "$r1"); unhost runs: $pairs, ping-pong sets: $sets, in the order P U P ... P.

### unhost verify --bench, run 1 (bench $(jq -r '.bench_env.seconds | floor' "$r1") s, load average $(jq -r .bench_env.loadavg "$r1"))

| path | route | RTT p50 / p99 µs | connect+echo p50 / p99 µs | Mbit/s | RTT p50 × host |
|---|---|---|---|---|---|
$(jq -r '.bench[] | select(.kind == "baseline") | "| \(.path) | \(.route // .note) | \(.rtt_p50_us // 0 | round) / \(.rtt_p99_us // 0 | round) | \(.connect_p50_us // 0 | round) / \(.connect_p99_us // 0 | round) | \(.throughput_mbit_s // 0 | round) | \(.ratio_to_host.rtt_p50 // "") |"' "$r1")

| service:port | measured | migrated p50 / p99 µs | original p50 / p99 µs | migrated ÷ original p50 |
|---|---|---|---|---|
$(jq -r '.bench[] | select(.kind == "service") | (if .request_samples then ["GET", "request"] else ["connect", "connect"] end) as [$w, $k] | "| \(.service):\(.port) | \($w) (\(.[$k + "_samples"]) each) | \(.[$k + "_p50_us"] // 0 | round) / \(.[$k + "_p99_us"] // 0 | round) | \(.original[$k + "_p50_us"] // 0 | round) / \(.original[$k + "_p99_us"] // 0 | round) | \(.ratio_to_host[$k + "_p50"] // "") |"' "$r1")

### Every run and set

| path | measure | unhost runs | ping-pong sets |
|---|---|---|---|
$(for p in "${paths[@]}"; do for m in "${measures[@]}"; do
	printf '| %s | %s | %s | %s |\n' "$p" "$m" "$(unhost_fig "$p" "$m" | awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), $1 }')" "$(pp_fig "$p" "$m" | awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), $1 }')"
done; done)

### unhost against ping-pong (medians over runs and over sets)

| path | measure | unhost | ping-pong | unhost ÷ ping-pong |
|---|---|---|---|---|
$(for p in "${paths[@]}"; do for m in "${measures[@]}"; do
	awk -v p="$p" -v m="$m" -v u="$(unhost_fig "$p" "$m" | median)" -v q="$(pp_fig "$p" "$m" | median)" \
		'BEGIN { printf "| %s | %s | %.0f | %.0f | %s |\n", p, m, u, q, (u > 0 && q > 0) ? sprintf("%.2f", u / q) : "-" }'
done; done)

### Round trip p50 ÷ host loopback's (the ratios the report gives; medians over runs and over sets)

| path | unhost | ping-pong |
|---|---|---|
$(for p in "${paths[@]:1}"; do
	awk -v p="$p" -v u="$(unhost_fig "$p" ratio_to_host | median)" \
		-v q="$(paste <(pp_fig "$p" rtt_p50_us) <(pp_fig host-loopback rtt_p50_us) | awk '{ print $1 / $2 }' | median)" \
		'BEGIN { printf "| %s | %.2f | %.2f |\n", p, u, q }'
done)
EOF
