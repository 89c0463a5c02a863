package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/httpapi"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

// defaultNATSURL is where the client verbs look for NATS unless --nats or
// $JETFLOW_NATS_URL says otherwise.
const defaultNATSURL = "nats://127.0.0.1:4222"

// natsURLEnv names the environment variable with the default --nats URL.
const natsURLEnv = "JETFLOW_NATS_URL"

// natsPasswordEnv and natsTokenEnv name the environment variables read
// when --password or --token is not given: a secret in the environment
// stays out of the process list, where any local user reads arguments.
const (
	natsPasswordEnv = "JETFLOW_NATS_PASSWORD"
	natsTokenEnv    = "JETFLOW_NATS_TOKEN"
)

// requestTimeout bounds every verb except watch.
const requestTimeout = 30 * time.Second

// clientOptions are the flags of the verbs that talk to a running hub.
type clientOptions struct {
	*globalOptions
	natsURL                string
	creds, nkey            string
	user, password, token  string
	tlsCA, tlsCert, tlsKey string
	inboxPrefix            string
}

func addClientFlags(cmd *cobra.Command, g *globalOptions) *clientOptions {
	o := &clientOptions{globalOptions: g}
	def := defaultNATSURL
	if v := os.Getenv(natsURLEnv); v != "" {
		def = v
	}
	f := cmd.Flags()
	f.StringVar(&o.natsURL, "nats", def, "NATS server URL, or several separated by commas (default from $"+natsURLEnv+" when set)")
	f.StringVar(&o.creds, "creds", "", "NATS credentials file")
	f.StringVar(&o.nkey, "nkey", "", "NATS NKey seed file")
	f.StringVar(&o.user, "user", "", "NATS user")
	f.StringVar(&o.password, "password", "", "NATS password (default $"+natsPasswordEnv+", which keeps it out of the process list)")
	f.StringVar(&o.token, "token", "", "NATS token (default $"+natsTokenEnv+")")
	f.StringVar(&o.tlsCA, "tls-ca", "", "CA certificate file to verify the NATS server")
	f.StringVar(&o.tlsCert, "tls-cert", "", "client certificate file for NATS TLS")
	f.StringVar(&o.tlsKey, "tls-key", "", "client key file for NATS TLS")
	f.StringVar(&o.inboxPrefix, "inbox-prefix", "", "prefix of the reply subjects (default _INBOX; a NATS role may allow only its own, see docs/SECURITY.md)")
	return o
}

// dial connects to NATS with the connection flags. Extra options follow
// them (a long-running process asks to reconnect without end).
func (o *clientOptions) dial(name string, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name(name), nats.Timeout(5 * time.Second)}
	if o.creds != "" {
		opts = append(opts, nats.UserCredentials(o.creds))
	}
	if o.nkey != "" {
		opt, err := nats.NkeyOptionFromSeed(o.nkey)
		if err != nil {
			return nil, fmt.Errorf("--nkey %s: %w", o.nkey, err)
		}
		opts = append(opts, opt)
	}
	password, token := o.password, o.token
	if password == "" {
		password = os.Getenv(natsPasswordEnv)
	}
	if token == "" {
		token = os.Getenv(natsTokenEnv)
	}
	if o.user != "" || password != "" {
		opts = append(opts, nats.UserInfo(o.user, password))
	}
	if token != "" {
		opts = append(opts, nats.Token(token))
	}
	if o.tlsCA != "" {
		opts = append(opts, nats.RootCAs(o.tlsCA))
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if o.tlsCert != "" {
		opts = append(opts, nats.ClientCert(o.tlsCert, o.tlsKey))
	}
	if o.inboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(o.inboxPrefix))
	}
	nc, err := nats.Connect(o.natsURL, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", redactURL(o.natsURL), err)
	}
	return nc, nil
}

