package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/dispatcher"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

// defaultNATSURL is where the client verbs look for NATS unless --nats or
// $JETFLOW_NATS_URL says otherwise.
const defaultNATSURL = "nats://127.0.0.1:4222"

// natsURLEnv names the environment variable with the default --nats URL.
const natsURLEnv = "JETFLOW_NATS_URL"

// requestTimeout bounds every verb except watch.
const requestTimeout = 30 * time.Second

// clientOptions are the flags of the verbs that talk to a running hub.
type clientOptions struct {
	*globalOptions
	natsURL string
}

func addClientFlags(cmd *cobra.Command, g *globalOptions) *clientOptions {
	o := &clientOptions{globalOptions: g}
	def := defaultNATSURL
	if v := os.Getenv(natsURLEnv); v != "" {
		def = v
	}
	cmd.Flags().StringVar(&o.natsURL, "nats", def, "NATS server URL (default from $"+natsURLEnv+" when set)")
	return o
}

// connect opens the hub on NATS and returns a client and a function that
// closes the connection.
func (o *clientOptions) connect(ctx context.Context) (*client.Client, func(), error) {
	nc, err := nats.Connect(o.natsURL, nats.Name("jetflow-cli"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to NATS at %s: %w", o.natsURL, err)
	}
	store, err := jetstream.Open(ctx, nc, jetstream.Config{Hub: o.hub, Timeout: 10 * time.Second})
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("opening hub %q on %s: %w", o.hub, o.natsURL, err)
	}
	disp := dispatcher.New(store, dispatcher.Config{Logger: slog.New(slog.DiscardHandler)})
	return client.New(disp), nc.Close, nil
}

// withClient runs fn with a connected client and a context bounded by
// timeout (none when zero).
func (o *clientOptions) withClient(ctx context.Context, timeout time.Duration, fn func(context.Context, *client.Client) error) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	c, closeConn, err := o.connect(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	return fn(ctx, c)
}

// checkJSON reports whether s is valid JSON, naming what it is.
func checkJSON(what, s string) error {
	if err := json.Unmarshal([]byte(s), new(json.RawMessage)); err != nil {
		return fmt.Errorf("%s is not valid JSON: %v", what, err)
	}
	return nil
}

func newStartCmd(g *globalOptions) *cobra.Command {
	var input, id string
	cmd := &cobra.Command{
		Use:   "start NAME",
		Short: "Start an orchestration instance and print its id",
		Example: `  jetflow start E1_HelloSequence
  jetflow start CityRecommender --input 1 --id my-trip`,
		Args: argsRange(1, 1),
	}
	o := addClientFlags(cmd, g)
	cmd.Flags().StringVar(&input, "input", "", "input as JSON (default: none, i.e. null)")
	cmd.Flags().StringVar(&id, "id", "", "instance id (default: a random one)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		opts := []client.StartOption{}
		if input != "" {
			if err := checkJSON("--input", input); err != nil {
				return err
			}
			opts = append(opts, client.WithRawInput(json.RawMessage(input)))
		}
		if id != "" {
			opts = append(opts, client.WithInstanceID(id))
		}
		return o.withClient(cmd.Context(), requestTimeout, func(ctx context.Context, c *client.Client) error {
			started, err := c.StartOrchestration(ctx, args[0], opts...)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), started)
			return nil
		})
	}
	return cmd
}

func newStatusCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Print an instance's status JSON",
		Args:  argsRange(1, 1),
	}
	o := addClientFlags(cmd, g)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return o.withClient(cmd.Context(), requestTimeout, func(ctx context.Context, c *client.Client) error {
			st, err := c.GetStatus(ctx, args[0])
			if err != nil {
				return err
			}
			b, err := json.MarshalIndent(st, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return nil
		})
	}
	return cmd
}

func newWatchCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch ID",
		Short: "Print an instance's status JSON on each change until it finishes",
		Long: `Watch prints the instance's current status as one line of JSON, then one
line per change, and exits when the instance has finished (Completed, Failed,
Canceled or Terminated). Changes are pushed by a watch on the status bucket.`,
		Args: argsRange(1, 1),
	}
	o := addClientFlags(cmd, g)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		id := args[0]
		return o.withClient(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
			getCtx, cancel := context.WithTimeout(ctx, requestTimeout)
			_, err := c.GetStatus(getCtx, id)
			cancel()
			if err != nil {
				return err
			}
			updates, err := c.WatchStatus(ctx, id, 0)
			if err != nil {
				return err
			}
			finished := false
			for u := range updates {
				b, err := json.Marshal(u.Status)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
				finished = u.Status.Finished()
			}
			switch {
			case finished:
				return nil
			case ctx.Err() != nil:
				return exitCode(130) // interrupted
			}
			return errors.New("watching " + id + ": the watch ended before the instance finished")
		})
	}
	return cmd
}

func newRaiseCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "raise ID EVENT [JSON]",
		Short: "Send an external event to an instance",
		Long: `Raise sends the external event EVENT to the instance ID, with JSON as its data
(default: null).`,
		Example: `  jetflow raise my-trip CitySelected '"London"'`,
		Args:    argsRange(2, 3),
	}
	o := addClientFlags(cmd, g)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		id, event := args[0], args[1]
		data := json.RawMessage("null")
		if len(args) == 3 {
			if err := checkJSON("event data", args[2]); err != nil {
				return err
			}
			data = json.RawMessage(args[2])
		}
		return o.withClient(cmd.Context(), requestTimeout, func(ctx context.Context, c *client.Client) error {
			if err := c.RaiseEvent(ctx, id, event, data); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "raised event %q on instance %q\n", event, id)
			return nil
		})
	}
	return cmd
}

func newTerminateCmd(g *globalOptions) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "terminate ID",
		Short: "Terminate an instance",
		Long: `Terminate stops the instance ID. The reason, if given, becomes its output (a
JSON string); without one the output is null.`,
		Args: argsRange(1, 1),
	}
	o := addClientFlags(cmd, g)
	cmd.Flags().StringVar(&reason, "reason", "", "why the instance is terminated (becomes its output)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		id := args[0]
		var r any
		if cmd.Flags().Changed("reason") {
			r = reason
		}
		return o.withClient(cmd.Context(), requestTimeout, func(ctx context.Context, c *client.Client) error {
			if err := c.Terminate(ctx, id, r); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "terminated instance %q\n", id)
			return nil
		})
	}
	return cmd
}
