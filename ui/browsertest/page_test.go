package browsertest

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/jetflow/jetflow/httpapi"
	"github.com/jetflow/jetflow/internal/testkit"
)

var update = flag.Bool("update", false, "write the screenshots to docs/ui-list.png and docs/ui-instance.png")

const (
	adminKey  = "admin-key-for-the-page-0123"
	viewerKey = "viewer-key-for-the-page-0123"
	// wait bounds every wait for the page.
	wait = 20 * time.Second
)

// chromium returns the browser to drive, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("JETFLOW_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium found on PATH (Debian: apt-get install chromium; .ci/run installs it) and JETFLOW_CHROMIUM is unset")
	return ""
}

// dev is a running `jetflow dev`.
type dev struct {
	url    string // the status page, http://127.0.0.1:PORT/ui/
	origin string // http://127.0.0.1:PORT
	stderr *testkit.Buffer
}

// startDev builds jetflow from this tree and runs `jetflow dev` on free
// ports with an admin key and a read-only key ("viewer"), keys accepted
// only as headers; it returns once the banner names the status page.
func startDev(t *testing.T) *dev {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "jetflow")
	build := exec.Command("go", "build", "-o", bin, "./cmd/jetflow")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building jetflow: %v\n%s", err, out)
	}
	keys := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(keys, []byte(`{"keys": [{"name": "viewer", "key": "`+viewerKey+`", "scopes": ["read"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "dev", "--data", filepath.Join(dir, "data"), "--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0",
		"--api-key", adminKey, "--keys", keys, "--no-query-key")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &dev{stderr: &testkit.Buffer{}}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	found := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`status page\s+(http://\S+/ui/)`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case d.url = <-found:
	case <-exited:
		t.Fatalf("jetflow dev exited before its banner:\n%s", d.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("no status page in jetflow dev's banner within a minute:\n%s", d.stderr)
	}
	d.origin = strings.TrimSuffix(d.url, "/ui/")
	return d
}

// call sends a request to the API with the admin key (setting up what
// the page then shows) and returns the status code.
func (d *dev) call(t *testing.T, method, path, body string) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, d.origin+httpapi.BasePath+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-functions-key", adminKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// browser is one tab of a headless chromium, with what its console said.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

func newBrowser(t *testing.T, path string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("lang", "en-GB"))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	// Starting the browser; reduced motion keeps highlights out of the
	// screenshots (the page honours prefers-reduced-motion).
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}}})
		return err
	})); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// do runs actions, each within wait.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, wait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\npage:\n%s", what, err, b.pageText())
	}
}

// eval returns the value of a JavaScript expression.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, wait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// pageText is what the page shows, for failure messages.
func (b *browser) pageText() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// waitUntil polls a JavaScript condition in the page until it holds, for
// at most wait.
func (b *browser) waitUntil(what, cond string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, wait+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+cond+")",
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(wait)))
	if err != nil {
		b.t.Fatalf("waiting for %s (%s): %v\npage:\n%s", what, cond, err, b.pageText())
	}
}

// text returns the textContent of the element sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ''`, sel))
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	if !*update {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, wait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join("..", "..", "docs", name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("wrote %s (%d bytes)", path, len(png))
}

// problems returns what the console said that the page must never cause:
// uncaught exceptions and Content-Security-Policy violations.
func (b *browser) problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
			out = append(out, m.String())
		}
	}
	return out
}

// js quotes s as a JavaScript string.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

const (
	instanceView = `!document.querySelector('#instance-view').hidden`
	listView     = `!document.querySelector('#list-view').hidden`
)