// connect opens the hub on NATS and returns a client and a function that
// closes it and the connection.
func (o *clientOptions) connect(ctx context.Context) (*client.Client, func(), error) {
	nc, err := o.dial("jetflow-cli")
	if err != nil {
		return nil, nil, err
	}
	store, err := jetstream.Open(ctx, nc, jetstream.Config{Hub: o.hub, Timeout: 10 * time.Second})
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("opening hub %q on %s: %w", o.hub, redactURL(o.natsURL), err)
	}
	c := client.New(store)
	return c, func() { c.Close(); nc.Close() }, nil
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
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid JSON: invalid UTF-8 (JSON text is UTF-8)", what)
	}
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
	var withHistory bool
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Print an instance's status JSON",
		Long: `Status prints the status of instance ID as the HTTP API returns it; with
--history, also the history of its current run (historyEvents, with inputs
and results).`,
		Args: argsRange(1, 1),
	}
	o := addClientFlags(cmd, g)
	cmd.Flags().BoolVar(&withHistory, "history", false, "add the history of the current run (historyEvents)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return o.withClient(cmd.Context(), requestTimeout, func(ctx context.Context, c *client.Client) error {
			st, err := c.GetStatus(ctx, args[0])
			if err != nil {
				return err
			}
			var v any = st
			if withHistory {
				h, err := c.GetHistory(ctx, args[0], client.WithOutputs())
				if err != nil {
					return err
				}
				v = httpapi.StatusWithHistory{Status: st, History: h}
			}
			b, err := json.MarshalIndent(v, "", "  ")
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
	var prefix string
	var fromRevision uint64
	cmd := &cobra.Command{
		Use:   "watch {ID | --prefix P}",
		Short: "Print status changes as JSON lines: one instance until it finishes, or many",
		Long: `Watch prints one line of JSON per status change: the status JSON (as in
"jetflow status") with its KV revision as a first key "revision".

With ID it prints the instance's current status, then each change, and exits
when the instance has finished (Completed, Failed, Canceled or Terminated).

With --prefix it follows every instance whose id starts with P (--prefix ''
follows all of them): the current status of each, then every change, until
Ctrl-C. A purged instance prints {"revision":N,"instanceId":"…","deleted":true}.

--from-revision N resumes after revision N (the revision of the last line
seen): every instance changed since is printed once, at its latest value, and
nothing is missed (the bucket keeps one value per instance, so values
overwritten meanwhile are skipped; a terminal status never is). Watching one
instance that had finished by revision N prints nothing and exits. A revision
the hub has not reached yet (one kept from before the hub was restored from a
backup or recreated) watches afresh: the current values, then each change.

Changes are pushed by a watch on the status bucket, never polled.`,
		Example: `  jetflow watch hello-1
  jetflow watch --prefix order-
  jetflow watch --prefix order- --from-revision 1042`,
		Args: argsRange(0, 1),
	}
	o := addClientFlags(cmd, g)
	cmd.Flags().StringVar(&prefix, "prefix", "", "watch every instance whose id starts with this, until Ctrl-C")
	cmd.Flags().Uint64Var(&fromRevision, "from-revision", 0, "resume after this revision (the \"revision\" of the last line seen)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		many := cmd.Flags().Changed("prefix")
		switch {
		case many && len(args) == 1:
			return fmt.Errorf("give an instance ID or --prefix, not both (see '%s --help')", cmd.CommandPath())
		case !many && len(args) == 0:
			return fmt.Errorf("give an instance ID or --prefix (see '%s --help')", cmd.CommandPath())
		}
		out := cmd.OutOrStdout()
		return o.withClient(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel() // ends the watch when printing fails
			if many {
				updates, err := c.WatchAll(ctx, client.WatchFilter{InstanceIDPrefix: prefix}, fromRevision)
				if err != nil {
					return err
				}
				if _, err := printUpdates(out, updates); err != nil {
					return err
				}
				if ctx.Err() != nil {
					return exitCode(130) // interrupted: the normal end
				}
				return errors.New("watching prefix " + strconv.Quote(prefix) + ": the watch ended")
			}
			id := args[0]
			getCtx, cancelGet := context.WithTimeout(ctx, requestTimeout)
			defer cancelGet()
			// A revision the hub has not reached (from before it was
			// restored or recreated) resumes as a fresh watch.
			after, err := c.ResumeRevision(getCtx, fromRevision)
			if err != nil {
				return err
			}
			cur, err := c.GetStatusWithRevision(getCtx, id)
			if err != nil {
				return err
			}
			cancelGet()
			if after > 0 && cur.Finished() && cur.Revision <= after {
				return nil // it had finished by then: nothing follows
			}
			updates, err := c.WatchStatus(ctx, id, after)
			if err != nil {
				return err
			}
			last, err := printUpdates(out, updates)
			switch {
			case err != nil:
				return err
			case last.Finished():
				return nil
			case ctx.Err() != nil:
				return exitCode(130) // interrupted
			}
			return errors.New("watching " + id + ": the watch ended before the instance finished")
		})
	}
	return cmd
}

