package verify

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// engineSockets are the sockets through which a container controls a
// container engine: Docker, containerd, CRI-O and Podman (rootful; the
// rootless ones live under /run/user/UID, matched by name).
var engineSockets = []string{
	"/var/run/docker.sock", "/run/docker.sock",
	"/run/containerd/containerd.sock", "/var/run/containerd/containerd.sock",
	"/run/crio/crio.sock", "/var/run/crio/crio.sock",
	"/run/podman/podman.sock", "/var/run/podman/podman.sock",
}

// engineSocketNames are socket file names that give control of an engine
// wherever they are.
var engineSocketNames = map[string]bool{"docker.sock": true, "containerd.sock": true, "crio.sock": true, "podman.sock": true}

// isEngineSocketBind reports whether a bind source is, or contains, a
// container engine's socket: a read-only bind of it still gives full
// control of the engine, so of production.
func isEngineSocketBind(src string) bool {
	if src == "" {
		return false
	}
	src = path.Clean(src)
	if engineSocketNames[path.Base(src)] {
		return true
	}
	if src == "/" || strings.HasPrefix(src, "/run/user") && strings.Count(src, "/") <= 3 {
		return true // the whole filesystem, or a user's runtime dir (rootless engines)
	}
	for _, s := range engineSockets {
		if s == src || strings.HasPrefix(s, src+"/") {
			return true
		}
	}
	return false
}

// StrippedLabels are the label prefixes verify removes from the test stack:
// routers and automation that act on every container with their labels, so
// that a production Traefik (docker provider) would route production
// traffic to the test containers, or a production watchtower, autoheal,
// ofelia or diun would update, restart, run jobs in or watch them. A label
// is stripped when its key equals a prefix or starts with prefix + ".".
var StrippedLabels = []string{
	"traefik",                        // Traefik routers, services, middlewares
	"caddy",                          // caddy-docker-proxy
	"com.centurylinklabs.watchtower", // watchtower updates
	"autoheal",                       // docker-autoheal restarts
	"deunhealth",                     // deunhealth restarts
	"ofelia",                         // ofelia jobs
	"chadburn",                       // chadburn (ofelia fork) jobs
	"swarm.cronjob",                  // swarm-cronjob jobs
	"diun",                           // diun image watch
	"sablier",                        // sablier scale-to-zero
	"docker-volume-backup",           // offen/docker-volume-backup stop/start
}

// stripLabels removes the StrippedLabels from l and returns the keys removed.
func stripLabels(l types.Labels) []string {
	var out []string
	for k := range l {
		lk := strings.ToLower(k)
		for _, p := range StrippedLabels {
			if lk == p || strings.HasPrefix(lk, p+".") {
				out = append(out, k)
				delete(l, k)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// refusals lists, per service, what could reach or change the host or the
// engine beyond its own containers, with the flag that allows it.
func refusals(name string, s types.ServiceConfig, o transformOptions) []string {
	var out []string
	if !o.AllowEngineSocket {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind && isEngineSocketBind(v.Source) {
				out = append(out, fmt.Sprintf("service %s binds %s, which gives control of the container engine (and of production) even read-only (--allow-engine-socket)", name, v.Source))
			}
		}
	}
	if s.Privileged && !o.AllowPrivileged {
		out = append(out, fmt.Sprintf("service %s is privileged: it can reach the host's devices and kernel (--allow-privileged)", name))
	}
	if s.Pid == "host" && !o.AllowHostPID {
		out = append(out, fmt.Sprintf("service %s uses pid: host: it sees and can signal the host's processes, production's too (--allow-host-pid)", name))
	}
	if len(s.Devices) > 0 && !o.AllowDevices {
		var devs []string
		for _, d := range s.Devices {
			devs = append(devs, d.Source)
		}
		out = append(out, fmt.Sprintf("service %s maps devices %s, which production may be using (--allow-devices)", name, strings.Join(devs, ", ")))
	}
	return out
}
