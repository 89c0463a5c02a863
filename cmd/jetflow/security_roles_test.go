package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/testkit"
)

// rolesConf is the shipped file of NATS roles that the test runs a server on.
const rolesConf = "../../deploy/nats/roles.conf"

// roleUsers are the users of roles.conf, each with its password (the
// user name again) and inbox prefix.
var roleUsers = []string{"admin", "server", "worker", "worker_hello", "sidecar", "watcher", "watcher_one"}

// rolePermissions reads the permission sets of deploy/nats/roles.conf,
// by user (the passwords defined before it, as the environment would give
// them).
func rolePermissions(t *testing.T) (*server.Options, map[string]*server.Permissions) {
	t.Helper()
	conf, err := os.ReadFile(rolesConf)
	require.NoError(t, err)
	var vars strings.Builder
	for _, u := range roleUsers {
		fmt.Fprintf(&vars, "JETFLOW_%s_PASSWORD: %q\n", strings.ToUpper(u), u+"-pw")
	}
	opts := &server.Options{}
	require.NoError(t, opts.ProcessConfigString(vars.String()+string(conf)))
	perms := map[string]*server.Permissions{}
	for _, u := range opts.Users {
		perms[u.Username] = u.Permissions
	}
	require.Len(t, perms, len(roleUsers), "the users of roles.conf")
	return opts, perms
}

// rolesServer runs a nats-server with JetStream on 127.0.0.1 configured by
// deploy/nats/roles.conf.
func rolesServer(t *testing.T) *server.Server { return rolesServerLogging(t, nil) }

// rolesServerLogging is rolesServer logging to log (nil: nowhere).
func rolesServerLogging(t *testing.T, log server.Logger) *server.Server {
	t.Helper()
	opts, _ := rolePermissions(t)
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	require.NoError(t, err)
	if log != nil {
		s.SetLogger(log, false, false)
	}
	go s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// roleArgs are the connection flags of a role.
func roleArgs(url, user string) []string {
	return []string{"--nats", url, "--user", user, "--password", user + "-pw", "--inbox-prefix", "_INBOX_" + user}
}

// violations records the permission violations a connection is told of.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) add(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs = append(v.errs, err.Error())
}

func (v *violations) String() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return strings.Join(v.errs, "; ")
}

// has reports whether a violation naming subject was reported.
func (v *violations) has(subject string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range v.errs {
		if strings.Contains(e, "Permissions Violation") && strings.Contains(e, subject) {
			return true
		}
	}
	return false
}

// connectAs connects as a role and records its violations.
func connectAs(t *testing.T, url, user string) (*nats.Conn, natsjs.JetStream, *violations) {
	t.Helper()
	return connectWith(t, url, user, nats.UserInfo(user, user+"-pw"))
}

// connectWith connects with the inbox prefix of role and the given
// credentials, and records the connection's violations.
func connectWith(t *testing.T, url, role string, creds ...nats.Option) (*nats.Conn, natsjs.JetStream, *violations) {
	t.Helper()
	v := &violations{}
	opts := append([]nats.Option{nats.CustomInboxPrefix("_INBOX_" + role),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { v.add(err) })}, creds...)
	nc, err := nats.Connect(url, opts...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := natsjs.New(nc, natsjs.WithDefaultTimeout(2*time.Second))
	require.NoError(t, err)
	return nc, js, v
}

// requireRefused checks that op fails and that the server reported a
// permission violation on subject.
func requireRefused(t *testing.T, v *violations, subject string, op func(ctx context.Context) error) {
	t.Helper()
	// A refused request gets no answer: it ends with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	require.Error(t, op(ctx), "refused: %s", subject)
	require.Eventually(t, func() bool { return v.has(subject) }, 5*time.Second, 10*time.Millisecond,
		"a permission violation on %s; got %s", subject, v)
}

// launched is a jetflow process run in-process.
type launched struct {
	out, errOut testkit.Buffer
	code        chan int
}

func launch(ctx context.Context, args ...string) *launched {
	p := &launched{code: make(chan int, 1)}
	go func() { p.code <- run(ctx, args, &p.out, &p.errOut) }()
	return p
}

