// Package browsertest drives jetflow's status page (package ui) in a real
// browser: Debian's chromium, through the Chrome DevTools Protocol
// (github.com/chromedp/chromedp), against a jetflow dev process built
// from this tree. It is a module of its own so that chromedp stays out of
// the engine's go.mod; it holds only its test.
//
// Run it from this directory:
//
//	go test ./...            # skipped when no chromium is found
//	go test ./... -update    # also writes docs/ui-list.png and docs/ui-instance.png
//
// JETFLOW_CHROMIUM names the browser binary when it is not chromium,
// chromium-browser, google-chrome or headless-shell on PATH.
package browsertest
