package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/unhost/unhost/verify"
)

type probeOptions struct {
	deadline time.Duration
}

// newProbeCmd is what the verify probe container runs, inside the network
// namespace of the container under test. Hidden: it is not a user command.
func newProbeCmd() *cobra.Command {
	o := &probeOptions{}
	cmd := &cobra.Command{
		Use:    "probe",
		Short:  "Check sockets from inside a network namespace (used by verify)",
		Hidden: true,
	}
	cmd.PersistentFlags().DurationVar(&o.deadline, "deadline", 3*time.Second, "retry failing checks for this long")
	one := func(use, kind, short string, nargs int) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.RangeArgs(1, nargs),
			RunE: func(c *cobra.Command, args []string) error {
				t := verify.ProbeTask{Kind: kind, Addr: args[0]}
				if len(args) > 1 {
					n, err := strconv.Atoi(args[1])
					if err != nil {
						return usageErr(fmt.Errorf("bad status %q", args[1]))
					}
					t.Want = n
				}
				return runProbe(c.Context(), o, c, []verify.ProbeTask{t}, false)
			},
		}
	}
	cmd.AddCommand(
		one("tcp HOST:PORT", "tcp", "connect over TCP", 1),
		one("udp HOST:PORT", "udp", "send a datagram and wait for an answer", 1),
		one("listening PORT/PROTO", "listening", "is the port listening (tcp) or bound (udp) in /proc/net, not only on loopback", 1),
		one("http URL [STATUS]", "http", "GET the URL, optionally expecting STATUS", 2),
		&cobra.Command{
			Use:   "serve",
			Short: "answer JSON probe batches read line by line from stdin",
			Args:  cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				return verify.ServeProbes(c.Context(), c.InOrStdin(), c.OutOrStdout())
			},
		},
		&cobra.Command{
			Use:   "echo ADDR",
			Short: "serve the bench's echo protocol on ADDR until stopped (a swarm service of verify --bench)",
			Args:  cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				return verify.ServeEcho(c.Context(), args[0])
			},
		},
		&cobra.Command{
			Use:   "lease",
			Short: "hold a verify run's lease: read stdin until it ends",
			Args:  cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				return verify.HoldLease(c.InOrStdin())
			},
		},
		&cobra.Command{
			Use:   "batch JSON",
			Short: "run a JSON list of probe tasks concurrently, print JSON results",
			Args:  cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				var tasks []verify.ProbeTask
				if err := json.Unmarshal([]byte(args[0]), &tasks); err != nil {
					return usageErr(fmt.Errorf("bad task list: %w", err))
				}
				return runProbe(c.Context(), o, c, tasks, true)
			},
		},
	)
	return cmd
}

func runProbe(ctx context.Context, o *probeOptions, c *cobra.Command, tasks []verify.ProbeTask, asJSON bool) error {
	ctx, cancel := context.WithTimeout(ctx, o.deadline)
	defer cancel()
	if asJSON {
		return verify.RunProbeBatch(ctx, tasks, c.OutOrStdout())
	}
	r := verify.Probe(ctx, tasks[0])
	if !r.OK {
		return fmt.Errorf("probe %s %s: %s", r.Task.Kind, r.Task.Addr, r.Detail)
	}
	fmt.Fprintf(c.OutOrStdout(), "%s %s: %s\n", r.Task.Kind, r.Task.Addr, r.Detail)
	return nil
}