// printUpdates writes each update as one line of JSON until the channel
// closes, and returns the last one.
func printUpdates(w io.Writer, updates <-chan client.Update) (client.Update, error) {
	var last client.Update
	for u := range updates {
		b, err := updateLine(u)
		if err == nil {
			_, err = fmt.Fprintf(w, "%s\n", b)
		}
		if err != nil {
			return last, err // the caller's context ends the watch
		}
		last = u
	}
	return last, nil
}

// updateLine is the JSON line of one update: the status JSON with a first
// key "revision", or {"revision":N,"instanceId":"…","deleted":true}.
func updateLine(u client.Update) ([]byte, error) {
	if u.Deleted {
		return json.Marshal(struct {
			Revision   uint64 `json:"revision"`
			InstanceID string `json:"instanceId"`
			Deleted    bool   `json:"deleted"`
		}{u.Revision, u.InstanceID, true})
	}
	st, err := json.Marshal(u.Status)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := json.Compact(&b, st); err != nil {
		return nil, err
	}
	line := fmt.Appendf(nil, `{"revision":%d`, u.Revision)
	if rest := b.Bytes()[1:]; len(rest) > 1 { // the status object without its '{'
		line = append(append(line, ','), rest...)
	} else {
		line = append(line, '}')
	}
	return line, nil
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

// controlVerb describes a verb that sends an instance a command with an
// optional reason: terminate, suspend, resume.
type controlVerb struct {
	use, short, long, done string
	call                   func(c *client.Client) func(context.Context, string, any) error
}

var (
	terminateVerb = controlVerb{
		use: "terminate ID", short: "Terminate an instance", done: "terminated",
		long: `Terminate stops the instance ID. The reason, if given, becomes its output (a
JSON string); without one the output is null.`,
		call: func(c *client.Client) func(context.Context, string, any) error {
			return func(ctx context.Context, id string, reason any) error { return c.Terminate(ctx, id, reason) }
		},
	}
	suspendVerb = controlVerb{
		use: "suspend ID", short: "Suspend an instance", done: "suspended",
		long: `Suspend pauses the instance ID: events, activity results and timers that reach
it are kept, and applied when it is resumed. Its status shows Suspended.`,
		call: func(c *client.Client) func(context.Context, string, any) error { return c.Suspend },
	}
	resumeVerb = controlVerb{
		use: "resume ID", short: "Resume a suspended instance", done: "resumed",
		long: `Resume lets the suspended instance ID run again, applying what arrived while it
was suspended.`,
		call: func(c *client.Client) func(context.Context, string, any) error { return c.Resume },
	}
	rewindVerb = controlVerb{
		use: "rewind ID", short: "Run a failed instance again from where it failed", done: "rewound",
		long: `Rewind runs the failed instance ID again from where it failed: its failed
activities are retried (failed sub-orchestrations start afresh) and what had
succeeded is kept. Only a Failed instance can be rewound.`,
		call: func(c *client.Client) func(context.Context, string, any) error { return c.Rewind },
	}
)

func newControlCmd(g *globalOptions, v controlVerb) *cobra.Command {
	var reason string
	cmd := &cobra.Command{Use: v.use, Short: v.short, Long: v.long, Args: argsRange(1, 1)}
	o := addClientFlags(cmd, g)
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in history; terminate makes it the output)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		id := args[0]
		var r any
		if cmd.Flags().Changed("reason") {
			r = reason
		}
		return o.withClient(cmd.Context(), requestTimeout, func(ctx context.Context, c *client.Client) error {
			if err := v.call(c)(ctx, id, r); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s instance %q\n", v.done, id)
			return nil
		})
	}
	return cmd
}

func newRestartCmd(g *globalOptions) *cobra.Command {
	var sameID bool
	cmd := &cobra.Command{
		Use:   "restart ID",
		Short: "Start a finished instance again with the same input, and print the new run's id",
		Long: `Restart starts a new run of the finished instance ID's orchestrator with the
same input, under a new random id (or the same id with --same-id), and prints
the new run's id. An instance that has not finished cannot be restarted.`,
		Args: argsRange(1, 1),
	}
	o := addClientFlags(cmd, g)
	cmd.Flags().BoolVar(&sameID, "same-id", false, "run again under the same instance id")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return o.withClient(cmd.Context(), requestTimeout, func(ctx context.Context, c *client.Client) error {
			var opts []client.RestartOption
			if sameID {
				opts = append(opts, client.KeepInstanceID())
			}
			id, err := c.Restart(ctx, args[0], opts...)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		})
	}
	return cmd
}
