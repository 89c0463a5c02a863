package main

import (
	"context"
	"fmt"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/httpapi"
	"github.com/spf13/cobra"
)

func newPurgeCmd(g *globalOptions) *cobra.Command {
	var statuses, before, after string
	cmd := &cobra.Command{
		Use:   "purge [ID]",
		Short: "Remove finished instances: their status, history and waiting messages",
		Long: `Purge removes the finished instance ID (Completed, Failed, Terminated or
Canceled): its status, its history and any message still waiting for it.
The id can then be used again. An instance that has not finished is not
purged: terminate it first.

Without ID, purge removes every finished instance created before
--created-before (and after --created-after, when given), optionally only
those in the --status list; it prints how many it removed.`,
		Example: `  jetflow purge order-17
  jetflow purge --created-before 2025-06-01 --status completed,terminated`,
		Args: argsRange(0, 1),
	}
	o := addClientFlags(cmd, g)
	f := cmd.Flags()
	f.StringVar(&before, "created-before", "", "purge the instances created at or before this time (yyyy-MM-ddTHH:mm:ssZ or yyyy-MM-dd)")
	f.StringVar(&after, "created-after", "", "and at or after this time")
	f.StringVar(&statuses, "status", "", "only these runtime statuses (comma-separated; finished ones)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 1 {
			if before != "" || after != "" || statuses != "" {
				return fmt.Errorf("purge ID takes no --created-before, --created-after or --status")
			}
			return o.withClient(cmd.Context(), requestTimeout, func(ctx context.Context, c *client.Client) error {
				if err := c.PurgeInstance(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "purged instance %q\n", args[0])
				return nil
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
			n, err := c.PurgeInstances(ctx, q)
			if err != nil {
				return fmt.Errorf("purged %d instances, then: %w", n, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "purged %d instances\n", n)
			return nil
		})
	}
	return cmd
}
