package httpapi

import (
	"log/slog"
	"net/http"
	"time"
)

// Defaults of ServerConfig.
const (
	// DefaultReadHeaderTimeout is the default ServerConfig.ReadHeaderTimeout.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout is the default ServerConfig.ReadTimeout.
	DefaultReadTimeout = 30 * time.Second
	// DefaultIdleTimeout is the default ServerConfig.IdleTimeout.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultMaxHeaderBytes is the default ServerConfig.MaxHeaderBytes.
	DefaultMaxHeaderBytes = 64 << 10
)

// ServerConfig configures NewServer: the limits of the HTTP server in front
// of the API. The zero value is usable.
type ServerConfig struct {
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request before the server closes it. Defaults to
	// DefaultIdleTimeout (2 minutes).
	IdleTimeout time.Duration

	// Logger receives the server's own errors (failed handshakes, requests
	// it refused before any handler ran), at level Warn. Defaults to
	// slog.Default().
	Logger *slog.Logger

	// MaxHeaderBytes bounds the request line and headers of a request
	// (431 beyond it). Defaults to DefaultMaxHeaderBytes (64 KiB).
	MaxHeaderBytes int

	// ReadHeaderTimeout bounds the reading of a request's line and headers.
	// Defaults to DefaultReadHeaderTimeout (10 seconds).
	ReadHeaderTimeout time.Duration

	// ReadTimeout bounds the reading of a whole request, headers and body,
	// from its first byte: a body still arriving when it ends is cut off
	// (408) and the connection closed. It does not bound what the handler
	// does once the body is read: watch streams and starts that wait
	// (?timeout=) last longer. Defaults to DefaultReadTimeout (30 seconds).
	ReadTimeout time.Duration
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	return c
}

// NewServer returns the HTTP server that jetflow dev and jetflow server
// run in front of h (the handler New returns), with the limits of cfg:
// call its Serve (or ListenAndServe) and Shutdown.
//
// It sets no WriteTimeout: watch streams and starts that wait last as long
// as they need. The handler bounds each write of a watch stream instead
// (Config.WatchWriteTimeout), so a client that stops reading is dropped.
func NewServer(h http.Handler, cfg ServerConfig) *http.Server {
	cfg = cfg.withDefaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
}
