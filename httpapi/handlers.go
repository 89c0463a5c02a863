package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
)

// startResponse is the body of a successful start: the management URLs of
// the new instance, as Durable Functions' CreateCheckStatusResponse writes
// them.
type startResponse struct {
	ID                    string `json:"id"`
	StatusQueryGetURI     string `json:"statusQueryGetUri"`
	SendEventPostURI      string `json:"sendEventPostUri"`
	TerminatePostURI      string `json:"terminatePostUri"`
	PurgeHistoryDeleteURI string `json:"purgeHistoryDeleteUri"`
	RewindPostURI         string `json:"rewindPostUri"`
	RestartPostURI        string `json:"restartPostUri"`
	SuspendPostURI        string `json:"suspendPostUri"`
	ResumePostURI         string `json:"resumePostUri"`
}

// maxStartTimeout bounds the ?timeout= of a start, in seconds.
const maxStartTimeout = 3600

// start handles POST /orchestrators/{name}[/{instanceId}][?timeout=SECONDS].
// With a timeout it waits (a status watch, not polling) up to that long
// for the instance to finish, and then answers 200 with its final status.
// An Idempotency-Key header names the request (client.WithRequestID): the
// same start again, with the same id and key, answers with the run the
// first made instead of starting another, even once it has finished.
func (a *api) start(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	id := r.PathValue("instanceId")
	var timeout time.Duration
	if q := r.URL.Query(); q.Has("timeout") {
		n, err := strconv.Atoi(q.Get("timeout"))
		if err != nil || n < 0 || n > maxStartTimeout {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("timeout %q: want whole seconds from 0 to %d", q.Get("timeout"), maxStartTimeout))
			return
		}
		timeout = time.Duration(n) * time.Second
	}
	body, ok := a.readJSONBody(w, r, "input")
	if !ok {
		return
	}
	opts := []client.StartOption{client.WithRawInput(body)}
	if id != "" {
		opts = append(opts, client.WithInstanceID(id))
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		opts = append(opts, client.WithRequestID(key))
	}
	id, err := a.c.StartOrchestration(r.Context(), name, opts...)
	if err != nil {
		a.writeClientError(w, r, err)
		return
	}
	if timeout > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		st, err := a.c.WaitForCompletion(ctx, id)
		cancel()
		if err == nil {
			writeJSON(w, http.StatusOK, st)
			return
		}
	}
	a.writeStarted(w, r, id)
}

// writeStarted answers 202 with the management URLs of a new instance, as
// Durable Functions' CreateCheckStatusResponse does. When the request
// authenticated with ?code=, every URL carries the same code (as Durable
// Functions puts its key there), so that a client following them is let
// in; a key sent as a header is never echoed.
func (a *api) writeStarted(w http.ResponseWriter, r *http.Request, id string) {
	inst := a.instanceURL(r, id)
	code := ""
	if key, ok := r.Context().Value(queryCodeKey{}).(string); ok && key != "" {
		code = "code=" + url.QueryEscape(key)
	}
	// with adds the code to a URL whose query is q ("" for none).
	with := func(path, q string) string {
		switch {
		case code == "" && q == "":
			return path
		case code == "":
			return path + "?" + q
		case q == "":
			return path + "?" + code
		}
		return path + "?" + q + "&" + code
	}
	resp := startResponse{
		ID:                    id,
		StatusQueryGetURI:     with(inst, ""),
		SendEventPostURI:      with(inst+"/raiseEvent/{eventName}", ""),
		TerminatePostURI:      with(inst+"/terminate", "reason={text}"),
		PurgeHistoryDeleteURI: with(inst, ""),
		RewindPostURI:         with(inst+"/rewind", "reason={text}"),
		RestartPostURI:        with(inst+"/restart", ""),
		SuspendPostURI:        with(inst+"/suspend", "reason={text}"),
		ResumePostURI:         with(inst+"/resume", "reason={text}"),
	}
	w.Header().Set("Location", resp.StatusQueryGetURI)
	w.Header().Set("Retry-After", "1")
	writeJSON(w, http.StatusAccepted, resp)
}

