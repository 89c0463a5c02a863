package embedded_test

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/jetstream/embedded"
)

func TestRun(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { busy.Close() })

	for _, tc := range []struct {
		name      string
		cfg       embedded.Config
		withError string
	}{
		{name: "busy port", cfg: embedded.Config{Dir: t.TempDir(), Listen: busy.Addr().String()}, withError: "address already in use"},
		{name: "no store directory", cfg: embedded.Config{Listen: "127.0.0.1:0"}, withError: "no store directory"},
		{name: "no port", cfg: embedded.Config{Dir: t.TempDir(), Listen: "127.0.0.1"}, withError: "listen address"},
		{name: "bad port", cfg: embedded.Config{Dir: t.TempDir(), Listen: "127.0.0.1:70000"}, withError: "bad port"},
		{name: "free port", cfg: embedded.Config{Dir: t.TempDir(), Listen: "127.0.0.1:0"}},
		{name: "port -1", cfg: embedded.Config{Dir: t.TempDir(), Listen: "127.0.0.1:-1", MaxPayload: 1 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			srv, err := embedded.Run(tc.cfg)
			if tc.withError != "" {
				require.ErrorContains(t, err, tc.withError)
				require.Nil(t, srv)
				require.Less(t, time.Since(start), 5*time.Second, "fails at once")
				return
			}
			require.NoError(t, err)
			t.Cleanup(func() {
				srv.Shutdown()
				srv.WaitForShutdown()
			})
			require.True(t, srv.JetStreamEnabled())
			nc, err := nats.Connect(srv.ClientURL())
			require.NoError(t, err)
			t.Cleanup(nc.Close)
			want := int64(1 << 20)
			if tc.cfg.MaxPayload != 0 {
				want = int64(tc.cfg.MaxPayload)
			}
			require.Equal(t, want, nc.MaxPayload())
			_, err = jetstream.Open(t.Context(), nc, jetstream.Config{})
			require.NoError(t, err)
		})
	}
}

// TestRunUsers: with Users, the server takes only those users, each with
// its permissions.
func TestRunUsers(t *testing.T) {
	t.Parallel()
	_, err := embedded.Run(embedded.Config{Dir: t.TempDir(), Listen: "127.0.0.1:0", Users: []*server.User{{Username: "a"}}})
	require.ErrorContains(t, err, "without a name or password")

	srv, err := embedded.Run(embedded.Config{Dir: t.TempDir(), Listen: "127.0.0.1:0", Users: []*server.User{
		{Username: "admin", Password: "pw"},
		{Username: "reader", Password: "pw2", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{"allowed"}}}},
	}})
	require.NoError(t, err)
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	_, err = nats.Connect(srv.ClientURL())
	require.ErrorContains(t, err, "Authorization Violation")
	_, err = nats.Connect(srv.ClientURL(), nats.UserInfo("admin", "wrong"))
	require.ErrorContains(t, err, "Authorization Violation")

	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("admin", "pw"))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	_, err = jetstream.Open(t.Context(), nc, jetstream.Config{})
	require.NoError(t, err)

	violation := make(chan error, 1)
	rc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("reader", "pw2"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case violation <- err:
			default:
			}
		}))
	require.NoError(t, err)
	t.Cleanup(rc.Close)
	require.NoError(t, rc.Publish("denied", nil))
	select {
	case err := <-violation:
		require.ErrorContains(t, err, `Permissions Violation for Publish to "denied"`)
	case <-time.After(10 * time.Second):
		t.Fatal("no permission violation reported")
	}
}
