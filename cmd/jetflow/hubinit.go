package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newInitCmd is `jetflow init`: the one-shot creation of a hub, with the
// replicas a cluster needs. The client verbs (list, status…) create a
// missing hub too, but with one replica, and a hub keeps the replicas it
// was created with.
func newInitCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the hub's streams and buckets if they do not exist yet, then exit",
		Long: `Init creates the hub's streams and buckets (with --replicas replicas: 3 on
a cluster) unless they exist, records its layout, and exits. Existing ones
are left as they are: init never changes a running hub's replicas.

Run it once, before the servers and workers, with the "admin" role of
deploy/nats/roles.conf (the other roles may not create streams), e.g. as a
one-shot job of a deployment (deploy/compose, deploy/k8s).`,
		Example: `  jetflow init --replicas 3 --nats nats://nats:4222 --user admin --password "$ADMIN_PW" --inbox-prefix _INBOX_admin`,
		Args:    argsRange(0, 0),
	}
	o := addProcessFlags(cmd, g)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		nc, _, _, err := o.open(cmd.Context(), "jetflow-init", cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		defer nc.Close()
		fmt.Fprintf(cmd.OutOrStdout(), "jetflow init: hub %s ready on %s\n", o.hub, redactURL(o.natsURL))
		return nil
	}
	return cmd
}
