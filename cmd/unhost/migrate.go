package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newMigrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Rewrite host-network Compose files to bridge networks",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("migrate: not built yet")
		},
	}
}
