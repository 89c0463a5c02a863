package httpapi

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CertReloader serves a TLS certificate from a pair of PEM files and
// reads them again when they change (their size or modification time), so
// that a renewed certificate is used without a restart. A pair that fails
// to load (a renewal half written, a key that does not match) is logged
// and the previous certificate kept. Use its GetCertificate in a
// tls.Config. It is safe for concurrent use.
type CertReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   fileStamp // of the files cert was read from
	tried   fileStamp // the last stamp a load was tried for
	checked time.Time
}

// fileStamp identifies a version of the certificate and key files.
type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// certCheckInterval bounds how often the files are looked at (a stat of
// each), however many handshakes there are.
const certCheckInterval = 250 * time.Millisecond

// NewCertReloader loads the certificate and key in certFile and keyFile
// (PEM) and returns a reloader serving them. logger (slog.Default() when
// nil) receives failed reloads.
func NewCertReloader(certFile, keyFile string, logger *slog.Logger) (*CertReloader, error) {
	if logger == nil {
		logger = slog.Default()
	}
	c := &CertReloader{certFile: certFile, keyFile: keyFile, log: logger}
	st, err := c.stampNow()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	c.cert, c.stamp, c.tried, c.checked = &cert, st, st, time.Now()
	return c, nil
}

func (c *CertReloader) stampNow() (fileStamp, error) {
	ci, err := os.Stat(c.certFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("TLS certificate: %w", err)
	}
	ki, err := os.Stat(c.keyFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("TLS key: %w", err)
	}
	return fileStamp{certMod: ci.ModTime(), keyMod: ki.ModTime(), certSize: ci.Size(), keySize: ki.Size()}, nil
}

// GetCertificate returns the current certificate, first reading the files
// again if they changed; it is a tls.Config.GetCertificate.
func (c *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) < certCheckInterval {
		return c.cert, nil
	}
	c.checked = time.Now()
	st, err := c.stampNow()
	if err != nil || st == c.stamp || st == c.tried {
		return c.cert, nil
	}
	c.tried = st
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		c.log.Warn("reloading the TLS certificate failed; keeping the previous one",
			slog.String("cert", c.certFile), slog.String("key", c.keyFile), slog.Any("error", err))
		return c.cert, nil
	}
	c.cert, c.stamp = &cert, st
	c.log.Info("TLS certificate reloaded", slog.String("cert", c.certFile))
	return c.cert, nil
}

// TLSConfig returns a server TLS configuration (TLS 1.2 and later) that
// serves the reloader's certificate.
func (c *CertReloader) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.GetCertificate}
}
