// Package plan is the contract between migrate and everything that reads a
// migration: verify, scan, the pull-request body and users' own tools. It is
// a leaf: plain, JSON-serialisable types and nothing else of unhost's.
package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// Version is the version of the plan's JSON form. Read refuses any other.
const Version = 1

// Evidence is one observation that a decision rests on.
type Evidence struct {
	// Kind is where it came from: ports, expose, image, healthcheck,
	// environment, command, entrypoint, runtime, flag.
	Kind  string `json:"kind"`
	Where string `json:"where,omitempty"` // file:line:col, when from a file
	// Detail says what was seen, with credentials redacted.
	Detail string `json:"detail"`
}

// Action is what happens to one service.
type Action string

// Target is what the services move to.
type Target string

// Decision is what happens to one listener.
type Decision string

// RefKind is what an address reference points at.
type RefKind string

// Plan is every decision of a migration, each with its reason and evidence.
// It is plain data; lists are sorted. Strings shown to people are redacted.
type Plan struct {
	Version int      `json:"version"`
	Project string   `json:"project"`
	Files   []string `json:"files"`
	Target  Target   `json:"target"`
	// PublishMode and EndpointMode are the swarm settings used.
	PublishMode  string `json:"publish_mode,omitempty"`
	EndpointMode string `json:"endpoint_mode,omitempty"`
	// IgnoredBySwarm lists keys in the files that docker stack deploy
	// ignores (swarm target only).
	IgnoredBySwarm []Step `json:"ignored_by_swarm,omitempty"`
	Policy         string `json:"policy"` // auto, all, none
	// PublishAddress replaces all-interface publication when set.
	PublishAddress string `json:"publish_address,omitempty"`
	// Evidence is "static" (the files alone) or "runtime" (an inventory).
	Evidence      string        `json:"evidence"`
	ImageMetadata string        `json:"image_metadata"`
	Services      []ServicePlan `json:"services"`
	Exposure      []Exposure    `json:"exposure"`
	References    []Reference   `json:"references"`
	Networks      []NetworkPlan `json:"networks,omitempty"`
	Blockers      []Step        `json:"blockers,omitempty"`
	ManualSteps   []Step        `json:"manual_steps,omitempty"`
	Warnings      []string      `json:"warnings,omitempty"`
	Runbook       Runbook       `json:"runbook"`
	// Changed is true when the migration edits any file.
	Changed bool `json:"changed"`
	// InventoryFile is the committed inventory found next to the files
	// (.unhost/inventory.json), when there is one; InventoryStale says why
	// it was not used, when it describes other service definitions.
	InventoryFile  string `json:"inventory_file,omitempty"`
	InventoryStale string `json:"inventory_stale,omitempty"`
}

// Service actions.
const (
	ActionMigrate     Action = "migrate"      // moved off the host network
	ActionKeepHost    Action = "keep-host"    // needs the host network for real
	ActionNotSelected Action = "not-selected" // host network, outside --profile
	ActionFollow      Action = "follow"       // network_mode: service:X, follows X
	ActionUnchanged   Action = "unchanged"    // not on the host network
	ActionRefsOnly    Action = "references"   // not migrated, but references rewritten
)

// Targets.
const (
	TargetBridge Target = "bridge"
	TargetSwarm  Target = "swarm"
)

// Where the plan's evidence came from.
const (
	EvidenceStatic  = "static"
	EvidenceRuntime = "runtime"
)

// Reach of a port, before or after.
const (
	ReachAll      = "all interfaces"
	ReachLoopback = "loopback"
	ReachInternal = "stack-internal"
	ReachNone     = "not reachable"
)

// Listener decisions.
const (
	DecisionPublish   Decision = "publish"
	DecisionInternal  Decision = "internal"
	DecisionUnchanged Decision = "unchanged"
)

