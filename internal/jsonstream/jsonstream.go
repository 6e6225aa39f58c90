// Package jsonstream reads the JSON message streams that the Docker
// Engine answers image builds and loads with.
package jsonstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Check reads a stream of Engine progress messages to its end and returns
// the first error a message reports ("error" or "errorDetail.message").
func Check(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read engine output: %w", err)
		}
		if m.Error != "" {
			return errors.New(strings.TrimSpace(m.Error))
		}
		if m.ErrorDetail.Message != "" {
			return errors.New(strings.TrimSpace(m.ErrorDetail.Message))
		}
	}
}
