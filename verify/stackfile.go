package verify

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	yaml "go.yaml.in/yaml/v4"
	"golang.org/x/mod/semver"
)

// docker stack deploy reads compose file format 3 (docker/cli's
// cli/compose/schema, additionalProperties false nearly everywhere), not the
// Compose Specification that compose-go writes: published ports must be
// integers, depends_on a list, env_file strings, and keys such as
// bind.create_host_path or a top-level name are refused. stackYAML turns
// compose-go's output into that format, keeping only the keys the format
// knows. Keys it drops are either resolved already (env_file into
// environment) or refused by docker stack deploy in the original too.
var (
	stackTop     = keySet("version", "services", "networks", "volumes", "secrets", "configs")
	stackService = keySet("cap_add", "cap_drop", "cgroup_parent", "cgroupns_mode", "command", "configs",
		"container_name", "credential_spec", "depends_on", "deploy", "devices", "dns", "dns_search",
		"domainname", "entrypoint", "environment", "expose", "external_links", "extra_hosts", "healthcheck",
		"hostname", "image", "init", "ipc", "isolation", "labels", "links", "logging", "mac_address",
		"network_mode", "networks", "oom_score_adj", "pid", "ports", "privileged", "read_only", "restart",
		"secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period", "stop_signal", "sysctls",
		"tmpfs", "tty", "ulimits", "user", "userns_mode", "volumes", "working_dir")
	stackDeploy      = keySet("endpoint_mode", "labels", "mode", "placement", "replicas", "resources", "restart_policy", "rollback_config", "update_config")
	stackHealthcheck = keySet("disable", "interval", "retries", "start_period", "test", "timeout")
	stackPort        = keySet("mode", "target", "published", "protocol")
	stackMount       = keySet("type", "source", "target", "read_only", "consistency", "bind", "volume", "tmpfs")
	stackServiceNet  = keySet("aliases", "ipv4_address", "ipv6_address")
	stackNetwork     = keySet("attachable", "driver", "driver_opts", "external", "internal", "ipam", "labels", "name")
	stackVolume      = keySet("driver", "driver_opts", "external", "labels", "name")
	stackSecret      = keySet("driver", "driver_opts", "external", "file", "labels", "name", "template_driver")
	stackConfig      = keySet("external", "file", "labels", "name", "template_driver")
	stackMountSub    = map[string]map[string]bool{"bind": keySet("propagation"), "volume": keySet("nocopy"), "tmpfs": keySet("size")}
)

func keySet(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// stackVersion is the file format version written: the highest 3.x
// version of the input files, at least 3.9 (Docker 19.03 and later).
func stackVersion(files []string) string {
	best := "v3.9"
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var doc struct {
			Version string `yaml:"version"`
		}
		if yaml.Unmarshal(b, &doc) != nil {
			continue
		}
		v := "v" + doc.Version
		if semver.IsValid(v) && semver.Major(v) == "v3" && semver.Compare(v, best) > 0 {
			best = semver.MajorMinor(v)
		}
	}
	return strings.TrimPrefix(best, "v")
}

// writeStack writes the throwaway project as a stack file for docker
// stack deploy.
func writeStack(p *types.Project, version, dir string) (string, error) {
	b, err := stackYAML(p, version)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "stack.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", fmt.Errorf("write test stack: %w", err)
	}
	return path, nil
}

// stackYAML encodes the project in compose file format 3.
func stackYAML(p *types.Project, version string) ([]byte, error) {
	b, err := p.MarshalYAML()
	if err != nil {
		return nil, fmt.Errorf("encode test stack: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("re-read test stack: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("encode test stack: not a mapping")
	}
	top := doc.Content[0]
	filterKeys(top, stackTop, false)
	if err := toStackFormat(top); err != nil {
		return nil, err
	}
	escapeDollars(&doc, false)
	top.Content = append([]*yaml.Node{
		{Kind: yaml.ScalarNode, Value: "version"},
		{Kind: yaml.ScalarNode, Value: version, Style: yaml.DoubleQuotedStyle},
	}, top.Content...)
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("encode test stack: %w", err)
	}
	return out, nil
}

