package ui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/jetflow/jetflow/ui"
	"github.com/stretchr/testify/require"
)

func get(t *testing.T, method, path string, header map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	ui.Handler().ServeHTTP(w, req)
	return w.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestAssets: the page is the files it names, and nothing else.
func TestAssets(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"app.js", "favicon.svg", "index.html", "style.css"}, ui.Assets())
	index := body(t, get(t, http.MethodGet, "/ui/", nil))
	var refs []string
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"#][^"]*)"`).FindAllStringSubmatch(index, -1) {
		refs = append(refs, m[1])
	}
	require.ElementsMatch(t, []string{"favicon.svg", "style.css", "app.js"}, refs, "index.html loads the other files, by relative URLs")
}

// TestHeaders: every answer carries the security headers; files have
// their types and ETags.
func TestHeaders(t *testing.T) {
	t.Parallel()
	for path, ctype := range map[string]string{
		"/ui/":            "text/html; charset=utf-8",
		"/ui/index.html":  "text/html; charset=utf-8",
		"/ui/app.js":      "text/javascript; charset=utf-8",
		"/ui/style.css":   "text/css; charset=utf-8",
		"/ui/favicon.svg": "image/svg+xml",
		"/ui/nothing.js":  "text/plain; charset=utf-8",
	} {
		resp := get(t, http.MethodGet, path, nil)
		want := http.StatusOK
		if strings.Contains(path, "nothing") {
			want = http.StatusNotFound
		}
		require.Equal(t, want, resp.StatusCode, path)
		h := resp.Header
		require.Equal(t, ctype, h.Get("Content-Type"), path)
		require.Equal(t, ui.ContentSecurityPolicy, h.Get("Content-Security-Policy"), path)
		require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), path)
		require.Equal(t, "DENY", h.Get("X-Frame-Options"), path)
		require.Equal(t, "no-referrer", h.Get("Referrer-Policy"), path)
		if want == http.StatusOK {
			require.Equal(t, "no-cache", h.Get("Cache-Control"), path)
			require.NotEmpty(t, h.Get("ETag"), path)
		}
	}
	csp := ui.ContentSecurityPolicy
	for _, directive := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
		require.Contains(t, csp, directive)
	}
	require.NotContains(t, csp, "unsafe-")
}

// TestConditionalAndMethods: a known ETag gets 304; HEAD has no body;
// other methods get 405.
func TestConditionalAndMethods(t *testing.T) {
	t.Parallel()
	first := get(t, http.MethodGet, "/ui/app.js", nil)
	etag := first.Header.Get("ETag")
	again := get(t, http.MethodGet, "/ui/app.js", map[string]string{"If-None-Match": etag})
	require.Equal(t, http.StatusNotModified, again.StatusCode)
	head := get(t, http.MethodHead, "/ui/", nil)
	require.Equal(t, http.StatusOK, head.StatusCode)
	require.Empty(t, body(t, head))
	post := get(t, http.MethodPost, "/ui/", nil)
	require.Equal(t, http.StatusMethodNotAllowed, post.StatusCode)
	require.Equal(t, "GET, HEAD", post.Header.Get("Allow"))
	require.Equal(t, http.StatusNotFound, get(t, http.MethodGet, "/elsewhere", nil).StatusCode)
}

// TestNoInlineCodeOrExternalResources: the page runs under its CSP (no
// inline scripts, styles or handlers) and loads nothing from elsewhere;
// the script builds the DOM with text nodes, never HTML from data.
func TestNoInlineCodeOrExternalResources(t *testing.T) {
	t.Parallel()
	index := body(t, get(t, http.MethodGet, "/ui/", nil))
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`),
		regexp.MustCompile(`javascript:`),
	} {
		require.NotRegexp(t, bad, index)
	}
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(index, -1) {
		require.Contains(t, m, `src="`, "every script is a file")
	}
	for _, name := range ui.Assets() {
		text := body(t, get(t, http.MethodGet, "/ui/"+name, nil))
		for _, u := range regexp.MustCompile(`(?i)(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s"')]*`).FindAllString(text, -1) {
			require.Equal(t, "http://www.w3.org/2000/svg", u, "%s refers to another site", name)
		}
	}
	app := body(t, get(t, http.MethodGet, "/ui/app.js", nil))
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		require.NotContains(t, app, bad)
	}
}
