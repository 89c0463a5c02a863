// Package embedded runs a nats-server with JetStream inside the process,
// for `jetflow dev`, tests and examples. It is apart from the storage
// package so that programs that only talk to a hub do not link the server.
package embedded

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config configures an embedded nats-server.
type Config struct {
	// Dir is the JetStream store directory. Required.
	Dir string
	// Listen is the host:port of the NATS client port. Defaults to
	// "127.0.0.1:4222"; port 0 or -1 picks a free port.
	Listen string
	// SyncInterval is how often the server fsyncs its files. Zero (the
	// default) fsyncs every write before acknowledging it, so an
	// acknowledged write survives a crash or power loss; a positive
	// interval is faster and can lose the writes of the last interval on
	// power loss.
	SyncInterval time.Duration
	// MaxPayload is the largest message, in bytes. Defaults to 1 MiB, a
	// stock nats-server's max_payload, so that what runs here runs on any
	// NATS.
	MaxPayload int32
	// Logger, when set, receives the server's log at Info level and above.
	Logger *slog.Logger
	// Users, when set, are the only clients the server accepts: each with a
	// user name, a password and permissions (nil permissions allow
	// everything). A connection without credentials, or with wrong ones,
	// is refused. Defaults to none: any client may connect and do
	// anything, which is safe only on a loopback address of a machine
	// whose users are trusted.
	Users []*server.User
	// Monitor, when set, is the host:port of the server's HTTP monitoring
	// (/varz, /jsz, /connz, /healthz: what the NATS Prometheus exporter
	// and the NATS dashboards read; port 0 picks a free one, which
	// Server.MonitorAddr tells). It has no authentication. Defaults to
	// none.
	Monitor string
}

// Run starts an embedded nats-server with JetStream and waits until
// it takes connections. Shut it down with Shutdown and WaitForShutdown.
func Run(cfg Config) (*server.Server, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("embedded server: no store directory")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:4222"
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded server: listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < -1 || port > 65535 {
		return nil, fmt.Errorf("embedded server: listen address %q: bad port", cfg.Listen)
	}
	if port == 0 {
		port = -1
	}
	if port > 0 {
		// nats-server reports a busy port only in its log and then never
		// becomes ready: find out first.
		l, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded server: %w", err)
		}
		l.Close()
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = 1 << 20
	}
	var monHost string
	var monPort int
	if cfg.Monitor != "" {
		h, p, err := net.SplitHostPort(cfg.Monitor)
		if err != nil {
			return nil, fmt.Errorf("embedded server: monitor address %q: %w", cfg.Monitor, err)
		}
		if monPort, err = strconv.Atoi(p); err != nil || monPort < 0 || monPort > 65535 {
			return nil, fmt.Errorf("embedded server: monitor address %q: bad port", cfg.Monitor)
		}
		if monPort == 0 {
			monPort = -1 // nats-server: a free port
		} else if l, err := net.Listen("tcp", cfg.Monitor); err != nil { // as for the client port
			return nil, fmt.Errorf("embedded server: monitor: %w", err)
		} else {
			l.Close()
		}
		monHost = h
	}
	opts := &server.Options{
		ServerName:         "jetflow-dev",
		Host:               host,
		Port:               port,
		JetStream:          true,
		StoreDir:           cfg.Dir,
		MaxPayload:         cfg.MaxPayload,
		NoSigs:             true,
		SyncAlways:         cfg.SyncInterval <= 0,
		SyncInterval:       cfg.SyncInterval,
		JetStreamMaxMemory: 1 << 30,
		Users:              cfg.Users,
		HTTPHost:           monHost,
		HTTPPort:           monPort,
	}
	for _, u := range cfg.Users {
		if u == nil || u.Username == "" || u.Password == "" {
			return nil, fmt.Errorf("embedded server: a user without a name or password")
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	if cfg.Logger != nil {
		s.SetLoggerV2(&serverLogger{cfg.Logger}, false, false, false)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded server: not ready after 30s (is %s in use?)", cfg.Listen)
	}
	return s, nil
}

type serverLogger struct{ l *slog.Logger }

func (l *serverLogger) Noticef(format string, v ...any) { l.l.Info(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.HasPrefix(msg, "Plaintext passwords detected") {
		// Config.Users come from the program, not from a configuration
		// file where a hash would hide them.
		l.l.Debug(msg)
		return
	}
	l.l.Warn(msg)
}
func (l *serverLogger) Fatalf(format string, v ...any) { l.l.Error(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Errorf(format string, v ...any) { l.l.Error(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Debugf(format string, v ...any) { l.l.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Tracef(format string, v ...any) {}
