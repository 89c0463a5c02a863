package main

import (
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows how far a long verb has got on stderr: a bar when the
// total is known, else a spinner with the count so far. It is drawn with
// carriage returns on one line, which it clears when done. A nil
// *progress draws nothing: every verb makes one only when stderr is a
// terminal, so piped or redirected output never holds bar characters or
// escapes.
type progress struct {
	bar     *progressbar.ProgressBar
	spinner bool // the total is unknown
	total   int  // of a bar
}

// isTerminal reports whether w is a terminal (a file descriptor that is
// one; not a buffer or a pipe).
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressThrottle is the shortest time between two drawings of a bar.
const progressThrottle = 100 * time.Millisecond

// newProgress returns a bar of total steps on w, or a spinner when total
// is negative, described by desc ("purging"); nil (drawing nothing) when
// tty is false or total is 0. Steps are instances.
func newProgress(w io.Writer, tty bool, total int, desc string) *progress {
	if !tty {
		return nil
	}
	return drawProgress(w, total, desc, progressThrottle)
}

// drawProgress is newProgress on a terminal, drawing at most once per
// throttle.
func drawProgress(w io.Writer, total int, desc string, throttle time.Duration) *progress {
	if total == 0 {
		return nil // a bar that is full from the start, and that Clear would not clear
	}
	p := &progress{spinner: total < 0, total: total}
	max := int64(total)
	if p.spinner {
		max = -1
	}
	p.bar = progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetItsString("instances"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionThrottle(throttle),
		// Drawn by set alone, on the caller's goroutine: no goroutine of
		// the bar's own writes between the verb's writes, or outlives it.
		progressbar.OptionSetSpinnerChangeInterval(0),
		progressbar.OptionShowTotalBytes(!p.spinner), // a spinner's count has no "/-"
		progressbar.OptionSetRenderBlankState(true),
	)
	return p
}

// set moves the bar to n steps done; a bar's total grows to n if n is
// more.
func (p *progress) set(n int) {
	if p == nil {
		return
	}
	if !p.spinner && n > p.total {
		p.total = n
		p.bar.ChangeMax(n)
	}
	_ = p.bar.Set(n) // it fails only for a total of 0, which it then does not draw
}

// done clears the bar's line, for good. It is called before anything
// else is written, on stdout or stderr.
func (p *progress) done() {
	if p == nil {
		return
	}
	_ = p.bar.Clear()
	_ = p.bar.Exit()
}
