package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite deploy/nats/nsc-roles.sh from roles.conf")

// nscScript is the nsc script of the roles, generated from roles.conf.
const nscScript = "../../deploy/nats/nsc-roles.sh"

// jwtPermissions is a role of roles.conf as the permissions of a user JWT.
func jwtPermissions(p *server.Permissions) jwt.Permissions {
	var out jwt.Permissions
	if p.Publish != nil {
		out.Pub.Allow.Add(p.Publish.Allow...)
		out.Pub.Deny.Add(p.Publish.Deny...)
	}
	if p.Subscribe != nil {
		out.Sub.Allow.Add(p.Subscribe.Allow...)
		out.Sub.Deny.Add(p.Subscribe.Deny...)
	}
	return out
}

// renderNSCScript writes the nsc commands that add each role of
// roles.conf as a user of an account.
func renderNSCScript(perms map[string]*server.Permissions) string {
	var b strings.Builder
	b.WriteString(`#!/bin/sh
# The NATS roles of jetflow (deploy/nats/roles.conf) as users of an nsc
# account, for operator (JWT) mode: run it with the account's name, then
# hand each process its creds file (nsc generate creds -a ACCOUNT -n worker
# > worker.creds; jetflow worker --creds worker.creds --inbox-prefix
# _INBOX_worker). The account must have JetStream enabled.
#
# Generated from roles.conf by cmd/jetflow's TestNSCRolesScript, which
# also runs the engine on users with exactly these permissions; after
# changing roles.conf: go test ./cmd/jetflow -run TestNSCRolesScript -update
set -eu
account=${1:?usage: nsc-roles.sh ACCOUNT}
`)
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	for _, role := range roleUsers {
		p := jwtPermissions(perms[role])
		fmt.Fprintf(&b, "\nnsc add user --account \"$account\" --name %s", role)
		for _, list := range []struct {
			flag     string
			subjects jwt.StringList
		}{{"allow-pub", p.Pub.Allow}, {"deny-pub", p.Pub.Deny}, {"allow-sub", p.Sub.Allow}, {"deny-sub", p.Sub.Deny}} {
			for _, s := range list.subjects {
				fmt.Fprintf(&b, " \\\n  --%s %s", list.flag, quote(s))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestNSCRolesScript: deploy/nats/nsc-roles.sh is roles.conf as nsc
// commands.
func TestNSCRolesScript(t *testing.T) {
	t.Parallel()
	_, perms := rolePermissions(t)
	want := renderNSCScript(perms)
	if *update {
		require.NoError(t, os.WriteFile(nscScript, []byte(want), 0o755))
	}
	got, err := os.ReadFile(nscScript)
	require.NoError(t, err)
	require.Equal(t, want, string(got), "nsc-roles.sh is not roles.conf: go test ./cmd/jetflow -run TestNSCRolesScript -update")
}

// operatorServer runs a nats-server in operator mode (JWT accounts in a
// memory resolver, one JetStream account) that requires TLS with client
// certificates, and returns its URL, the account's signing key and the
// files a client needs: the server's CA and its own certificate and key.
func operatorServer(t *testing.T) (url string, account nkeys.KeyPair, caFile, certFile, keyFile string) {
	t.Helper()
	op, err := nkeys.CreateOperator()
	require.NoError(t, err)
	opPub, err := op.PublicKey()
	require.NoError(t, err)
	opJWT, err := jwt.NewOperatorClaims(opPub).Encode(op)
	require.NoError(t, err)
	opClaims, err := jwt.DecodeOperatorClaims(opJWT)
	require.NoError(t, err)
	resolver := &server.MemAccResolver{}
	newAccount := func(js bool) (nkeys.KeyPair, string) {
		kp, err := nkeys.CreateAccount()
		require.NoError(t, err)
		pub, err := kp.PublicKey()
		require.NoError(t, err)
		ac := jwt.NewAccountClaims(pub)
		if js {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		aJWT, err := ac.Encode(op)
		require.NoError(t, err)
		require.NoError(t, resolver.Store(pub, aJWT))
		return kp, pub
	}
	_, sysPub := newAccount(false)
	account, _ = newAccount(true)

	serverDir, clientDir := t.TempDir(), t.TempDir()
	caFile, serverKey := testkit.WriteSelfSigned(t, serverDir, "jetflow test NATS")
	certFile, keyFile = testkit.WriteSelfSigned(t, clientDir, "jetflow test client")
	serverCert, err := tls.LoadX509KeyPair(caFile, serverKey)
	require.NoError(t, err)
	clientPEM, err := os.ReadFile(certFile)
	require.NoError(t, err)
	clients := x509.NewCertPool()
	require.True(t, clients.AppendCertsFromPEM(clientPEM))

	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
		TrustedOperators: []*jwt.OperatorClaims{opClaims}, AccountResolver: resolver, SystemAccount: sysPub,
		TLS: true, TLSVerify: true,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: clients,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
	})
	require.NoError(t, err)
	go s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return "tls://" + net.JoinHostPort("127.0.0.1", itoa(uint64(s.Addr().(*net.TCPAddr).Port))), account, caFile, certFile, keyFile
}

// writeCreds writes the creds file of a new user of account with perms.
func writeCreds(t *testing.T, account nkeys.KeyPair, name string, perms jwt.Permissions) string {
	t.Helper()
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	uc := jwt.NewUserClaims(pub)
	uc.Name, uc.Permissions = name, perms
	userJWT, err := uc.Encode(account)
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), name+".creds")
	require.NoError(t, os.WriteFile(file, creds, 0o600))
	return file
}

// TestNATSRolesJWT runs the engine in operator mode, each process with a
// JWT creds file holding its role of roles.conf (as nsc-roles.sh makes
// them) over TLS with a client certificate: the admin creates the hub,
// a worker and a server run E1_HelloSequence, the watcher follows it and
// can do no more.
func TestNATSRolesJWT(t *testing.T) {
	t.Parallel()
	_, perms := rolePermissions(t)
	url, account, caFile, certFile, keyFile := operatorServer(t)
	creds := map[string]string{}
	for _, role := range []string{"admin", "server", "worker", "watcher"} {
		creds[role] = writeCreds(t, account, role, jwtPermissions(perms[role]))
	}
	tlsArgs := []string{"--nats", url, "--tls-ca", caFile, "--tls-cert", certFile, "--tls-key", keyFile}
	args := func(role string, verb ...string) []string {
		return append(append(verb, tlsArgs...), "--creds", creds[role], "--inbox-prefix", "_INBOX_"+role)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Without a client certificate, or without creds, nobody gets in. (The
	// server refuses the handshake; under TLS 1.3 the client may see that
	// as "certificate required" or as the connection closed.)
	requireOneLineError(t, cli(t, ctx, "list", "--nats", url, "--tls-ca", caFile, "--creds", creds["admin"]), "tls")
	requireOneLineError(t, cli(t, ctx, append([]string{"list"}, tlsArgs...)...), "Authorization Violation")
	r := cli(t, ctx, args("admin", "list")...)
	require.Equal(t, 0, r.code, "the admin creates the hub: %s", r.stderr)

	wctx, stopWorker := context.WithCancel(ctx)
	w := launch(wctx, args("worker", "worker", "--log-level", "warn")...)
	defer func() {
		stopWorker()
		require.Equal(t, 0, <-w.code, "worker: %s", &w.errOut)
	}()
	require.Eventually(t, func() bool {
		r = cli(t, ctx, args("server", "start", "E1_HelloSequence", "--id", "jwt-1")...)
		return r.code == 0
	}, 30*time.Second, 20*time.Millisecond, "the server role starts it once the worker registered it: %s %s", r.stderr, &w.errOut)
	r = cli(t, ctx, args("watcher", "watch", "jwt-1")...)
	require.Equal(t, 0, r.code, "stderr: %s\nworker: %s", r.stderr, &w.errOut)
	lines := watchLines(t, r.stdout)
	last := lines[len(lines)-1]
	require.Equal(t, jetflow.StatusCompleted, last.RuntimeStatus)
	require.Equal(t, `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, string(last.Output))

	// The watcher reads statuses and nothing else.
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	caPEM, err := os.ReadFile(caFile)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))
	_, js, v := connectWith(t, url, "watcher", nats.UserCredentials(creds["watcher"]),
		nats.Secure(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	kv, err := js.KeyValue(ctx, "jetflow-status")
	require.NoError(t, err)
	_, err = kv.Get(ctx, "jwt-1")
	require.NoError(t, err, "reads statuses")
	requireRefused(t, v, "jetflow.orch.", func(ctx context.Context) error {
		_, err := js.Publish(ctx, "jetflow.orch.E1_HelloSequence.0.jwt-1", []byte("x"))
		return err
	})
	requireRefused(t, v, "$JS.API.STREAM.PURGE.KV_jetflow-history", func(ctx context.Context) error {
		h, err := js.Stream(ctx, "KV_jetflow-history")
		if err != nil {
			return err
		}
		return h.Purge(ctx)
	})
}