// ServicePlan is the decision for one service.
type ServicePlan struct {
	Name      string         `json:"name"`
	Action    Action         `json:"action"`
	Reason    string         `json:"reason"`
	Evidence  []Evidence     `json:"evidence,omitempty"`
	Listeners []ListenerPlan `json:"listeners,omitempty"`
	// Networks the service joins after migration.
	Networks []string `json:"networks,omitempty"`
	// NetworkReason explains Networks.
	NetworkReason string `json:"network_reason,omitempty"`
	// Finding names why a host-network service is kept, when migrate could
	// not move it: "listeners-unknown" (nothing tells what it serves) or
	// "needs-host-network". Reason says how to move it. A kept service is
	// a finding to note, not a blocker: it does not make `migrate --check`
	// exit 3 (that is Changed or Blockers).
	Finding string `json:"finding,omitempty"`
}

// ListenerPlan is the decision for one listening port.
type ListenerPlan struct {
	Protocol string `json:"protocol"`
	Port     int    `json:"port"`
	PortEnd  int    `json:"port_end,omitempty"`
	// Address is the bind address: observed, read from configuration, or
	// assumed (0.0.0.0) when only the port is known.
	Address        string     `json:"address"`
	AddressAssumed bool       `json:"address_assumed,omitempty"`
	Decision       Decision   `json:"decision"`
	Publish        string     `json:"publish,omitempty"`
	Reason         string     `json:"reason"`
	Evidence       []Evidence `json:"evidence"`
	// Via names the follower service (network_mode: service:X) whose
	// listener this is, when it is not the service's own.
	Via string `json:"via,omitempty"`
}

// Exposure is one row of the before/after table.
type Exposure struct {
	Service  string `json:"service"`
	Protocol string `json:"protocol"`
	Port     string `json:"port"`
	Before   string `json:"before"`
	After    string `json:"after"`
}

// Reference kinds.
const (
	RefService     RefKind = "service"      // another service of the stack
	RefHostService RefKind = "host-service" // a service on the host, outside the stack
	RefSelf        RefKind = "self"         // the service's own port
	RefAdvertised  RefKind = "advertised"   // told to outside clients: manual
	RefAmbiguous   RefKind = "ambiguous"    // several services listen there
	RefUnresolved  RefKind = "unresolved"   // no port known
	RefObserved    RefKind = "observed"     // seen at runtime only
	RefOutside     RefKind = "outside-file" // in an env file, .env or mounted file
)

// Reference is an address in one service's configuration that points at
// another service, the host, or itself.
type Reference struct {
	From   string  `json:"from"`
	To     string  `json:"to,omitempty"`
	Port   int     `json:"port,omitempty"`
	Kind   RefKind `json:"kind"`
	Where  string  `json:"where,omitempty"`
	Field  string  `json:"field,omitempty"`
	Before string  `json:"before"`
	After  string  `json:"after,omitempty"`
	// Action is rewrite, keep or manual.
	Action string `json:"action"`
	Reason string `json:"reason"`
}

// NetworkPlan is a network the migration defines or uses.
type NetworkPlan struct {
	Name     string   `json:"name"`
	Internal bool     `json:"internal"`
	Services []string `json:"services"`
	Reason   string   `json:"reason"`
}

// Step is something a person must do, or check.
type Step struct {
	Service string `json:"service,omitempty"`
	Where   string `json:"where,omitempty"`
	What    string `json:"what"`
	Hint    string `json:"hint,omitempty"`
}

// Runbook is how to cut over from the old stack to the new one.
type Runbook struct {
	Stop     []string `json:"stop"`
	Start    []string `json:"start"`
	Downtime string   `json:"downtime"`
	Rollback []string `json:"rollback"`
	Notes    []string `json:"notes,omitempty"`
}

// Decode reads a plan from r and checks its version.
func Decode(r io.Reader) (*Plan, error) {
	var head struct {
		Version *int `json:"version"`
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("not a plan: %w", err)
	}
	if head.Version == nil {
		return nil, fmt.Errorf("not a plan: no version (write one with unhost migrate --format json)")
	}
	if *head.Version != Version {
		return nil, fmt.Errorf("plan version %d: this unhost reads version %d", *head.Version, Version)
	}
	var p Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	return &p, nil
}

// Read reads a plan file written by unhost migrate --format json.
func Read(path string) (*Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}