// TestStatusPage drives the page as a person would: the key prompt,
// starting E1_HelloSequence and following its custom status live,
// ReserveTicket's event, live rows and counts in the list, an action the
// server refuses, a read-only key, and a phone-sized screen.
func TestStatusPage(t *testing.T) {
	path := chromium(t)
	d := startDev(t)
	b := newBrowser(t, path)

	// / redirects to the page, which asks for the key (the API wants one)
	// with the focus in the field; a wrong key is refused in the dialog.
	b.do("opening the page", chromedp.Navigate(d.origin+"/"))
	b.do("the key prompt", chromedp.WaitVisible(chromedp.CSS("#key-input")))
	if got := eval[string](b, `location.pathname`); got != "/ui/" {
		t.Fatalf("/ redirects to %q, want /ui/", got)
	}
	b.waitUntil("the focus in the key field", `document.activeElement && document.activeElement.id === 'key-input'`)
	b.do("a wrong key", chromedp.SendKeys(chromedp.CSS("#key-input"), "not-the-key-0123456789"+kb.Enter))
	b.waitUntil("the wrong key refused", `document.querySelector('#key-msg').textContent.includes('refused')`)
	eval[string](b, `document.querySelector('#key-input').value = ''`) // chromedp.SetValue cannot set ""
	b.do("the admin key", chromedp.SendKeys(chromedp.CSS("#key-input"), adminKey+kb.Enter))
	b.waitUntil("the list", listView+` && !document.querySelector('#key-dialog').open`)
	b.waitUntil("the key's name in the header", `document.querySelector('#who').textContent.includes('admin')`)
	b.waitUntil("the live connection", `document.querySelector('#conn').textContent === 'live'`)
	if got := eval[string](b, `sessionStorage.getItem('jetflow.key')`); got != adminKey {
		t.Fatalf("sessionStorage holds %q, want the key", got)
	}
	// Mark the document: a reload would lose the mark.
	eval[bool](b, `window.notReloaded = true`)

	ok := true // each part goes on from where the one before left the page
	ok = ok && t.Run("HelloSequence", func(t *testing.T) {
		b.t = t
		b.do("starting E1_HelloSequence",
			chromedp.Click(chromedp.CSS("#start-box summary")),
			chromedp.SetValue(chromedp.CSS("#start-form [name=name]"), "E1_HelloSequence"),
			chromedp.Click(chromedp.CSS("#start-form button[type=submit]")))
		b.waitUntil("the instance view", instanceView+` && location.hash.startsWith('#/i/')`)
		b.waitUntil("Tokyo, Seattle, then London", `[...document.querySelectorAll('#i-trail li')].map(li => li.textContent).join(' ') === 'Tokyo Seattle London'`)
		b.waitUntil("the custom status London", `document.querySelector('#i-custom').textContent === '"London"'`)
		b.waitUntil("the output", `document.querySelector('#i-output').textContent.includes('Hello London!') && document.querySelector('#i-badge').textContent === 'Completed'`)
		b.waitUntil("three activities in the timeline", `document.querySelectorAll('#i-timeline .tl-bar.k-activity.t-completed').length === 3`)
		b.waitUntil("the history", `[...document.querySelectorAll('#i-history td')].some(td => td.textContent === 'ExecutionCompleted')`)
		if !eval[bool](b, `window.notReloaded === true`) {
			t.Fatal("the page was reloaded")
		}
	})

	ok = ok && t.Run("ReserveTicket", func(t *testing.T) {
		b.t = t
		b.do("back to the list", chromedp.Click(chromedp.CSS(`#instance-view a[href="#/"]`)))
		b.waitUntil("the list", listView)
		b.do("a start with input that is not JSON",
			chromedp.SetValue(chromedp.CSS("#start-form [name=name]"), "ReserveTicket"),
			chromedp.SetValue(chromedp.CSS("#start-form [name=id]"), "ticket-alice"),
			chromedp.SetValue(chromedp.CSS("#start-form [name=input]"), `{alice`),
			chromedp.Click(chromedp.CSS("#start-form button[type=submit]")))
		b.waitUntil("the input refused in the page", `document.querySelector('#start-error').textContent.includes('not valid JSON')`)
		b.do("the start",
			chromedp.SetValue(chromedp.CSS("#start-form [name=input]"), `"alice"`),
			chromedp.Click(chromedp.CSS("#start-form button[type=submit]")))
		b.waitUntil("the instance view", instanceView+` && location.hash === '#/i/ticket-alice'`)
		b.waitUntil("the discount offer", `document.querySelector('#i-custom').textContent.includes('"discount"')`)
		b.waitUntil("the pending timer", `document.querySelector('#i-pending').textContent.includes('timer') && document.querySelector('#i-pending').textContent.includes('due')`)

		b.do("an event whose data is not JSON",
			chromedp.Click(chromedp.CSS("#raise-box summary")),
			chromedp.SetValue(chromedp.CSS("#raise-form [name=event]"), "BookingConfirmed"),
			chromedp.SetValue(chromedp.CSS("#raise-form [name=data]"), "tru"),
			chromedp.Click(chromedp.CSS("#raise-form button[type=submit]")))
		b.waitUntil("the data refused in the page", `document.querySelector('#raise-error').textContent.includes('not valid JSON')`)
		b.do("raising BookingConfirmed",
			chromedp.SetValue(chromedp.CSS("#raise-form [name=data]"), "true"),
			chromedp.Click(chromedp.CSS("#raise-form button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS("#confirm-ok")),
			chromedp.Click(chromedp.CSS("#confirm-ok")))
		b.waitUntil("the thank-you message", `document.querySelector('#i-custom').textContent.includes('Thank you for confirming your booking.')`)
		b.waitUntil("the output and the badge", `document.querySelector('#i-output').textContent === 'true' && document.querySelector('#i-badge').textContent === 'Completed'`)
		b.waitUntil("the event in the timeline", `document.querySelectorAll('#i-timeline .tl-bar.k-event').length === 1 && document.querySelectorAll('#i-timeline .tl-bar.k-timer').length === 1`)
		if !eval[bool](b, `window.notReloaded === true`) {
			t.Fatal("the page was reloaded")
		}

		b.screenshot("ui-instance.png")

		// An action the server refuses shows the server's error.
		b.do("resuming a completed instance", chromedp.Click(chromedp.CSS(`#i-actions [data-action=resume]`)),
			chromedp.WaitVisible(chromedp.CSS("#confirm-ok")), chromedp.Click(chromedp.CSS("#confirm-ok")))
		b.waitUntil("the server's 410", `document.querySelector('#i-msg').textContent.includes('410') && document.querySelector('#i-msg').textContent.includes('finished')`)
	})

	ok = ok && t.Run("List", func(t *testing.T) {
		b.t = t
		for _, s := range []struct{ path, body string }{
			{"/orchestrators/SetStatusTest/status-test", ""},
			{"/orchestrators/CityRecommender/city-2", "2"},
			{"/orchestrators/FanOutFanIn/fan-12", "12"},
			{"/orchestrators/Delay/delay-600", "600"},
		} {
			if code := d.call(t, http.MethodPost, s.path, s.body); code != http.StatusAccepted {
				t.Fatalf("POST %s: %d", s.path, code)
			}
		}
		b.do("back to the list", chromedp.Click(chromedp.CSS(`#instance-view a[href="#/"]`)))
		b.waitUntil("six rows", listView+` && document.querySelectorAll('#instances tbody tr').length === 6`)
		b.waitUntil("SetStatusTest waiting", `document.querySelector('#instances tr[data-id="status-test"]').textContent.includes('nextActions')`)

		// A row changes live: the instance completes while the list shows it.
		if code := d.call(t, http.MethodPost, "/instances/status-test/raiseEvent/Done", ""); code != http.StatusAccepted {
			t.Fatalf("raising Done: %d", code)
		}
		b.waitUntil("the row completed, live", `document.querySelector('#instances tr[data-id="status-test"] .badge').textContent === 'Completed'`)
		b.waitUntil("FanOutFanIn completed", `document.querySelector('#instances tr[data-id="fan-12"] .badge').textContent === 'Completed'`)
		b.waitUntil("the counts", `document.querySelector('#chips [data-status="Completed"] .count').textContent === '4' && document.querySelector('#chips [data-status="Running"] .count').textContent === '2' && document.querySelector('#chips [data-status=""] .count').textContent === '6'`)

		// A status chip filters through the list API.
		b.do("the Running chip", chromedp.Click(chromedp.CSS(`#chips [data-status="Running"]`)))
		b.waitUntil("the running instances only", `[...document.querySelectorAll('#instances tbody tr')].map(tr => tr.dataset.id).join(' ') === 'city-2 delay-600'`)
		b.do("all statuses again", chromedp.Click(chromedp.CSS(`#chips [data-status=""]`)))
		b.waitUntil("six rows", `document.querySelectorAll('#instances tbody tr').length === 6`)
		// A new instance appears without a reload.
		if code := d.call(t, http.MethodPost, "/orchestrators/CityRecommender/city-1", "1"); code != http.StatusAccepted {
			t.Fatalf("starting city-1: %d", code)
		}
		b.waitUntil("the new row, counted", `document.querySelector('#instances tr[data-id="city-1"]') !== null && document.querySelector('#chips [data-status=""] .count').textContent === '7'`)
		b.screenshot("ui-list.png")

		// The id prefix goes to the list API and the fleet watch; the name
		// is matched in the page; the counts follow both.
		rowIDs := `[...document.querySelectorAll('#instances tbody tr')].map(tr => tr.dataset.id).join(' ')`
		b.do("an id prefix", chromedp.SendKeys(chromedp.CSS(`#filters [name=prefix]`), "city"))
		b.waitUntil("the cities only", rowIDs+` === 'city-1 city-2' && document.querySelector('#chips [data-status=""] .count').textContent === '2'`)
		b.do("a name", chromedp.SendKeys(chromedp.CSS(`#filters [name=name]`), "delay"))
		b.waitUntil("nothing", rowIDs+` === '' && !document.querySelector('#list-empty').hidden && document.querySelector('#chips [data-status=""] .count').textContent === '0'`)
		b.do("clearing the filters", chromedp.Click(chromedp.CSS(`#filters button[type=reset]`)))
		b.waitUntil("every row again", `document.querySelectorAll('#instances tbody tr').length === 7 && document.querySelector('#chips [data-status=""] .count').textContent === '7'`)

		// Terminating from the page, with its confirmation and reason.
		b.do("opening delay-600", chromedp.Click(chromedp.CSS(`#instances tr[data-id="delay-600"] a`)))
		b.waitUntil("its pending timer", instanceView+` && document.querySelector('#i-pending').textContent.includes('timer')`)
		b.do("terminating", chromedp.Click(chromedp.CSS(`#i-actions [data-action=terminate]`)),
			chromedp.WaitVisible(chromedp.CSS("#confirm-reason")),
			chromedp.SendKeys(chromedp.CSS("#confirm-reason"), "not needed"+kb.Enter))
		b.waitUntil("Terminated", `document.querySelector('#i-badge').textContent === 'Terminated' && document.querySelector('#i-output').textContent === '"not needed"'`)
		if !eval[bool](b, `window.notReloaded === true`) {
			t.Fatal("the page was reloaded")
		}
	})

	ok = ok && t.Run("ReadOnlyKey", func(t *testing.T) {
		b.t = t
		b.do("forgetting the key", chromedp.Click(chromedp.CSS("#forget-key")))
		b.do("the key prompt", chromedp.WaitVisible(chromedp.CSS("#key-input")))
		b.do("the viewer key", chromedp.SendKeys(chromedp.CSS("#key-input"), viewerKey+kb.Enter))
		// The reload kept the tab's place: delay-600's view.
		b.waitUntil("the instance, without actions", instanceView+` && document.querySelector('#who').textContent.includes('read-only') && document.querySelector('#i-badge').textContent === 'Terminated' && document.querySelector('#i-actions').hidden && document.querySelector('#raise-box').hidden`)
		b.do("back to the list", chromedp.Click(chromedp.CSS(`#instance-view a[href="#/"]`)))
		b.waitUntil("the list", listView+` && document.querySelectorAll('#instances tbody tr').length === 7`)
		if eval[bool](b, `!document.querySelector('#start-box').hidden`) {
			t.Fatal("a read-only key is offered the start form")
		}
	})

	ok = ok && t.Run("Phone", func(t *testing.T) {
		b.t = t
		b.do("a phone's screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
		b.waitUntil("the instance view fits", `document.documentElement.scrollWidth <= window.innerWidth`)
		eval[string](b, `location.hash = '#/'`)
		b.waitUntil("the list fits", listView+` && document.querySelectorAll('#instances tbody tr').length === 7 && document.documentElement.scrollWidth <= window.innerWidth`)
		b.do("a desktop's screen again", chromedp.EmulateReset())
	})

	if !ok {
		return
	}
	if p := b.problems(); len(p) > 0 {
		t.Fatalf("the console reported:\n%s", strings.Join(p, "\n"))
	}
}
