package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/httpapi"
	"github.com/spf13/cobra"
)

func newPurgeCmd(g *globalOptions) *cobra.Command {
	var statuses, before, after string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "purge [ID]",
		Short: "Remove finished instances: their status, history and waiting messages",
		Long: `Purge removes the finished instance ID (Completed, Failed, Terminated or
Canceled): its status, its history and any message still waiting for it.
The id can then be used again. An instance that has not finished is not
purged: terminate it first.

Without ID, purge removes every finished instance created before
--created-before (and after --created-after, when given), optionally only
those in the --status list; it prints how many it removed. While it runs, a
progress bar (the instances purged of those counted first) is drawn on
stderr when stderr is a terminal, and never otherwise.

With --json it prints {"instancesDeleted":N} instead, as the HTTP API
answers a purge.`,
		Example: `  jetflow purge order-17
  jetflow purge --created-before 2025-06-01 --status completed,terminated
  jetflow purge --created-before 2025-06-01 --json`,
		Args: argsRange(0, 1),
	}
	o := addClientFlags(cmd, g)
	f := cmd.Flags()
	f.StringVar(&before, "created-before", "", "purge the instances created at or before this time (yyyy-MM-ddTHH:mm:ssZ or yyyy-MM-dd)")
	f.StringVar(&after, "created-after", "", "and at or after this time")
	f.StringVar(&statuses, "status", "", "only these runtime statuses (comma-separated; finished ones)")
	f.BoolVar(&asJSON, "json", false, `print {"instancesDeleted":N} instead of a sentence`)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 1 {
			if before != "" || after != "" || statuses != "" {
				return fmt.Errorf("purge ID takes no --created-before, --created-after or --status")
			}
			return o.withClient(cmd.Context(), requestTimeout, func(ctx context.Context, c *client.Client) error {
				if err := c.PurgeInstance(ctx, args[0]); err != nil {
					return err
				}
				if asJSON {
					return printPurged(cmd.OutOrStdout(), 1)
				}
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "purged instance %q\n", args[0])
				return err
			})
		}
		if before == "" {
			return fmt.Errorf("purge needs an instance ID, or --created-before to purge many")
		}
		var q client.Query
		var err error
		if q.CreatedTimeTo, err = httpapi.ParseTime(before); err != nil {
			return fmt.Errorf("--created-before: %w", err)
		}
		if after != "" {
			if q.CreatedTimeFrom, err = httpapi.ParseTime(after); err != nil {
				return fmt.Errorf("--created-after: %w", err)
			}
		}
		if q.RuntimeStatus, err = parseStatusList(statuses); err != nil {
			return err
		}
		for _, s := range q.RuntimeStatus {
			if !s.IsTerminal() {
				return fmt.Errorf("--status %s: only finished instances are purged (%s, %s, %s or %s)", s,
					jetflow.StatusCompleted, jetflow.StatusFailed, jetflow.StatusTerminated, jetflow.StatusCanceled)
			}
		}
		return o.withClient(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
			var opts []client.PurgeOption
			var bar *progress
			if stderr := cmd.ErrOrStderr(); isTerminal(stderr) {
				// Counting the instances first costs a scan of the
				// client's index: only for a bar that is seen.
				opts = append(opts, client.WithPurgeProgress(func(p client.PurgeProgress) {
					if bar == nil && p.Purged == 0 {
						bar = newProgress(stderr, true, p.Total, "purging")
					}
					bar.set(p.Purged)
				}))
			}
			n, err := c.PurgeInstances(ctx, q, opts...)
			bar.done()
			if err != nil {
				return fmt.Errorf("purged %d instances, then: %w", n, err)
			}
			if asJSON {
				return printPurged(cmd.OutOrStdout(), n)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "purged %d instances\n", n)
			return err
		})
	}
	return cmd
}

// printPurged writes {"instancesDeleted":n}, the HTTP API's answer to a
// purge, as one line.
func printPurged(w io.Writer, n int) error {
	b, err := json.Marshal(struct {
		InstancesDeleted int `json:"instancesDeleted"`
	}{n})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
