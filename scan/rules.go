package scan

// Rule IDs.
const (
	RuleHostNetwork       = "host-network"
	RulePortsIgnored      = "ports-ignored"
	RuleAllInterfaces     = "all-interfaces"
	RuleLoopbackReference = "loopback-reference"
	RuleNotLoadable       = "not-loadable"
	RuleSkipped           = "skipped"
)

// Rule describes one kind of finding, for SARIF and the docs.
type Rule struct {
	ID    string
	Short string // one sentence
	Full  string // what it means
	Help  string // what to do (markdown)
	Level string // SARIF level: error, warning, note
}

// Rules are every rule, sorted by ID; a finding's SARIF ruleIndex is its
// rule's index here.
var Rules = []Rule{
	{ID: RuleAllInterfaces, Level: "warning",
		Short: "A port is published on all interfaces.",
		Full:  "A published port without a host address is reachable from every network the host is on. Ports published by Docker bypass host firewalls such as UFW and firewalld, because Docker inserts its own rules before theirs.",
		Help:  "Publish the port on the address that clients need, for example `127.0.0.1:8080:80` when only the host itself connects, or put a reverse proxy in front. Keep all interfaces only for ports that must be public. `unhost migrate` does not change ports of services that are not on the host network."},
	{ID: RuleHostNetwork, Level: "warning",
		Short: "A service runs on the host network.",
		Full:  "A service on the host network (`network_mode: host`, through an anchor, `extends`, an override file, `network_mode: service:`/`container:` of such a service, or the external `host` network of a swarm stack) shares the host's whole network stack: every port it opens is reachable wherever the host is, and it reaches every service bound on the host's loopback.",
		Help:  "Move the service to a bridge network with explicit port mappings: `unhost migrate` does this for Compose files it can load, and says when a service needs the host network for real (mDNS, DHCP, SSDP discovery). Where it does, keep it and suppress the finding with a `# unhost:ignore host-network` comment on the finding's line or the line above."},
	{ID: RuleLoopbackReference, Level: "warning",
		Short: "A service reaches another service through localhost.",
		Full:  "The service connects to localhost or 127.0.0.1 on a port that another service of the stack listens on or publishes. That works only while both share the host's network; on a bridge network localhost is the container itself.",
		Help:  "Use the other service's name as host name (for example `db:5432`). `unhost migrate` rewrites these references when it moves the services to a bridge network."},
	{ID: RuleNotLoadable, Level: "note",
		Short: "Compose cannot load the file.",
		Full:  "The file looks like Compose (a fragment, a template, an override without its base) but `docker compose` would not load it as it is. It was scanned from its YAML structure, or its text when it is not YAML, so findings in it may be incomplete, and `unhost migrate` cannot rewrite it.",
		Help:  "Make the file load (`docker compose -f FILE config`), or, for fragments and templates kept on purpose, accept the finding in a baseline (`unhost scan --write-baseline FILE`)."},
	{ID: RulePortsIgnored, Level: "warning",
		Short: "`ports:` on a host-network service are ignored.",
		Full:  "Docker ignores `ports:` on host-network containers: the service is reachable on every port it binds, on every interface, whatever `ports:` says, and `docker ps` shows none of them.",
		Help:  "Move the service to a bridge network, where the entries take effect: `unhost migrate` does this and keeps their reach. If the service must stay on the host network, delete the entries so that they do not mislead."},
	{ID: RuleSkipped, Level: "note",
		Short: "A file was not read.",
		Full:  "A file that scan would read is not a regular file (a FIFO, a device, a socket), is larger than --max-file-size (default 8 MiB), or leads out of the scanned root through a symlink (to /proc, /dev or anywhere else). Reading it could hang the scan, exhaust its memory or disclose what lies outside the repository, so it was skipped; the rest of the scan went on.",
		Help:  "Keep Compose files regular files inside the repository. If a large file or a file outside the root is meant to be scanned, pass `--max-file-size` or `--allow-outside`."},
}

func ruleIndex(id string) int {
	for i, r := range Rules {
		if r.ID == id {
			return i
		}
	}
	return -1
}
