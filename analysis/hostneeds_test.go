package analysis

import (
	"sort"
	"strings"
	"testing"
)

func needKinds(ns []HostNeed) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Kind)
	}
	sort.Strings(out)
	return out
}

func TestHostNeeds(t *testing.T) {
	tests := []struct {
		name    string
		service string
		want    string // sorted kinds, comma separated
	}{
		{"scrypted image (item 1, 2)", "    image: ghcr.io/koush/scrypted", "image"},
		{"node-exporter image (item 2)", "    image: prom/node-exporter:v1.8.0", "image"},
		{"coturn image and range (item 2)", "    image: coturn/coturn\n    ports: [\"49152-65535:49152-65535/udp\"]", "image,port-range"},
		{"shairport-sync program (item 2)", "    image: example/airplay:1\n    command: [\"shairport-sync\", \"-v\"]", "program"},
		{"ROS 2 by its DDS variables (item 2)", "    image: example/robot:1\n    environment:\n      ROS_DOMAIN_ID: \"42\"\n      RMW_IMPLEMENTATION: rmw_cyclonedds_cpp", "program"},
		{"ROS 2 by a DDS variable, list form", "    image: example/robot:1\n    environment:\n      - FASTRTPS_DEFAULT_PROFILES_FILE=/shm-only.xml", "program"},
		{"RTP range from variables", "    image: kurento/kurento-media-server\n    environment:\n      KMS_MIN_PORT: 24577\n      KMS_MAX_PORT: 32768", "port-range"},
		{"relay range from flags with defaults", "    image: example/turn:1\n    command:\n      - --min-port=${COTURN_MIN_PORT:-57001}\n      - --max-port=${COTURN_MAX_PORT:-65535}", "port-range"},
		{"small range", "    image: example/app:1\n    environment:\n      - RTP_PORT_MIN=10000\n      - RTP_PORT_MAX=10010", ""},
		{"privileged (item 3)", "    image: docker:dind\n    privileged: true", "privileged"},
		{"dae privileged and pid host (item 3)", "    image: daeuniverse/dae\n    privileged: true\n    pid: host", "pid,privileged"},
		{"net caps", "    image: example/sniffer:1\n    cap_add: [NET_ADMIN, SYS_TIME, cap_net_raw]", "cap_add,cap_add"},
		{"tun", "    image: example/vpn:1\n    devices: [\"/dev/net/tun:/dev/net/tun\"]", "devices"},
		{"net broadcast", "    image: example/wol:1\n    cap_add: [NET_BROADCAST]", "cap_add"},
		{"mDNS listener", "    image: example/app:1\n    ports: [\"5353:5353/udp\"]", "discovery-port"},
		{"nothing", "    image: postgres:16", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, f := analyzeYAML(t, "services:\n  app:\n    network_mode: host\n"+tt.service+"\n")
			ns := f.Services["app"].HostNeeds
			if got := strings.Join(needKinds(ns), ","); got != tt.want {
				t.Fatalf("kinds = %q, want %q (%+v)", got, tt.want, ns)
			}
			for _, n := range ns {
				if n.Reason == "" || n.Evidence.Detail == "" {
					t.Errorf("need without reason or detail: %+v", n)
				}
				if (n.Kind == "image" || n.Kind == "program") && !strings.HasPrefix(n.Source, "https://") {
					t.Errorf("%s need without source: %+v", n.Kind, n)
				}
				if n.Evidence.Where == "" {
					t.Errorf("need without position: %+v", n)
				}
			}
		})
	}
}

func TestNetworkModeVariable(t *testing.T) {
	_, f := analyzeYAML(t, "services:\n  app:\n    image: example/app:1\n    network_mode: ${NETMODE:-host}\n  plain:\n    image: example/app:1\n    network_mode: host\n")
	vc := f.Services["app"].NetworkModeFrom
	if vc == nil || vc.Variable != "NETMODE" || vc.Value != "host" || vc.Text != "${NETMODE:-host}" || vc.Evidence.Where != "compose.yaml:4:19" {
		t.Fatalf("NetworkModeFrom = %+v", vc)
	}
	if f.Services["plain"].NetworkModeFrom != nil {
		t.Errorf("plain network_mode reported as chosen by a variable")
	}
}

func TestDependsOn(t *testing.T) {
	_, f := analyzeYAML(t, `services:
  kafka:
    image: bitnami/kafka
    network_mode: host
    depends_on: [zookeeper, db]
    environment:
      KAFKA_ZOOKEEPER_CONNECT: 127.0.0.1:2181
  zookeeper:
    image: bitnami/zookeeper
    network_mode: host
  db:
    image: postgres:16
`)
	if got := strings.Join(f.Services["kafka"].DependsOn, ","); got != "db,zookeeper" {
		t.Errorf("DependsOn = %q", got)
	}
	// the sibling's documented port is known without an engine (item 6)
	if got := listenerText(f.Services["zookeeper"].Listeners); !contains(got, "tcp/2181@ unknown") {
		t.Errorf("zookeeper listeners = %v", got)
	}
}
