package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jetflow/jetflow/jetstream"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and its key
// into dir, and returns their paths.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "jetflow test NATS"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(priv)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile
}

// TestNATSConnectionSecured: the CLI's --tls-ca, --nkey and
// --user/--password against a real nats-server that requires TLS and
// credentials, with the watcher's permissions on the NKey user.
func TestNATSConnectionSecured(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir)
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
		Nkeys: []*server.NkeyUser{{Nkey: pub, Permissions: watcherPermissions(jetstream.NewNames(jetstream.DefaultHub, 0))}},
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
