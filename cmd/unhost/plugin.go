package main

import (
	"encoding/json"
	"io"
)

// pluginMetadataCmd is the call with which the docker CLI asks a plugin
// in ~/.docker/cli-plugins what it is.
const pluginMetadataCmd = "docker-cli-plugin-metadata"

// pluginName is the name docker passes as first argument when it runs the
// binary as `docker unhost ...`.
const pluginName = "unhost"

// pluginMetadata is the docker CLI plugin metadata, schema 0.1.0.
type pluginMetadata struct {
	SchemaVersion    string `json:"SchemaVersion"`
	Vendor           string `json:"Vendor"`
	Version          string `json:"Version"`
	ShortDescription string `json:"ShortDescription"`
	URL              string `json:"URL,omitempty"`
}

// pluginArgs lets the same binary work as the docker CLI plugin
// docker-unhost. It answers the metadata call (done is true: exit 0
// without running a command) and strips the plugin name that docker puts
// before the user's arguments; other arguments pass through unchanged.
// "unhost" is not a subcommand, so stripping it is safe in any invocation.
func pluginArgs(args []string, stdout io.Writer) (rest []string, done bool) {
	if len(args) > 0 && args[0] == pluginMetadataCmd {
		b, _ := json.Marshal(pluginMetadata{SchemaVersion: "0.1.0", Vendor: "unhost", Version: version(),
			ShortDescription: "Move Compose services off host networking", URL: informationURI})
		stdout.Write(append(b, '\n'))
		return nil, true
	}
	if len(args) > 0 && args[0] == pluginName {
		return args[1:], false
	}
	return args, false
}
