package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/jetflow/jetflow/internal/storage"
	"github.com/spf13/cobra"
)

// The verbs of deployments: init creates a hub, healthcheck probes a
// server from inside its container (the image has no shell or curl).

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
--retention records how long the hub keeps finished instances (run init again
to change it; processes read it when they start).

Run it once, before the servers and workers, with the "admin" role of
deploy/nats/roles.conf (the other roles may not create streams), e.g. as a
one-shot job of a deployment (deploy/compose, deploy/k8s).`,
		Example: `  JETFLOW_NATS_PASSWORD=$ADMIN_PW jetflow init --replicas 3 --nats nats://nats:4222 --user admin --inbox-prefix _INBOX_admin`,
		Args:    argsRange(0, 0),
	}
	o := addProcessFlags(cmd, g)
	addRetentionFlag(cmd, &o.retention)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		nc, store, _, err := o.open(cmd.Context(), "jetflow-init", cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		defer nc.Close()
		d, err := storage.Of(store).Retention(cmd.Context())
		if err != nil {
			return err
		}
		kept := "finished instances are kept until purged"
		if d > 0 {
			kept = "finished instances are removed " + d.String() + " after they finish"
		}
		layout := ""
		if p := storage.Of(store).Config().Partitions; p > 1 {
			layout = fmt.Sprintf(" (%d partitions)", p)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "jetflow init: hub %s ready on %s%s; %s\n", o.hub, redactURL(o.natsURL), layout, kept)
		return nil
	}
	return cmd
}

// addRetentionFlag adds --retention, the hub setting of how long finished
// instances stay (jetstream.Config.Retention).
func addRetentionFlag(cmd *cobra.Command, d *time.Duration) {
	cmd.Flags().DurationVar(d, "retention", 0, "remove finished instances this long after they finish (e.g. 720h), a setting of the hub that every process follows; "+
		"-1s turns it off; 0 (default) keeps the hub's, which for a new hub is off")
}

// defaultHealthURL is what `jetflow healthcheck` probes by default: the
// health route of a server on the default --http port.
const defaultHealthURL = "http://127.0.0.1:8080/healthz"

// newHealthcheckCmd is `jetflow healthcheck`: a container health check
// for an image without a shell.
func newHealthcheckCmd(*globalOptions) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck [URL]",
		Short: "Exit 0 if a jetflow server's /healthz answers 200",
		Long: `Healthcheck sends GET URL (default ` + defaultHealthURL + `) and exits 0
when it answers 200 OK, or prints why not and exits 1: the health check of a
"jetflow server" container (the image has no shell or curl). /healthz needs
no key. An https URL is verified with the system's CA certificates.`,
		Example: `  jetflow healthcheck
  jetflow healthcheck http://127.0.0.1:8080/healthz --timeout 2s`,
		Args: argsRange(0, 1),
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		url := defaultHealthURL
		if len(args) == 1 {
			url = args[0]
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthcheck: GET %s: %s", url, resp.Status)
		}
		return nil
	}
	return cmd
}
