package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testkit"
)

// rolesConf is the shipped file of NATS roles that the test runs a server on.
const rolesConf = "../../deploy/nats/roles.conf"

// roleUsers are the users of roles.conf, each with its password (the
// user name again) and inbox prefix.
var roleUsers = []string{"admin", "server", "worker", "worker_hello", "sidecar", "watcher", "watcher_one"}

// shippedRoles returns deploy/nats/roles.conf.
func shippedRoles(t *testing.T) string {
	t.Helper()
	conf, err := os.ReadFile(rolesConf)
	require.NoError(t, err)
	return string(conf)
}

// rolePermissions reads the permission sets of deploy/nats/roles.conf,
// by user (the passwords defined before it, as the environment would give
// them).
func rolePermissions(t *testing.T) (*server.Options, map[string]*server.Permissions) {
	t.Helper()
	return confPermissions(t, shippedRoles(t))
}

// confPermissions reads the permission sets of conf, a file of the roles
// of roles.conf (for some hub), as rolePermissions does.
func confPermissions(t *testing.T, conf string) (*server.Options, map[string]*server.Permissions) {
	t.Helper()
	var vars strings.Builder
	for _, u := range roleUsers {
		fmt.Fprintf(&vars, "JETFLOW_%s_PASSWORD: %q\n", strings.ToUpper(u), u+"-pw")
	}
	opts := &server.Options{}
	require.NoError(t, opts.ProcessConfigString(vars.String()+conf))
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
	return confServer(t, shippedRoles(t), log)
}

// confServer runs a nats-server with JetStream on 127.0.0.1 configured
// by conf, a file of the roles of roles.conf (for some hub), logging to
// log (nil: nowhere).
func confServer(t *testing.T, conf string, log server.Logger) *server.Server {
	t.Helper()
	opts, _ := confPermissions(t, conf)
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
	testRoles(t, shippedRoles(t), storage.NewNames(storage.DefaultHub, 64, 1))
}

