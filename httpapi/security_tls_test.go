package httpapi_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/httpapi"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/samples"
)

// tlsClient returns an HTTP client that trusts only cert, on fresh
// connections.
func tlsClient(cert *x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
	}}
}

// TestTLS serves the API over real TLS from certificate files, and picks
// up a renewed certificate without a restart.
func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c1, k1, cert1 := testkit.SelfSigned(t, "first")
	require.NoError(t, os.WriteFile(certFile, c1, 0o600))
	require.NoError(t, os.WriteFile(keyFile, k1, 0o600))

	_, err := httpapi.NewCertReloader(filepath.Join(dir, "none.pem"), keyFile, nil)
	require.ErrorContains(t, err, "TLS certificate")
	_, err = httpapi.NewCertReloader(keyFile, keyFile, nil)
	require.Error(t, err, "a key is not a certificate")

	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return samples.Register(r, samples.Options{})
	}})
	var logs testkit.Buffer
	certs, err := httpapi.NewCertReloader(certFile, keyFile, slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	hs := httpapi.NewServer(httpapi.New(e.Client, httpapi.Config{Logger: e.Logger()}), httpapi.ServerConfig{Logger: slog.New(slog.DiscardHandler)})
	hs.TLSConfig = certs.TLSConfig()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = hs.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = hs.Close() })
	url := "https://" + ln.Addr().String()

	resp, err := tlsClient(cert1).Post(url+base+"/orchestrators/E1_HelloSequence/tls-1", "application/json", nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "body: %s", body)
	var urls map[string]string
	require.NoError(t, json.Unmarshal(body, &urls))
	require.True(t, strings.HasPrefix(urls["statusQueryGetUri"], url+base), "management URLs are https: %s", urls["statusQueryGetUri"])

	// Plain HTTP to the TLS port gets nothing from the API.
	resp, err = http.Get("http://" + ln.Addr().String() + base + "/instances")
	if err == nil {
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	}

	// Renew: the files change, the next connections get the new one.
	c2, k2, cert2 := testkit.SelfSigned(t, "second")
	require.NoError(t, os.WriteFile(keyFile+".new", k2, 0o600))
	require.NoError(t, os.WriteFile(certFile+".new", c2, 0o600))
	require.NoError(t, os.Rename(keyFile+".new", keyFile))
	require.NoError(t, os.Rename(certFile+".new", certFile))
	require.Eventually(t, func() bool {
		resp, err := tlsClient(cert2).Get(url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "the renewed certificate is served")
	_, err = tlsClient(cert1).Get(url + "/healthz")
	require.ErrorContains(t, err, "certificate", "the old certificate is no longer served")

	// A broken renewal keeps the certificate in use.
	require.NoError(t, os.WriteFile(certFile, []byte("not a certificate"), 0o600))
	require.Eventually(t, func() bool {
		resp, err := tlsClient(cert2).Get(url + "/healthz")
		require.NoError(t, err, "the certificate in use stays")
		resp.Body.Close()
		return strings.Contains(logs.String(), "reloading the TLS certificate failed")
	}, 10*time.Second, 20*time.Millisecond, "the broken files are read, and refused")
	resp, err = tlsClient(cert2).Get(url + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
