package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/httpapi"
	"github.com/jetflow/jetflow/ui"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

// Environment variables of the HTTP API's keys.
const (
	apiKeyEnv   = "JETFLOW_API_KEY"   // the admin key
	keysFileEnv = "JETFLOW_KEYS_FILE" // default of --keys
	keysEnv     = "JETFLOW_KEYS"      // a keys file's JSON, inline
)

// apiOptions are the flags of the HTTP API, shared by dev and server.
type apiOptions struct {
	apiKey         string
	keysFile       string
	noQueryKey     bool
	publicURL      string
	allowedOrigins []string
	allowedHosts   []string
	tlsCert        string
	tlsKey         string
	noUI           bool
}

// addAPIFlags adds the HTTP API's flags to cmd. The TLS flags are
// --<tlsPrefix>tls-cert and --<tlsPrefix>tls-key (server's --tls-* are
// those of its NATS connection).
func addAPIFlags(cmd *cobra.Command, tlsPrefix string) *apiOptions {
	o := &apiOptions{}
	f := cmd.Flags()
	f.StringVar(&o.apiKey, "api-key", os.Getenv(apiKeyEnv), "admin key: required (x-functions-key header or ?code=) on every HTTP route but /healthz (env "+apiKeyEnv+")")
	def := os.Getenv(keysFileEnv)
	f.StringVar(&o.keysFile, "keys", def, "file of scoped HTTP keys (JSON, see docs/SECURITY.md), read again on SIGHUP (env "+keysFileEnv+"; or the JSON itself in "+keysEnv+")")
	f.BoolVar(&o.noQueryKey, "no-query-key", false, "refuse keys sent as ?code= (they end up in logs); only the x-functions-key header")
	f.StringVar(&o.publicURL, "public-url", "", "URL at which clients reach the API (e.g. https://jetflow.example.com): management URLs start with it and its host is accepted")
	f.StringSliceVar(&o.allowedOrigins, "allowed-origins", nil, "origins (scheme://host[:port], comma-separated, or *) whose web pages may call state-changing routes (CORS)")
	f.StringSliceVar(&o.allowedHosts, "allowed-hosts", nil, "host names accepted in the Host header besides IP addresses, names without a dot (localhost) and --public-url's host (* for any)")
	f.StringVar(&o.tlsCert, tlsPrefix+"tls-cert", "", "serve the HTTP API over TLS with this certificate (PEM), read again when it changes")
	f.StringVar(&o.tlsKey, tlsPrefix+"tls-key", "", "private key (PEM) of --"+tlsPrefix+"tls-cert")
	f.BoolVar(&o.noUI, "no-ui", false, "do not serve the live status page at /ui/ (its files need no key; its API calls do)")
	return o
}

// httpAPI is the configured HTTP API of a process, checked before
// anything starts.
type httpAPI struct {
	cfg      httpapi.Config
	certs    *httpapi.CertReloader
	keysFile string // reloaded on SIGHUP
	scheme   string
}

// prepare checks the flags and loads the keys and certificate.
func (o *apiOptions) prepare(tlsPrefix string, logger *slog.Logger) (*httpAPI, error) {
	h := &httpAPI{scheme: "http", keysFile: o.keysFile, cfg: httpapi.Config{
		Logger:         logger,
		APIKey:         o.apiKey,
		NoQueryKey:     o.noQueryKey,
		BaseURL:        o.publicURL,
		AllowedOrigins: o.allowedOrigins,
		AllowedHosts:   o.allowedHosts,
	}}
	if !o.noUI {
		h.cfg.UI = ui.Handler()
	}
	if err := h.cfg.Validate(); err != nil {
		flag := "--allowed-origins"
		if strings.HasPrefix(err.Error(), "base URL") {
			flag = "--public-url"
		}
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	inline := os.Getenv(keysEnv)
	switch {
	case o.keysFile != "":
		keys, err := httpapi.LoadKeys(o.keysFile)
		if err != nil {
			return nil, fmt.Errorf("--keys: %w", err)
		}
		if h.cfg.Keys, err = httpapi.NewKeyring(keys); err != nil {
			return nil, fmt.Errorf("--keys %s: %w", o.keysFile, err)
		}
	case inline != "":
		keys, err := httpapi.ParseKeys([]byte(inline))
		if err != nil {
			return nil, fmt.Errorf("$%s: %w", keysEnv, err)
		}
		if h.cfg.Keys, err = httpapi.NewKeyring(keys); err != nil {
			return nil, fmt.Errorf("$%s: %w", keysEnv, err)
		}
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, fmt.Errorf("--%stls-cert and --%stls-key go together", tlsPrefix, tlsPrefix)
	}
	if o.tlsCert != "" {
		certs, err := httpapi.NewCertReloader(o.tlsCert, o.tlsKey, logger)
		if err != nil {
			return nil, fmt.Errorf("--%stls-cert: %w", tlsPrefix, err)
		}
		h.certs, h.scheme = certs, "https"
	}
	return h, nil
}

// authenticated reports whether the API requires keys.
func (h *httpAPI) authenticated() bool { return h.cfg.APIKey != "" || h.cfg.Keys != nil }

// reloadKeys reads the keys file again (SIGHUP); on error the keys in use
// stay.
func (h *httpAPI) reloadKeys() error {
	if h.keysFile == "" || h.cfg.Keys == nil {
		return nil
	}
	keys, err := httpapi.LoadKeys(h.keysFile)
	if err != nil {
		return err
	}
	return h.cfg.Keys.Set(keys)
}

// start serves the HTTP API on ln until the returned stop is called;
// served reports the server's failure. While it runs, SIGHUP reloads the
// keys file.
func (h *httpAPI) start(ln net.Listener, c *client.Client, nc *nats.Conn, logger *slog.Logger) (stop func(), served <-chan error) {
	// Watch streams last until their client leaves: end them when the
	// server shuts down, which otherwise waits for them.
	streamsDone := make(chan struct{})
	cfg := h.cfg
	cfg.Shutdown = streamsDone
	cfg.Ready = func() error {
		if !nc.IsConnected() {
			return errors.New("not connected to NATS")
		}
		return nil
	}
	hs := httpapi.NewServer(httpapi.New(c, cfg), httpapi.ServerConfig{Logger: logger})
	hs.RegisterOnShutdown(func() { close(streamsDone) })

	hup := make(chan os.Signal, 1)
	hupDone := make(chan struct{})
	if h.keysFile != "" {
		signal.Notify(hup, syscall.SIGHUP)
		go func() {
			defer close(hupDone)
			for range hup {
				if err := h.reloadKeys(); err != nil {
					logger.Error("SIGHUP: reloading the keys failed; the keys in use stay", slog.Any("error", err))
					continue
				}
				logger.Warn("SIGHUP: keys reloaded", slog.String("file", h.keysFile), slog.Int("keys", h.cfg.Keys.Len()))
			}
		}()
	} else {
		close(hupDone)
	}

	errc := make(chan error, 1)
	go func() {
		if h.certs != nil {
			hs.TLSConfig = h.certs.TLSConfig()
			errc <- hs.ServeTLS(ln, "", "")
			return
		}
		errc <- hs.Serve(ln)
	}()
	return func() {
		if h.keysFile != "" {
			signal.Stop(hup)
			close(hup)
		}
		<-hupDone
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("stopping the HTTP server", slog.Any("error", err))
		}
	}, errc
}