// testRoles is TestNATSRoles on a nats-server configured by conf, the
// roles of roles.conf for the hub of n (its name and partitions), which
// the admin creates.
func testRoles(t *testing.T, conf string, n storage.Names) {
	s := confServer(t, conf, nil)
	url := s.ClientURL()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
	defer rcancel()
	// as are the connection flags of a role on the hub.
	as := func(user string) []string { return append(roleArgs(url, user), "--hub", n.Hub()) }

	// Nobody gets in without credentials; only the admin creates the hub.
	_, err := nats.Connect(url)
	require.ErrorContains(t, err, "Authorization Violation")
	requireOneLineError(t, cli(t, rctx, append([]string{"list"}, as("server")...)...), "opening hub")
	create := []string{"list"}
	if n.Partitions() > 1 {
		create = []string{"init", "--partitions", strconv.Itoa(n.Partitions())}
	}
	r := cli(t, rctx, append(create, as("admin")...)...)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)

	// The limited worker first, alone: it runs E1_HelloSequence end to end.
	hctx, hcancel := context.WithCancel(ctx)
	defer hcancel()
	hello := launch(hctx, append([]string{"worker", "--log-level", "warn", "--orchestrators", "E1_HelloSequence", "--activities", "E1_SayHello", "--no-purge"},
		as("worker_hello")...)...)
	server := launch(ctx, append([]string{"server", "--http", "127.0.0.1:0", "--log-level", "warn"}, as("server")...)...)
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
	r = cli(t, rctx, append([]string{"watch", "roles-1"}, as("watcher")...)...)
	require.Equal(t, 0, r.code, "stderr: %s\nworker: %s", r.stderr, &hello.errOut)
	lines := watchLines(t, r.stdout)
	last := lines[len(lines)-1]
	require.Equal(t, jetflow.StatusCompleted, last.RuntimeStatus)
	require.Equal(t, `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, string(last.Output))

	// The full worker runs the rest: an event, fan-out, a purge by the server.
	worker := launch(ctx, append([]string{"worker", "--log-level", "warn"}, as("worker")...)...)
	require.Eventually(t, func() bool {
		code, _ := post("/orchestrators/CityRecommender/roles-2", "1")
		return code == http.StatusAccepted
	}, 20*time.Second, 20*time.Millisecond)
	code, body := post("/orchestrators/FanOutFanIn/roles-3", "5")
	require.Equal(t, http.StatusAccepted, code, body)
	var st jetflow.Status
	require.Eventually(t, func() bool {
		r := cli(t, rctx, append([]string{"status", "roles-2"}, as("watcher")...)...)
		return r.code == 0 && strings.Contains(r.stdout, `"customStatus": {`)
	}, 20*time.Second, 20*time.Millisecond, "roles-2 waits for its event: %s", &worker.errOut)
	code, body = post("/instances/roles-2/raiseEvent/CitySelected", `"Tokyo"`)
	require.Equal(t, http.StatusAccepted, code, body)
	for _, id := range []string{"roles-2", "roles-3"} {
		r := cli(t, rctx, append([]string{"watch", id}, as("watcher")...)...)
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

	// The full worker alone runs E1_HelloSequence too, and the server reads
	// it back with its history.
	hcancel()
	requireExit0(t, hello)
	code, body = post("/orchestrators/E1_HelloSequence/roles-4", "")
	require.Equal(t, http.StatusAccepted, code, body)
	r = cli(t, rctx, append([]string{"watch", "roles-4"}, as("watcher")...)...)
	require.Equal(t, 0, r.code, "stderr: %s\nworker: %s", r.stderr, &worker.errOut)
	lines = watchLines(t, r.stdout)
	require.Equal(t, jetflow.StatusCompleted, lines[len(lines)-1].RuntimeStatus, "%s", &worker.errOut)
	resp, err = http.Get(httpURL + base + "/instances/roles-4?showHistory=true")
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	require.Contains(t, string(b), `"historyEvents":[`)
	require.Contains(t, string(b), "Hello London!")

	t.Run("watcher", func(t *testing.T) {
		rctx, rcancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer rcancel()
		nc, js, v := connectAs(t, url, "watcher")
		kv, err := js.KeyValue(rctx, n.StatusBucket())
		require.NoError(t, err)
		_, err = kv.Get(rctx, "roles-1")
		require.NoError(t, err, "reads statuses")
		requireRefused(t, v, n.Hub()+".orch.", func(ctx context.Context) error {
			_, err := js.Publish(ctx, n.Hub()+".orch.CityRecommender.0.roles-2", []byte("x"))
			return err
		})
		require.NoError(t, nc.Publish(n.Hub()+".orch.x", nil)) // an async refusal too
		for p := range n.Partitions() {
			history := n.HistoryStream(p)
			requireRefused(t, v, "$JS.API.DIRECT.GET."+history, func(ctx context.Context) error {
				h, err := js.Stream(ctx, history)
				if err != nil {
					return err
				}
				_, err = h.GetLastMsgForSubject(ctx, "$KV."+n.HistoryBucket(p)+"."+n.HistoryKey("roles-1", 1))
				return err
			})
			requireRefused(t, v, "$JS.API.STREAM.MSG.GET."+history, func(ctx context.Context) error {
				_, err := nc.Request("$JS.API.STREAM.MSG.GET."+history, []byte(`{"seq":1}`), time.Second)
				return err
			})
			requireRefused(t, v, "$JS.API.CONSUMER.CREATE."+history, func(ctx context.Context) error {
				_, err := js.CreateConsumer(ctx, history, natsjs.ConsumerConfig{})
				return err
			})
		}
		requireRefused(t, v, n.StatusSubject("roles-1"), func(ctx context.Context) error { return kv.Purge(ctx, "roles-1") })
		requireRefused(t, v, "$JS.API.STREAM.PURGE."+n.StatusStream(), func(ctx context.Context) error {
			st, err := js.Stream(ctx, n.StatusStream())
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
		st, err := js.Stream(rctx, n.StatusStream())
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			_, err := st.GetLastMsgForSubject(rctx, n.StatusSubject("order-42"))
			return err == nil
		}, 10*time.Second, 20*time.Millisecond, "reads its instance")
		requireRefused(t, v, n.StatusSubject("roles-1"), func(ctx context.Context) error {
			_, err := st.GetLastMsgForSubject(ctx, n.StatusSubject("roles-1"))
			return err
		})
	})

	// The limits below are checked on the last partition's streams.
	acts, orch := n.TaskStream(n.Partitions()-1), n.InboxStream(n.Partitions()-1)
	t.Run("worker limited to E1_HelloSequence", func(t *testing.T) {
		_, js, v := connectAs(t, url, "worker_hello")
		requireRefused(t, v, "$JS.API.CONSUMER.CREATE."+acts+".act-Square", func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, acts, natsjs.ConsumerConfig{
				Durable: "act-Square", FilterSubject: n.TaskFilter("Square"), AckPolicy: natsjs.AckExplicitPolicy})
			return err
		})
		requireRefused(t, v, "$JS.API.CONSUMER.CREATE."+acts+".mine", func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, acts, natsjs.ConsumerConfig{
				Durable: "mine", FilterSubject: n.TaskFilter("Square"), AckPolicy: natsjs.AckExplicitPolicy})
			return err
		})
		requireRefused(t, v, "$JS.API.CONSUMER.MSG.NEXT."+acts+".act-Square", func(ctx context.Context) error {
			nc := js.Conn()
			_, err := nc.Request("$JS.API.CONSUMER.MSG.NEXT."+acts+".act-Square", []byte(`{"batch":1,"expires":500000000}`), time.Second)
			return err
		})
		requireRefused(t, v, "$JS.API.CONSUMER.MSG.NEXT."+orch+".orch-CityRecommender", func(ctx context.Context) error {
			_, err := js.Conn().Request("$JS.API.CONSUMER.MSG.NEXT."+orch+".orch-CityRecommender", []byte(`{"batch":1,"expires":500000000}`), time.Second)
			return err
		})
		task := n.TaskSubject("Square", "roles-1")
		requireRefused(t, v, task, func(ctx context.Context) error {
			_, err := js.Publish(ctx, task, []byte("x"))
			return err
		})
		requireRefused(t, v, "$JS.API.STREAM.PURGE."+acts, func(ctx context.Context) error {
			st, err := js.Stream(ctx, acts)
			if err != nil {
				return err
			}
			return st.Purge(ctx)
		})
	})

	t.Run("server", func(t *testing.T) {
		_, js, v := connectAs(t, url, "server")
		requireRefused(t, v, "$JS.API.CONSUMER.MSG.NEXT."+acts+".act-Square", func(ctx context.Context) error {
			_, err := js.Conn().Request("$JS.API.CONSUMER.MSG.NEXT."+acts+".act-Square", []byte(`{"batch":1,"expires":500000000}`), time.Second)
			return err
		})
		requireRefused(t, v, "$JS.API.STREAM.DELETE."+orch, func(ctx context.Context) error { return js.DeleteStream(ctx, orch) })
	})

	cancel() // SIGTERM
	for _, p := range []*launched{server, worker} {
		requireExit0(t, p)
	}
}

// requireExit0 waits for a launched process to end, with status 0.
func requireExit0(t *testing.T, p *launched) {
	t.Helper()
	select {
	case code := <-p.code:
		require.Equal(t, 0, code, "stderr: %s", &p.errOut)
	case <-time.After(30 * time.Second):
		t.Fatal("a process did not stop")
	}
}
