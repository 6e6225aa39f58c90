package migrate

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/unhost/unhost/analysis"
	"github.com/unhost/unhost/load"
)

// Port lines the user wrote one by one stay one by one (issue 10, item
// 13): the analysis reads "8000:8000" and "8001:8001" as one run of
// listeners, which must not come back as "8000-8001:8000-8001".

// singlePorts returns "PORT/PROTO" of every ports: entry of seqs that
// publishes one port.
func singlePorts(seqs []load.NodeRef) map[string]bool {
	out := map[string]bool{}
	for _, s := range seqs {
		for _, item := range s.Node.Content {
			if item.Kind == yaml.ScalarNode && strings.Contains(item.Value, "$") {
				continue
			}
			pcs, err := analysis.ParsePortItem(withoutVars(item))
			if err != nil || len(pcs) != 1 {
				continue
			}
			proto := pcs[0].Protocol
			if proto == "" {
				proto = "tcp"
			}
			out[writtenKey(int(pcs[0].Target), proto)] = true
		}
	}
	return out
}

func writtenKey(port int, proto string) string {
	return strconv.Itoa(port) + "/" + proto
}

// splitWritten splits a wanted range into single ports when the files
// write each of its ports as an entry of its own.
func splitWritten(want []portSpec, singles map[string]bool) []portSpec {
	var out []portSpec
	for _, w := range want {
		if w.portEnd <= w.port {
			out = append(out, w)
			continue
		}
		all := true
		for p := w.port; p <= w.portEnd; p++ {
			all = all && singles[writtenKey(p, w.proto)]
		}
		if !all {
			out = append(out, w)
			continue
		}
		for p := w.port; p <= w.portEnd; p++ {
			out = append(out, portSpec{ip: w.ip, port: p, proto: w.proto})
		}
	}
	return out
}
