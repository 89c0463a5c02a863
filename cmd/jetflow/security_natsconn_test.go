package main

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"
)

// TestNATSConnectionSecured: the CLI's --tls-ca, --nkey and
// --user/--password against a real nats-server that requires TLS and
// credentials, with the watcher's permissions on the NKey user.
func TestNATSConnectionSecured(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := testkit.WriteSelfSigned(t, dir, "jetflow test NATS")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)

	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	seedFile := filepath.Join(dir, "watcher.nk")
	require.NoError(t, os.WriteFile(seedFile, seed, 0o600))
	other, err := nkeys.CreateUser()
	require.NoError(t, err)
	otherSeed, err := other.Seed()
	require.NoError(t, err)
	otherFile := filepath.Join(dir, "other.nk")
	require.NoError(t, os.WriteFile(otherFile, otherSeed, 0o600))

	opts := &server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
		TLS: true, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Users: []*server.User{{Username: "admin", Password: "admin-pw"}},
		Nkeys: []*server.NkeyUser{{Nkey: pub, Permissions: watcherPermissions(storage.NewNames(jetstream.DefaultHub, 0, 1))}},
	}
	s, err := server.NewServer(opts)
	require.NoError(t, err)
	go s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	url := "tls://" + net.JoinHostPort("127.0.0.1", itoa(uint64(s.Addr().(*net.TCPAddr).Port)))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// TLS without the CA fails; with it and the admin's password, the hub
	// is created and an instance started.
	requireOneLineError(t, cli(t, ctx, "list", "--nats", url, "--user", "admin", "--password", "admin-pw"), "certificate")
	admin := []string{"--nats", url, "--tls-ca", certFile, "--user", "admin", "--password", "admin-pw"}
	wctx, stopWorker := context.WithCancel(ctx)
	w := launch(wctx, append([]string{"worker", "--log-level", "warn"}, admin...)...)
	defer func() {
		stopWorker()
		require.Equal(t, 0, <-w.code, "worker: %s", &w.errOut)
	}()
	var r result
	require.Eventually(t, func() bool {
		r = cli(t, ctx, append([]string{"start", "E1_HelloSequence", "--id", "tls-1"}, admin...)...)
		return r.code == 0
	}, 20*time.Second, 20*time.Millisecond, "start over TLS as admin, once the worker registered it")
	requireOneLineError(t, cli(t, ctx, "status", "tls-1", "--nats", url, "--tls-ca", certFile, "--user", "admin", "--password", "wrong"),
		"Authorization Violation")

	// The NKey user reads as a watcher, and nothing more.
	r = cli(t, ctx, "status", "tls-1", "--nats", url, "--tls-ca", certFile, "--nkey", seedFile, "--inbox-prefix", watcherInboxPrefix)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Contains(t, r.stdout, `"instanceId": "tls-1"`)
	requireOneLineError(t, cli(t, ctx, "status", "tls-1", "--nats", url, "--tls-ca", certFile, "--nkey", otherFile), "Authorization Violation")
	r = cli(t, ctx, "raise", "tls-1", "Go", "--nats", url, "--tls-ca", certFile, "--nkey", seedFile, "--inbox-prefix", watcherInboxPrefix)
	require.NotEqual(t, 0, r.code, "the NKey watcher may not raise: %s", r.stdout)
}

// TestNATSPasswordFromEnvironment: without --password (or --token) the CLI
// takes the secret from $JETFLOW_NATS_PASSWORD ($JETFLOW_NATS_TOKEN), so a
// deployment keeps it out of the process list; a flag given wins. Not
// parallel: the environment is the process's (the parallel tests wait
// until it is restored).
func TestNATSPasswordFromEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts server.Options
		env  string
		args []string
	}{
		{"password", server.Options{Users: []*server.User{{Username: "admin", Password: "env-pw"}}}, natsPasswordEnv, []string{"--user", "admin"}},
		{"token", server.Options{Authorization: "env-token"}, natsTokenEnv, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Host, opts.Port, opts.JetStream, opts.StoreDir, opts.NoSigs, opts.NoLog = "127.0.0.1", -1, true, t.TempDir(), true, true
			s, err := server.NewServer(&opts)
			require.NoError(t, err)
			go s.Start()
			require.True(t, s.ReadyForConnections(10*time.Second))
			t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := append([]string{"list", "--nats", s.ClientURL()}, tc.args...)

			requireOneLineError(t, cli(t, ctx, args...), "Authorization Violation")
			t.Setenv(tc.env, map[string]string{"password": "env-pw", "token": "env-token"}[tc.name])
			r := cli(t, ctx, args...)
			require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
			flag := "--" + tc.name
			requireOneLineError(t, cli(t, ctx, append(args, flag, "wrong")...), "Authorization Violation")
		})
	}
}
