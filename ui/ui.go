// Package ui is the live status page of a jetflow hub: a page embedded in
// the binary, for people who are not developers, that lists instances with
// filters and paging, follows them live, shows one instance's custom
// status, progress, history, timeline and pending work, and offers the
// actions of the HTTP API (start, raise event, terminate, suspend,
// resume, restart, rewind, purge).
//
// The page is plain HTML, CSS and JavaScript (no build step), served from
// the files embedded here; it fetches nothing from other sites. It calls
// the HTTP API of the same origin (package httpapi), which mounts Handler
// at /ui/ when httpapi.Config.UI is set (jetflow dev and jetflow server do
// unless --no-ui): the list API for pages, the firehose watch for live
// rows, the instance's watch for its status, GET /whoami for the key's
// scopes and GET /instances/{id}/tasks for its pending work. Server-sent
// events are read with fetch and a ReadableStream, so the API key goes in
// the x-functions-key header (asked once, kept in the tab's
// sessionStorage), which works with --no-query-key.
//
// Every answer carries a strict Content-Security-Policy (scripts, styles
// and connections from the page's own origin only, no inline code, no
// framing), X-Content-Type-Options: nosniff, X-Frame-Options: DENY and
// Referrer-Policy: no-referrer.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// ContentSecurityPolicy is the Content-Security-Policy of every answer of
// Handler: everything from the page's own origin, no inline script or
// style, no plugins, no framing, no form posts elsewhere.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// file is one embedded file, ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// files holds the embedded files by their path under /ui/ ("" is
// index.html).
var files = loadFiles()

func loadFiles() map[string]file {
	out := map[string]file{}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		out[strings.TrimPrefix(p, "assets/")] = file{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("ui: reading the embedded files: " + err.Error()) // cannot happen: they are compiled in
	}
	return out
}

// Assets returns the paths of the page's files under /ui/, sorted
// (index.html is also served at /ui/ itself).
func Assets() []string {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Handler returns the handler of the page, for requests whose path starts
// with /ui/ (httpapi.Config.UI): /ui/ is index.html, /ui/NAME one of
// Assets; anything else under /ui/ gets 404. It answers GET and HEAD (405
// otherwise), with an ETag per file (If-None-Match gets 304) and
// Cache-Control: no-cache, so that a new binary's page is picked up at
// once. It is safe for concurrent use.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method "+r.Method+" not allowed: the page's files are read with GET", http.StatusMethodNotAllowed)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, "/ui/")
	if name == "" {
		name = "index.html"
	}
	f, found := files[name]
	if !ok || !found {
		http.Error(w, "no such file of the status page: "+r.URL.Path+" (the page is at /ui/)", http.StatusNotFound)
		return
	}
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
