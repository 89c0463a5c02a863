package httpapi

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Cross-site protection.
//
// A browser lets any web page send "simple" requests (a form's POST, a
// fetch in no-cors mode) to any address, the developer's loopback server
// included, and a DNS rebinding attack gives a page's own name the
// server's address, so that its scripts read the answers too. The API
// refuses both:
//
//   - the Host header must name the server: an IP literal, a name without
//     a dot (localhost, a container's service name), a name under
//     .localhost (which browsers resolve to loopback themselves), the host
//     of Config.BaseURL, or one of Config.AllowedHosts. A rebinding page's
//     requests carry the attacker's domain name and get 421.
//   - a state-changing request (any method but GET, HEAD and OPTIONS) that
//     carries an Origin header must come from the server's own origin or
//     one of Config.AllowedOrigins, else 403. Clients that are not
//     browsers send no Origin and are not affected.
//   - a POST body must be JSON: a Content-Type other than application/json
//     (or a +json type) gets 415, and so does a body without any
//     Content-Type on a route that reads one. A form cannot send
//     application/json without a CORS preflight, which only allowed
//     origins pass.
//
// Management URLs (Location, statusQueryGetUri, …) are built from
// Config.BaseURL, or else from the address the connection was accepted on,
// never from the Host header.

// hostPolicy decides which Host headers the server answers.
type hostPolicy struct {
	any   bool
	names map[string]bool // lower-case host names, without port
}

func newHostPolicy(baseURL string, allowed []string) (hostPolicy, error) {
	p := hostPolicy{names: map[string]bool{}}
	if baseURL != "" {
		u, err := url.Parse(baseURL)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return p, fmt.Errorf("base URL %q: want http(s)://host[:port][/path]", baseURL)
		}
		p.names[normalHost(u.Host)] = true
	}
	for _, h := range allowed {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
		case h == "*":
			p.any = true
		default:
			p.names[normalHost(h)] = true
		}
	}
	return p, nil
}

// normalHost lower-cases a Host value and drops its port, brackets and
// trailing dot.
func normalHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
	return strings.ToLower(h)
}

// allows reports whether a request with this Host header is one for the
// server. An IP literal cannot be a rebinding (the page's origin is then
// that address itself), browsers resolve localhost names themselves, and a
// name without a dot (localhost, a container's service name) is resolved
// by the local network's hosts file or search domains, which a web page's
// author does not control; a rebinding uses the page's own domain.
func (p hostPolicy) allows(host string) bool {
	if p.any || host == "" {
		return true
	}
	h := normalHost(host)
	if net.ParseIP(h) != nil || !strings.Contains(h, ".") || strings.HasSuffix(h, ".localhost") {
		return true
	}
	return p.names[h]
}

// originPolicy decides which browser origins may change state.
type originPolicy struct {
	any     bool
	origins map[string]bool // scheme://host[:port], lower case
}

func newOriginPolicy(baseURL string, allowed []string) (originPolicy, error) {
	p := originPolicy{origins: map[string]bool{}}
	if baseURL != "" {
		if u, err := url.Parse(baseURL); err == nil {
			p.origins[strings.ToLower(u.Scheme+"://"+u.Host)] = true
		}
	}
	for _, o := range allowed {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		switch {
		case o == "":
		case o == "*":
			p.any = true
		default:
			u, err := url.Parse(o)
			if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || (u.Path != "" && u.Path != "/") {
				return p, fmt.Errorf("allowed origin %q: want scheme://host[:port], e.g. https://app.example.com", o)
			}
			p.origins[strings.ToLower(u.Scheme+"://"+u.Host)] = true
		}
	}
	return p, nil
}

// listed reports whether origin is one the configuration names (or "*"):
// those get CORS headers.
func (p originPolicy) listed(origin string) bool {
	return origin != "" && origin != "null" && (p.any || p.origins[strings.ToLower(origin)])
}

// allows reports whether a state-changing request from origin (its Origin
// header) may proceed: no Origin (not a browser), the server's own origin,
// or a listed one.
func (p originPolicy) allows(origin string, r *http.Request) bool {
	if origin == "" || p.listed(origin) {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // "null" (a sandboxed page or a file) among them
	}
	return strings.EqualFold(u.Host, r.Host)
}

// stateChanging reports whether a request's method changes state.
func stateChanging(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// jsonContentType reports whether a Content-Type value is JSON.
func jsonContentType(v string) bool {
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// corsHeaders are the request headers a listed origin's pages may send.
const corsHeaders = "Content-Type, x-functions-key, Idempotency-Key, Last-Event-ID, x-ms-continuation-token"

// guard applies the cross-site rules to r before anything else (even
// authentication): it answers and returns false for a request to refuse,
// and answers CORS preflights of listed origins.
func (a *api) guard(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path == "/healthz" {
		return true
	}
	if !a.hosts.allows(r.Host) {
		writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf(
			"Host %q is not a name this server serves (IP addresses, names without a dot such as localhost, and the host of the public URL are): "+
				"set the public URL (jetflow --public-url) or the allowed hosts (--allowed-hosts)", r.Host))
		return false
	}
	origin := r.Header.Get("Origin")
	if a.origins.listed(origin) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", "Location, Retry-After, x-ms-continuation-token")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
			h.Set("Access-Control-Allow-Headers", corsHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return false
		}
	}
	if stateChanging(r.Method) && !a.origins.allows(origin, r) {
		writeError(w, http.StatusForbidden, fmt.Sprintf(
			"Origin %q may not change state on this server: list it in the allowed origins (jetflow --allowed-origins) to let its pages call the API", origin))
		return false
	}
	if r.Method == http.MethodPost {
		if ct := r.Header.Get("Content-Type"); ct != "" && !jsonContentType(ct) {
			writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf(
				"Content-Type %q: request bodies are JSON; send Content-Type application/json (or no body)", ct))
			return false
		}
	}
	return true
}

// origin returns the scheme, host and path prefix of the URLs in
// responses: Config.BaseURL, or the address the request's connection was
// accepted on (never its Host header, which the client chooses).
func (a *api) origin(r *http.Request) string {
	if a.cfg.BaseURL != "" {
		return a.cfg.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && addr != nil {
		if host, port, err := net.SplitHostPort(addr.String()); err == nil {
			if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
				host = "127.0.0.1"
			}
			return scheme + "://" + net.JoinHostPort(host, port)
		}
	}
	// No connection (a handler called directly): the Host header, which
	// guard has checked.
	return scheme + "://" + r.Host
}