// restart handles POST /instances/{instanceId}/restart
// [?restartWithNewInstanceId=true|false] (default true): 202 with the new
// run's URLs; 404 unknown; 410 while the instance has not finished.
func (a *api) restart(w http.ResponseWriter, r *http.Request) {
	newID := true
	if v := r.URL.Query().Get("restartWithNewInstanceId"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("restartWithNewInstanceId=%q: want true or false", v))
			return
		}
		newID = b
	}
	var opts []client.RestartOption
	if !newID {
		opts = append(opts, client.KeepInstanceID())
	}
	id, err := a.c.Restart(r.Context(), r.PathValue("instanceId"), opts...)
	if err != nil {
		a.writeClientError(w, r, fmt.Errorf("restarting: %w", err))
		return
	}
	a.writeStarted(w, r, id)
}

// status handles GET /instances/{instanceId}, with the Durable Functions
// query options showInput (default true), showHistory, showHistoryOutput
// and returnInternalServerErrorOnFailure.
func (a *api) status(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("instanceId")
	var opts struct{ input, history, historyOutput, failureIs500 bool }
	for _, o := range []struct {
		name string
		dst  *bool
		def  bool
	}{
		{"showInput", &opts.input, true},
		{"showHistory", &opts.history, false},
		{"showHistoryOutput", &opts.historyOutput, false},
		{"returnInternalServerErrorOnFailure", &opts.failureIs500, false},
	} {
		*o.dst = o.def
		if v := r.URL.Query().Get(o.name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("%s=%q: want true or false", o.name, v))
				return
			}
			*o.dst = b
		}
	}
	st, err := a.c.GetStatus(r.Context(), id)
	if err != nil {
		a.writeClientError(w, r, err)
		return
	}
	if !opts.input {
		st.Input = nil
	}
	var v any = st
	if opts.history {
		var hopts []client.HistoryOption
		if opts.historyOutput {
			hopts = append(hopts, client.WithOutputs())
		}
		events, err := a.c.GetHistory(r.Context(), id, hopts...)
		if err != nil {
			a.writeClientError(w, r, err)
			return
		}
		v = StatusWithHistory{Status: st, History: events}
	}
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding status: "+err.Error())
		return
	}
	code := http.StatusOK
	switch {
	case !st.Finished():
		code = http.StatusAccepted
		w.Header().Set("Location", a.origin(r)+r.URL.RequestURI())
		w.Header().Set("Retry-After", "1")
	case opts.failureIs500 && st.RuntimeStatus == jetflow.StatusFailed:
		code = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// raiseEvent handles POST /instances/{instanceId}/raiseEvent/{eventName}.
func (a *api) raiseEvent(w http.ResponseWriter, r *http.Request) {
	id, event := r.PathValue("instanceId"), r.PathValue("eventName")
	if err := jetflow.ValidateInstanceID(id); err != nil {
		a.writeClientError(w, r, err)
		return
	}
	body, ok := a.readJSONBody(w, r, "event data")
	if !ok {
		return
	}
	if len(body) == 0 {
		body = json.RawMessage("null") // as Durable Functions does for an empty body
	}
	if err := a.c.RaiseEvent(r.Context(), id, event, body); err != nil {
		a.writeClientError(w, r, fmt.Errorf("raising event %q: %w", event, err))
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// control returns the handler of POST /instances/{instanceId}/<verb>?reason=…
// (terminate, suspend, resume): 202, or 404 for an unknown instance and 410
// for a finished one. Without a reason, the reason is null.
func (a *api) control(doing string, send func(context.Context, string, any) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := send(r.Context(), r.PathValue("instanceId"), reason(r)); err != nil {
			a.writeClientError(w, r, fmt.Errorf("%s: %w", doing, err))
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}
}

// rewind handles POST /instances/{instanceId}/rewind?reason=: 202, 404
// unknown, 410 unless Failed. Its errors are plain text: the Durable
// Functions JavaScript client makes the body of a failed rewind its error
// message, and would show a JSON object as "[object Object]".
func (a *api) rewind(w http.ResponseWriter, r *http.Request) {
	if err := a.c.Rewind(r.Context(), r.PathValue("instanceId"), reason(r)); err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(a.errorCode(w, r, err))
		_, _ = io.WriteString(w, "rewinding: "+err.Error())
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// reason is the ?reason= of a control request; nil without one.
func reason(r *http.Request) any {
	if q := r.URL.Query(); q.Has("reason") {
		return q.Get("reason")
	}
	return nil
}

// healthz handles GET /healthz.
func (a *api) healthz(w http.ResponseWriter, _ *http.Request) {
	if a.cfg.Ready != nil {
		if err := a.cfg.Ready(); err != nil {
			writeError(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok\n")
}

// readJSONBody reads a request body that must be empty or JSON, and
// returns it compacted (nil when empty). On failure it writes the error
// response and returns false.
func (a *api) readJSONBody(w http.ResponseWriter, r *http.Request, what string) (json.RawMessage, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("request body is over the limit of %d bytes", a.cfg.MaxBodyBytes))
		return nil, false
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The server's ReadTimeout ended before the body was in: a client
		// that sends too slowly does not hold the connection.
		writeError(w, http.StatusRequestTimeout, "request body not received within the server's read timeout")
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, "reading request body: "+err.Error())
		return nil, false
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, true
	}
	if r.Header.Get("Content-Type") == "" {
		// guard lets a POST without Content-Type through for the routes
		// that take no body; a body needs one (a page can send a body
		// without Content-Type across sites, but not application/json).
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf(
			"request body (the %s) has no Content-Type: send it with Content-Type application/json", what))
		return nil, false
	}
	if !utf8.Valid(b) {
		i := invalidUTF8At(b)
		writeError(w, http.StatusBadRequest, fmt.Sprintf(
			"request body (the %s) is not valid JSON: invalid UTF-8 at byte %d (JSON text is UTF-8)", what, i))
		return nil, false
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("request body (the %s) is not valid JSON: %v", what, err))
		return nil, false
	}
	return buf.Bytes(), true
}

// invalidUTF8At returns the offset of the first byte of b that is not
// part of a valid UTF-8 sequence.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// instanceURL returns the status URL of an instance.
func (a *api) instanceURL(r *http.Request, id string) string {
	return a.origin(r) + BasePath + "/instances/" + url.PathEscape(id)
}

// writeClientError answers with the status code that err's sentinel calls
// for; unexpected errors are logged and answered with 500.
func (a *api) writeClientError(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, a.errorCode(w, r, err), err.Error())
}

// errorCode returns the status code that err's sentinel calls for (500
// for unexpected errors, which it logs), and sets the headers that go
// with it.
func (a *api) errorCode(w http.ResponseWriter, r *http.Request, err error) int {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, jetflow.ErrUnknownOrchestrator),
		errors.Is(err, jetflow.ErrInvalidInstanceID),
		errors.Is(err, jetflow.ErrInvalidName),
		errors.Is(err, jetflow.ErrInvalidInput),
		errors.Is(err, jetflow.ErrInvalidOption):
		code = http.StatusBadRequest
	case errors.Is(err, jetflow.ErrInstanceNotFound):
		code = http.StatusNotFound
	case errors.Is(err, jetflow.ErrInstanceExists):
		code = http.StatusConflict
	case errors.Is(err, jetflow.ErrInstanceFinished), errors.Is(err, jetflow.ErrInstanceNotFinished),
		errors.Is(err, jetflow.ErrInstanceNotFailed):
		code = http.StatusGone
	case errors.Is(err, jetflow.ErrPayloadTooLarge):
		code = http.StatusRequestEntityTooLarge
	case unavailable(err):
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	}
	if code >= 500 {
		a.log.ErrorContext(r.Context(), "request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
	}
	return code
}

// unavailable reports whether err means that NATS could not be reached or
// did not answer in time (so a write's outcome is unknown): worth retrying
// later, and safe to.
func unavailable(err error) bool {
	for _, target := range []error{jetflow.ErrOutcomeUnknown, jetflow.ErrUnavailable, context.DeadlineExceeded} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// writeJSON writes v as JSON with the given status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// writeError writes {"error": msg} with the given status code.
func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
