// Package migrate plans and performs the move of host-network Compose
// services to bridge networks. It is pure: it reads a loaded project and
// evidence, and returns a plan and the new text of the files.
package migrate

import "github.com/unhost/unhost/detect"

// PlanVersion is the version of the plan's JSON form.
const PlanVersion = 1

// Plan is every decision of a migration, each with its reason and evidence.
// It is plain data; lists are sorted. Strings shown to people are redacted.
type Plan struct {
	Version int      `json:"version"`
	Project string   `json:"project"`
	Files   []string `json:"files"`
	Target  string   `json:"target"` // "bridge" or "swarm"
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
}

// Service actions.
const (
	ActionMigrate     = "migrate"      // moved off the host network
	ActionKeepHost    = "keep-host"    // needs the host network for real
	ActionNotSelected = "not-selected" // host network, outside --profile
	ActionFollow      = "follow"       // network_mode: service:X, follows X
	ActionUnchanged   = "unchanged"    // not on the host network
	ActionRefsOnly    = "references"   // not migrated, but references rewritten
	TargetBridge      = "bridge"
	TargetSwarm       = "swarm"
	EvidenceStatic    = "static"
	EvidenceRuntime   = "runtime"
	ReachAll          = "all interfaces"
	ReachLoopback     = "loopback"
	ReachInternal     = "stack-internal"
	ReachNone         = "not reachable"
	DecisionPublish   = "publish"
	DecisionInternal  = "internal"
	DecisionUnchanged = "unchanged"
)

// ServicePlan is the decision for one service.
type ServicePlan struct {
	Name      string            `json:"name"`
	Action    string            `json:"action"`
	Reason    string            `json:"reason"`
	Evidence  []detect.Evidence `json:"evidence,omitempty"`
	Listeners []ListenerPlan    `json:"listeners,omitempty"`
	// Networks the service joins after migration.
	Networks []string `json:"networks,omitempty"`
	// NetworkReason explains Networks.
	NetworkReason string `json:"network_reason,omitempty"`
}

// ListenerPlan is the decision for one listening port.
type ListenerPlan struct {
	Protocol string `json:"protocol"`
	Port     int    `json:"port"`
	PortEnd  int    `json:"port_end,omitempty"`
	// Address is the bind address: observed, read from configuration, or
	// assumed (0.0.0.0) when only the port is known.
	Address        string            `json:"address"`
	AddressAssumed bool              `json:"address_assumed,omitempty"`
	Decision       string            `json:"decision"` // publish or internal
	Publish        string            `json:"publish,omitempty"`
	Reason         string            `json:"reason"`
	Evidence       []detect.Evidence `json:"evidence"`
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
	RefService     = "service"      // another service of the stack
	RefHostService = "host-service" // a service on the host, outside the stack
	RefSelf        = "self"         // the service's own port
	RefAdvertised  = "advertised"   // told to outside clients: manual
	RefAmbiguous   = "ambiguous"    // several services listen there
	RefUnresolved  = "unresolved"   // no port known
	RefObserved    = "observed"     // seen at runtime only
	RefOutside     = "outside-file" // in an env file, .env or mounted file
)

// Reference is an address in one service's configuration that points at
// another service, the host, or itself.
type Reference struct {
	From   string `json:"from"`
	To     string `json:"to,omitempty"`
	Port   int    `json:"port,omitempty"`
	Kind   string `json:"kind"`
	Where  string `json:"where,omitempty"`
	Field  string `json:"field,omitempty"`
	Before string `json:"before"`
	After  string `json:"after,omitempty"`
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

// FileResult is the new text of one edited file.
type FileResult struct {
	Path string `json:"path"`
	Abs  string `json:"-"`
	Old  []byte `json:"-"`
	New  []byte `json:"-"`
}

// Result is a plan with the files it rewrites.
type Result struct {
	Plan  *Plan
	Files []FileResult // only files that change, in load order
}
