package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/httpapi"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/workerhook"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/jetstream/embedded"
	"github.com/jetflow/jetflow/samples"
	"github.com/jetflow/jetflow/worker"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

// devOptions are the flags of `jetflow dev`.
type devOptions struct {
	*globalOptions
	data       string
	natsListen string
	httpAddr   string
	sync       time.Duration
	logLevel   string
	natsAuth   bool
	monitor    string
	retention  time.Duration
	partitions int
	api        *apiOptions
	grpc       sidecarOptions
	noGRPC     bool
	// grpcGiven: --grpc was given, so a busy port is an error; the
	// default one, taken by another process, only turns the sidecar off.
	grpcGiven bool
}

// shutdownTimeout bounds each step of dev's shutdown.
const shutdownTimeout = 10 * time.Second

func newDevCmd(g *globalOptions) *cobra.Command {
	o := &devOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run an embedded NATS server, workers with the samples, and the HTTP API",
		Long: `Dev runs everything in one process for development: an embedded nats-server
with JetStream (file store under --data, its client port on --nats-listen so
other processes and the nats CLI can join), the dispatcher, a worker with the
samples registered (E1_HelloSequence, CityRecommender, ReserveTicket,
SetStatusTest), the Durable Functions-compatible HTTP API on --http, and the
Durable Task gRPC sidecar on --grpc (the SDKs' default address), so that
orchestrators and activities written with the Durable Task SDKs for
JavaScript, Python, Java and .NET run on it too (--no-grpc turns it off).

Every write is fsynced before it is acknowledged unless --sync gives an
interval. Ctrl-C shuts down cleanly; starting again on the same --data resumes
the unfinished instances. Prometheus metrics are at /metrics on --http;
--nats-monitor serves the embedded NATS's own monitoring (/varz, /jsz) for
the NATS Prometheus exporter and its dashboards.

Security: with --api-key or --keys (or when --nats-listen is not a loopback
address, or with --nats-auth), the embedded NATS requires credentials too:
a user "jetflow" that may do everything and a read-only "watcher" of the
status bucket, with random passwords kept in --data/nats-users.json and
printed in the banner. The HTTP API refuses requests that a web page could
send (foreign Host or Origin headers, bodies that are not JSON); see
docs/SECURITY.md.`,
		Args: argsRange(0, 0),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if o.noGRPC {
				return nil
			}
			return o.grpc.validate()
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.grpcGiven = cmd.Flags().Changed("grpc")
			return runDev(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", "./.jetflow", "directory of the JetStream store")
	f.StringVar(&o.natsListen, "nats-listen", "127.0.0.1:4222", "host:port of the NATS client port (port 0 picks a free one)")
	f.StringVar(&o.httpAddr, "http", "127.0.0.1:8080", "host:port of the HTTP API (port 0 picks a free one)")
	f.DurationVar(&o.sync, "sync", 0, "fsync interval of the store; 0 fsyncs every write (safe against power loss, slower)")
	f.StringVar(&o.logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	f.StringVar(&o.monitor, "nats-monitor", "", "host:port of the embedded NATS's HTTP monitoring (/varz, /jsz: for the NATS Prometheus exporter; port 0 picks a free one); off by default")
	f.BoolVar(&o.natsAuth, "nats-auth", false, "require credentials on the embedded NATS (on by default with --api-key or --keys, or beyond loopback)")
	addRetentionFlag(cmd, &o.retention)
	addPartitionsFlag(cmd, &o.partitions)
	o.api = addAPIFlags(cmd, "")
	o.grpc.addFlags(cmd)
	f.BoolVar(&o.noGRPC, "no-grpc", false, "serve no gRPC sidecar")
	return cmd
}

// runDev runs `jetflow dev` until ctx ends.
func runDev(ctx context.Context, o *devOptions, stdout, stderr io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	if o.sync < 0 {
		return fmt.Errorf("--sync %s: want 0 or a positive interval", o.sync)
	}
	if o.monitor != "" {
		if _, port, err := net.SplitHostPort(o.monitor); err != nil || !validPort(port) {
			return fmt.Errorf("--nats-monitor %q: want host:port (port 0 picks a free one)", o.monitor)
		}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	api, err := o.api.prepare("", logger)
	if err != nil {
		return err
	}
	natsAuth := o.natsAuth || api.authenticated() || !loopback(o.natsListen)

	dir, err := filepath.Abs(o.data)
	if err != nil {
		return fmt.Errorf("--data %q: %w", o.data, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--data: %w", err)
	}

	// Take the HTTP port first and check the NATS port, so that a port
	// conflict is reported at once and before anything starts.
	httpLn, err := net.Listen("tcp", o.httpAddr)
	if err != nil {
		return listenError("--http", o.httpAddr, err)
	}
	defer httpLn.Close()
	if err := checkFree(o.natsListen); err != nil {
		return listenError("--nats-listen", o.natsListen, err)
	}
	var grpcLn net.Listener
	switch {
	case o.noGRPC:
	case api.authenticated() && o.api.apiKey == "" && !o.grpcGiven:
		// The sidecar takes only the admin key: with scoped keys alone, by
		// default it would open what the keys lock.
		fmt.Fprintf(stderr, "NOTE: no gRPC sidecar: it takes the admin key (--api-key) only, and the HTTP API has scoped keys; serve it without a key with --grpc %s\n", o.grpc.addr)
	default:
		o.grpc.key = o.api.apiKey // the SDKs send it as metadata: authorization: Bearer KEY
		if api.authenticated() && o.grpc.key == "" {
			fmt.Fprintf(stderr, "WARNING: the gRPC sidecar on %s takes no key: whoever reaches it can start, run and purge instances, whatever the HTTP API's keys\n", o.grpc.addr)
		}
		switch grpcLn, err = o.grpc.listen(stderr); {
		case err == nil:
			defer grpcLn.Close()
		case !o.grpcGiven && errors.Is(err, syscall.EADDRINUSE):
			fmt.Fprintf(stderr, "WARNING: no gRPC sidecar: %s is in use (another jetflow dev or sidecar?); pick another address with --grpc\n", o.grpc.addr)
			grpcLn = nil
		default:
			return listenError("--grpc", o.grpc.addr, err)
		}
	}

	ecfg := embedded.Config{Dir: dir, Listen: o.natsListen, SyncInterval: o.sync, Logger: logger, Monitor: o.monitor}
	if o.monitor != "" && !loopback(o.monitor) {
		fmt.Fprintf(stderr, "WARNING: NATS monitoring listens on %s, beyond loopback, without authentication: whoever reaches it sees the server's connections, streams and consumers\n", o.monitor)
	}
	var users devNATSUsers
	var usersFile string
	connOpts := []nats.Option{nats.Name("jetflow-dev"), nats.MaxReconnects(-1)}
	if natsAuth {
		if users, usersFile, err = loadDevNATSUsers(dir); err != nil {
			return fmt.Errorf("--data: %w", err)
		}
		ecfg.Users = users.serverUsers(storage.NewNames(o.hub, 0, 1))
		connOpts = append(connOpts, nats.UserInfo(users.Admin.User, users.Admin.Password))
	}
	if !loopback(o.natsListen) {
		fmt.Fprintf(stderr, "WARNING: NATS listens on %s, beyond loopback: whoever reaches it and has the credentials below can start, read and purge instances; keep %s secret\n", o.natsListen, usersFile)
	}
	if !loopback(o.httpAddr) {
		if api.authenticated() {
			fmt.Fprintf(stderr, "WARNING: the HTTP API listens on %s, beyond loopback: keys cross the network in the clear unless --tls-cert is set\n", o.httpAddr)
		} else {
			fmt.Fprintf(stderr, "WARNING: the HTTP API listens on %s, beyond loopback, WITHOUT A KEY: anyone who reaches it can start, read and purge instances; set --api-key or --keys\n", o.httpAddr)
		}
	}

	srv, err := embedded.Run(ecfg)
	if err != nil {
		return err
	}
	defer func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}()
	nc, err := nats.Connect(srv.ClientURL(), append(connOpts, nats.InProcessServer(srv))...)
	if err != nil {
		return fmt.Errorf("connecting to the embedded NATS server: %w", err)
	}
	defer nc.Close()
	store, err := jetstream.Open(ctx, nc, jetstream.Config{Hub: o.hub, Partitions: o.partitions, Retention: o.retention})
	if err != nil {
		return fmt.Errorf("opening hub %q: %w", o.hub, err)
	}
	reg := jetflow.NewRegistry()
	if err := samples.Register(reg, samples.Options{}); err != nil {
		return fmt.Errorf("registering the samples: %w", err)
	}
	c := client.New(store)
	defer c.Close() // before the connection closes
	m, metricsHandler, err := processMetrics(store, c)
	if err != nil {
		return err
	}
	api.cfg.Metrics, api.cfg.MetricsHandler = m, metricsHandler
	w, err := worker.New(store, reg, worker.Config{Logger: logger, Metrics: m})
	if err != nil {
		return err
	}
	if err := w.Start(ctx); err != nil {
		return fmt.Errorf("starting the worker: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if serr := w.Stop(sctx); serr != nil {
			logger.Warn("stopping the worker", slog.Any("error", serr))
		}
	}()

	var grpcServed <-chan error
	var grpcAddr string
	if grpcLn != nil {
		// An SDK worker announcing a name of the Go samples (the JavaScript
		// samples have the same names) takes it over: one implementation
		// runs each orchestrator, or their turns would mix.
		takeOver := func(orchs, acts []string) {
			yo, ya, err := workerhook.Yield(w, orchs, acts)
			if err == nil && len(yo)+len(ya) > 0 {
				fmt.Fprintf(stdout, "jetflow dev: an SDK worker now serves %s; the Go samples of those names stop until dev restarts\n",
					strings.Join(append(yo, ya...), ", "))
			}
		}
		stopGRPC, served, err := o.grpc.start(ctx, store, grpcLn, logger, worker.Config{Logger: logger, Metrics: m}, takeOver)
		if err != nil {
			return err
		}
		defer stopGRPC() // before the worker stops (deferred earlier, run later)
		grpcServed, grpcAddr = served, dialable(grpcLn.Addr().String())
	}

	stopAPI, served := api.start(httpLn, c, nc, logger)
	b := banner{
		grpcAddr:      grpcAddr,
		natsURL:       "nats://" + dialable(strings.TrimPrefix(srv.ClientURL(), "nats://")),
		httpURL:       api.scheme + "://" + dialable(httpLn.Addr().String()),
		apiKey:        o.api.apiKey,
		scopedKeys:    api.cfg.Keys != nil,
		tls:           api.certs != nil,
		ui:            api.cfg.UI != nil,
		dir:           dir,
		hub:           o.hub,
		statusBucket:  storage.Of(store).Names().StatusBucket(),
		monitorURL:    monitorURL(srv),
		sync:          o.sync,
		orchestrators: reg.OrchestratorNames(),
		activities:    reg.ActivityNames(),
	}
	if natsAuth {
		b.watcherURL = withUser(b.natsURL, users.Watcher)
		b.natsURL = withUser(b.natsURL, users.Admin)
		b.usersFile = usersFile
	}
	printBanner(stdout, b)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-served:
		runErr = fmt.Errorf("HTTP server: %w", err)
	case err := <-grpcServed:
		runErr = fmt.Errorf("gRPC sidecar: %w", err)
	}
	fmt.Fprintln(stdout, "jetflow dev: shutting down")
	stopAPI()
	return runErr // the deferred calls stop the worker, the connection and the server
}

// checkFree reports whether a TCP listener can be opened on addr (port 0
// always can).
func checkFree(addr string) error {
	if _, port, err := net.SplitHostPort(addr); err == nil && (port == "0" || port == "-1") {
		return nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// listenError explains a failure to listen on addr given by flag.
func listenError(flag, addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s %s: address already in use (is another jetflow dev running? pick another with %s)", flag, addr, flag)
	}
	return fmt.Errorf("%s %s: %w", flag, addr, err)
}

// dialable turns a listening address into one a client can connect to
// (0.0.0.0 and :: become 127.0.0.1).
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// banner is what dev prints once it runs.
type banner struct {
	natsURL, httpURL, dir, hub, statusBucket string
	// monitorURL is the embedded NATS's monitoring, when served.
	monitorURL                string
	sync                      time.Duration
	orchestrators, activities []string
	// apiKey is the admin key (curl examples send it); scopedKeys says
	// the API takes scoped keys (the examples send $KEY, one of them);
	// tls says the API is served over TLS.
	apiKey          string
	scopedKeys, tls bool
	// ui says the status page is served (at /ui/).
	ui bool
	// watcherURL is the NATS URL of the read-only watcher, and usersFile
	// the file of the credentials, when NATS requires them.
	watcherURL, usersFile string
	// grpcAddr is the gRPC sidecar's address, when served.
	grpcAddr string
}

func printBanner(w io.Writer, b banner) {
	fsync := "every write"
	if b.sync > 0 {
		fsync = "every " + b.sync.String()
	}
	api := b.httpURL + httpapi.BasePath
	// Flags the client verbs need to reach this hub.
	var cliFlags string
	if b.natsURL != defaultNATSURL {
		cliFlags += " --nats " + shellQuote(b.natsURL)
	}
	if b.hub != jetstream.DefaultHub {
		cliFlags += " --hub " + b.hub
	}
	curl := "curl -i"
	switch {
	case b.apiKey != "":
		curl += " -H " + shellQuote("x-functions-key: "+b.apiKey)
	case b.scopedKeys:
		curl += ` -H "x-functions-key: $KEY"` // a key of the file (start and read scopes), not printed
	}
	natsLine := b.natsURL + "  (JetStream; fsync " + fsync + ")"
	if b.usersFile != "" {
		natsLine += "\n                credentials required: user jetflow may do everything, user watcher may only\n" +
			"                read and watch the status bucket (passwords in " + b.usersFile + ")"
	}
	if b.monitorURL != "" {
		natsLine += "\n  NATS monitor  " + b.monitorURL + "  (/varz, /jsz: point the NATS Prometheus exporter here)"
	}
	httpLine := b.httpURL
	if b.ui {
		httpLine += "\n  status page   " + b.httpURL + "/ui/  (live, in a browser)"
	}
	if b.grpcAddr != "" {
		httpLine += "\n  gRPC sidecar  " + b.grpcAddr + "  (Durable Task SDKs: JavaScript, Python, Java, .NET)"
	}
	watch := "nats --server " + shellQuote(b.natsURL) + " kv watch " + b.statusBucket
	var watcher string
	if b.watcherURL != "" {
		watcher = fmt.Sprintf(`
Read-only, as the watcher (it can watch statuses, not raise events, read history or purge):

  nats --server %s --inbox-prefix %s kv watch %s
  go run ./cmd/jetflow watch --nats %s --inbox-prefix %s%s hello-2
`, shellQuote(b.watcherURL), watcherInboxPrefix, b.statusBucket,
			shellQuote(b.watcherURL), watcherInboxPrefix, strings.TrimPrefix(cliFlags, " --nats "+shellQuote(b.natsURL)))
	}
	var tlsNote string
	if b.tls {
		tlsNote = "\n(The API is served over TLS: give curl the CA of the certificate with --cacert.)\n"
	}
	fmt.Fprintf(w, `jetflow dev is running

  NATS          %s
  HTTP API      %s
  data          %s  (starting again on it resumes unfinished instances)
  hub           %s  (status bucket %s)
  orchestrators %s
  activities    %s

In another terminal, follow every status change of the hub:

  %s

Start E1_HelloSequence (its custom status moves Tokyo, Seattle, London), then read its status:

  %s -X POST %s/orchestrators/E1_HelloSequence/hello-1
  %s %s/instances/hello-1
%s
The same with the CLI (watch prints each change until the instance finishes):

  go run ./cmd/jetflow start%s E1_HelloSequence --id hello-2
  go run ./cmd/jetflow watch%s hello-2
%s
Press Ctrl-C to stop.
`,
		natsLine, httpLine, b.dir, b.hub, b.statusBucket,
		strings.Join(b.orchestrators, ", "), strings.Join(b.activities, ", "),
		watch, curl, api, curl, api, tlsNote, cliFlags, cliFlags, watcher)
}

// monitorURL is the URL of srv's HTTP monitoring, or "" when it serves
// none.
func monitorURL(srv *server.Server) string {
	if a := srv.MonitorAddr(); a != nil {
		return "http://" + dialable(a.String())
	}
	return ""
}

// validPort reports whether p is a TCP port number (0 included).
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 0 && n <= 65535
}