// TestNATSRoles runs the engine against a nats-server configured with
// the roles of deploy/nats/roles.conf: the admin creates the hub, the
// server (HTTP API) and workers run on their own roles, a worker limited
// to E1_HelloSequence runs it, the watcher watches; and each role's
// limits hold.
func TestNATSRoles(t *testing.T) {
	t.Parallel()
	s := rolesServer(t)
	url := s.ClientURL()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
	defer rcancel()

	// Nobody gets in without credentials; only the admin creates the hub.
	_, err := nats.Connect(url)
	require.ErrorContains(t, err, "Authorization Violation")
	requireOneLineError(t, cli(t, rctx, append([]string{"list"}, roleArgs(url, "server")...)...), "opening hub")
	r := cli(t, rctx, append([]string{"list"}, roleArgs(url, "admin")...)...)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)

	// The limited worker first, alone: it runs E1_HelloSequence end to end.
	hello := launch(ctx, append([]string{"worker", "--log-level", "warn", "--orchestrators", "E1_HelloSequence", "--activities", "E1_SayHello", "--no-purge"},
		roleArgs(url, "worker_hello")...)...)
	server := launch(ctx, append([]string{"server", "--http", "127.0.0.1:0", "--log-level", "warn"}, roleArgs(url, "server")...)...)
	var httpURL string
	require.Eventually(t, func() bool {
		out := server.out.String()
		i := strings.Index(out, "http://")
		if i < 0 {
			return false
		}
		httpURL = strings.Fields(out[i:])[0]
		return true
	}, 20*time.Second, 10*time.Millisecond, "server did not print its address: %s", &server.errOut)
	const base = "/runtime/webhooks/durabletask"
	post := func(path, body string) (int, string) {
		resp, err := http.Post(httpURL+base+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	require.Eventually(t, func() bool {
		code, _ := post("/orchestrators/E1_HelloSequence/roles-1", "")
		return code == http.StatusAccepted
	}, 20*time.Second, 20*time.Millisecond, "start over HTTP (the worker registers the name first): %s %s", &server.errOut, &hello.errOut)

	// The watcher follows it to the end.
	r = cli(t, rctx, append([]string{"watch", "roles-1"}, roleArgs(url, "watcher")...)...)
	require.Equal(t, 0, r.code, "stderr: %s\nworker: %s", r.stderr, &hello.errOut)
	lines := watchLines(t, r.stdout)
	last := lines[len(lines)-1]
	require.Equal(t, jetflow.StatusCompleted, last.RuntimeStatus)
	require.Equal(t, `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, string(last.Output))

	// The full worker runs the rest: an event, fan-out, a purge by the server.
	worker := launch(ctx, append([]string{"worker", "--log-level", "warn"}, roleArgs(url, "worker")...)...)
	require.Eventually(t, func() bool {
		code, _ := post("/orchestrators/CityRecommender/roles-2", "1")
		return code == http.StatusAccepted
	}, 20*time.Second, 20*time.Millisecond)
	code, body := post("/orchestrators/FanOutFanIn/roles-3", "5")
	require.Equal(t, http.StatusAccepted, code, body)
	var st jetflow.Status
	require.Eventually(t, func() bool {
		r := cli(t, rctx, append([]string{"status", "roles-2"}, roleArgs(url, "watcher")...)...)
		return r.code == 0 && strings.Contains(r.stdout, `"customStatus": {`)
	}, 20*time.Second, 20*time.Millisecond, "roles-2 waits for its event: %s", &worker.errOut)
	code, body = post("/instances/roles-2/raiseEvent/CitySelected", `"Tokyo"`)
	require.Equal(t, http.StatusAccepted, code, body)
	for _, id := range []string{"roles-2", "roles-3"} {
		r := cli(t, rctx, append([]string{"watch", id}, roleArgs(url, "watcher")...)...)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		lines := watchLines(t, r.stdout)
		st = lines[len(lines)-1]
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, "%s: %s", id, r.stdout)
	}
	require.Equal(t, "55", string(st.Output), "FanOutFanIn(5)")
	req, err := http.NewRequest(http.MethodDelete, httpURL+base+"/instances/roles-3", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the server purges")

	t.Run("watcher", func(t *testing.T) {
		rctx, rcancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer rcancel()
		nc, js, v := connectAs(t, url, "watcher")
		kv, err := js.KeyValue(rctx, "jetflow-status")
		require.NoError(t, err)
		_, err = kv.Get(rctx, "roles-1")
		require.NoError(t, err, "reads statuses")
		requireRefused(t, v, "jetflow.orch.", func(ctx context.Context) error {
			_, err := js.Publish(ctx, "jetflow.orch.CityRecommender.0.roles-2", []byte("x"))
			return err
		})
		require.NoError(t, nc.Publish("jetflow.orch.x", nil)) // an async refusal too
		requireRefused(t, v, "$JS.API.DIRECT.GET.KV_jetflow-history", func(ctx context.Context) error {
			h, err := js.Stream(ctx, "KV_jetflow-history")
			if err != nil {
				return err
			}
			_, err = h.GetLastMsgForSubject(ctx, "$KV.jetflow-history.roles-1.00000001")
			return err
		})
		requireRefused(t, v, "$JS.API.STREAM.MSG.GET.KV_jetflow-history", func(ctx context.Context) error {
			_, err := nc.Request("$JS.API.STREAM.MSG.GET.KV_jetflow-history", []byte(`{"seq":1}`), time.Second)
			return err
		})
		requireRefused(t, v, "$JS.API.CONSUMER.CREATE.KV_jetflow-history", func(ctx context.Context) error {
			_, err := js.CreateConsumer(ctx, "KV_jetflow-history", natsjs.ConsumerConfig{})
			return err
		})
		requireRefused(t, v, "$KV.jetflow-status.roles-1", func(ctx context.Context) error { return kv.Purge(ctx, "roles-1") })
		requireRefused(t, v, "$JS.API.STREAM.PURGE.KV_jetflow-status", func(ctx context.Context) error {
			st, err := js.Stream(ctx, "KV_jetflow-status")
			if err != nil {
				return err
			}
			return st.Purge(ctx)
		})
		requireRefused(t, v, "_INBOX.>", func(ctx context.Context) error {
			sub, err := nc.SubscribeSync("_INBOX.>")
			if err != nil {
				return err
			}
			_, err = sub.NextMsg(2 * time.Second)
			return err
		})
		_, err = kv.Get(rctx, "roles-1")
		require.NoError(t, err, "roles-1 is still there")
		_, err = kv.Get(rctx, "roles-2")
		require.NoError(t, err)
	})

	t.Run("watcher of one instance", func(t *testing.T) {
		rctx, rcancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer rcancel()
		code, body := post("/orchestrators/E1_HelloSequence/order-42", "")
		require.Equal(t, http.StatusAccepted, code, body)
		_, js, v := connectAs(t, url, "watcher_one")
		st, err := js.Stream(rctx, "KV_jetflow-status")
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			_, err := st.GetLastMsgForSubject(rctx, "$KV.jetflow-status.order-42")
			return err == nil
		}, 10*time.Second, 20*time.Millisecond, "reads its instance")
		requireRefused(t, v, "$KV.jetflow-status.roles-1", func(ctx context.Context) error {
			_, err := st.GetLastMsgForSubject(ctx, "$KV.jetflow-status.roles-1")
			return err
		})
	})

	t.Run("worker limited to E1_HelloSequence", func(t *testing.T) {
		_, js, v := connectAs(t, url, "worker_hello")
		requireRefused(t, v, "$JS.API.CONSUMER.CREATE.jetflow-act.act-Square", func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, "jetflow-act", natsjs.ConsumerConfig{
				Durable: "act-Square", FilterSubject: "jetflow.act.Square", AckPolicy: natsjs.AckExplicitPolicy})
			return err
		})
		requireRefused(t, v, "$JS.API.CONSUMER.CREATE.jetflow-act.mine", func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, "jetflow-act", natsjs.ConsumerConfig{
				Durable: "mine", FilterSubject: "jetflow.act.Square", AckPolicy: natsjs.AckExplicitPolicy})
			return err
		})
		requireRefused(t, v, "$JS.API.CONSUMER.MSG.NEXT.jetflow-act.act-Square", func(ctx context.Context) error {
			nc := js.Conn()
			_, err := nc.Request("$JS.API.CONSUMER.MSG.NEXT.jetflow-act.act-Square", []byte(`{"batch":1,"expires":500000000}`), time.Second)
			return err
		})
		requireRefused(t, v, "$JS.API.CONSUMER.MSG.NEXT.jetflow-orch.orch-CityRecommender", func(ctx context.Context) error {
			_, err := js.Conn().Request("$JS.API.CONSUMER.MSG.NEXT.jetflow-orch.orch-CityRecommender", []byte(`{"batch":1,"expires":500000000}`), time.Second)
			return err
		})
		requireRefused(t, v, "jetflow.act.Square", func(ctx context.Context) error {
			_, err := js.Publish(ctx, "jetflow.act.Square", []byte("x"))
			return err
		})
		requireRefused(t, v, "$JS.API.STREAM.PURGE.jetflow-act", func(ctx context.Context) error {
			st, err := js.Stream(ctx, "jetflow-act")
			if err != nil {
				return err
			}
			return st.Purge(ctx)
		})
	})

	t.Run("server", func(t *testing.T) {
		_, js, v := connectAs(t, url, "server")
		requireRefused(t, v, "$JS.API.CONSUMER.MSG.NEXT.jetflow-act.act-Square", func(ctx context.Context) error {
			_, err := js.Conn().Request("$JS.API.CONSUMER.MSG.NEXT.jetflow-act.act-Square", []byte(`{"batch":1,"expires":500000000}`), time.Second)
			return err
		})
		requireRefused(t, v, "$JS.API.STREAM.DELETE.jetflow-orch", func(ctx context.Context) error { return js.DeleteStream(ctx, "jetflow-orch") })
	})

	cancel() // SIGTERM
	for _, p := range []*launched{hello, server, worker} {
		select {
		case code := <-p.code:
			require.Equal(t, 0, code, "stderr: %s", &p.errOut)
		case <-time.After(30 * time.Second):
			t.Fatal("a process did not stop")
		}
	}
}