func toStackFormat(top *yaml.Node) error {
	for _, svc := range mapValues(mapGet(top, "services")) {
		if svc.Kind != yaml.MappingNode {
			continue
		}
		filterKeys(svc, stackService, true)
		if d := mapGet(svc, "deploy"); d != nil {
			filterKeys(d, stackDeploy, true)
		}
		if h := mapGet(svc, "healthcheck"); h != nil {
			filterKeys(h, stackHealthcheck, true)
		}
		if dep := mapGet(svc, "depends_on"); dep != nil && dep.Kind == yaml.MappingNode {
			// swarm ignores depends_on, but format 3 wants a list
			var names []string
			for i := 0; i+1 < len(dep.Content); i += 2 {
				names = append(names, dep.Content[i].Value)
			}
			sort.Strings(names)
			seq := &yaml.Node{Kind: yaml.SequenceNode}
			for _, n := range names {
				seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: n})
			}
			*dep = *seq
		}
		if nets := mapGet(svc, "networks"); nets != nil && nets.Kind == yaml.MappingNode {
			for _, n := range mapValues(nets) {
				if n.Kind != yaml.MappingNode {
					continue
				}
				filterKeys(n, stackServiceNet, false)
				if len(n.Content) == 0 {
					*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
				}
			}
		}
		if ports := mapGet(svc, "ports"); ports != nil {
			for _, pt := range ports.Content {
				if pt.Kind != yaml.MappingNode {
					continue
				}
				filterKeys(pt, stackPort, false)
				if pub := mapGet(pt, "published"); pub != nil {
					if _, err := strconv.Atoi(pub.Value); err != nil {
						return fmt.Errorf("published port %q: docker stack deploy wants one port number", pub.Value)
					}
					pub.Tag, pub.Style = "!!int", 0
				}
			}
		}
		if vols := mapGet(svc, "volumes"); vols != nil {
			for _, v := range vols.Content {
				if v.Kind != yaml.MappingNode {
					continue
				}
				filterKeys(v, stackMount, false)
				for key, allowed := range stackMountSub {
					sub := mapGet(v, key)
					if sub == nil {
						continue
					}
					filterKeys(sub, allowed, false)
					if len(sub.Content) == 0 {
						mapDelete(v, key)
					}
				}
			}
		}
	}
	for key, allowed := range map[string]map[string]bool{"networks": stackNetwork, "volumes": stackVolume, "secrets": stackSecret, "configs": stackConfig} {
		for _, def := range mapValues(mapGet(top, key)) {
			if def.Kind == yaml.MappingNode {
				filterKeys(def, allowed, key == "volumes")
				if ipam := mapGet(def, "ipam"); ipam != nil && key == "networks" {
					filterKeys(ipam, keySet("driver", "config"), false)
					if cfg := mapGet(ipam, "config"); cfg != nil {
						for _, c := range cfg.Content {
							filterKeys(c, keySet("subnet"), false)
						}
					}
				}
			}
		}
	}
	return nil
}

// filterKeys keeps the mapping keys in allowed (and x- extensions when
// ext is set).
func filterKeys(m *yaml.Node, allowed map[string]bool, ext bool) {
	if m == nil || m.Kind != yaml.MappingNode {
		return
	}
	var keep []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i].Value
		if allowed[k] || ext && strings.HasPrefix(k, "x-") {
			keep = append(keep, m.Content[i], m.Content[i+1])
		}
	}
	m.Content = keep
}

func mapGet(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func mapDelete(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

func mapValues(m *yaml.Node) []*yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	var out []*yaml.Node
	for i := 1; i < len(m.Content); i += 2 {
		out = append(out, m.Content[i])
	}
	return out
}
