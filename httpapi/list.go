package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
)

// continuationHeader carries the continuation token of instance listings,
// in responses (more pages follow) and requests (the next page), as in
// Durable Functions.
const continuationHeader = "x-ms-continuation-token"

// listInstances handles GET /instances and GET /instances/: one page of
// the instances selected by the query parameters createdTimeFrom,
// createdTimeTo, runtimeStatus (comma-separated), instanceIdPrefix,
// showInput (default true) and top (page size, default 100, at most
// 1000), as a JSON array of status objects, in instance id order. When
// more pages follow, the x-ms-continuation-token response header holds
// the token to send, as the same request header, for the next page.
func (a *api) listInstances(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lq, err := filterQuery(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	lq.InstanceIDPrefix, lq.ContinuationToken = q.Get("instanceIdPrefix"), r.Header.Get(continuationHeader)
	if v := q.Get("showInput"); v != "" {
		show, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("showInput=%q: want true or false", v))
			return
		}
		lq.OmitInput = !show
	}
	if v := q.Get("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > client.MaxPageSize {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("top=%q: want a page size from 1 to %d (default %d)", v, client.MaxPageSize, client.DefaultPageSize))
			return
		}
		lq.Top = n
	}
	if lq.InstanceIDPrefix != "" {
		if err := jetflow.ValidateInstanceID(lq.InstanceIDPrefix); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("instanceIdPrefix=%q: %v", lq.InstanceIDPrefix, err))
			return
		}
	}
	page, err := a.c.ListInstances(r.Context(), lq)
	if errors.Is(err, client.ErrInvalidContinuationToken) {
		writeError(w, http.StatusBadRequest, continuationHeader+" header: "+err.Error())
		return
	}
	if err != nil {
		a.writeClientError(w, r, err)
		return
	}
	if page.ContinuationToken != "" {
		w.Header().Set(continuationHeader, page.ContinuationToken)
	}
	if page.Instances == nil {
		page.Instances = []jetflow.Status{} // [], not null
	}
	writeJSON(w, http.StatusOK, page.Instances)
}

// filterQuery reads the filters that listing and bulk purge share:
// createdTimeFrom, createdTimeTo and runtimeStatus.
func filterQuery(q url.Values) (client.Query, error) {
	var lq client.Query
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"createdTimeFrom", &lq.CreatedTimeFrom}, {"createdTimeTo", &lq.CreatedTimeTo}} {
		if v := q.Get(p.name); v != "" {
			t, err := ParseTime(v)
			if err != nil {
				return lq, fmt.Errorf("%s: %w", p.name, err)
			}
			*p.dst = t
		}
	}
	var err error
	lq.RuntimeStatus, err = parseRuntimeStatuses(q["runtimeStatus"])
	return lq, err
}

// ParseTime reads a time bound of a list or purge query as the HTTP API
// and the CLI accept it: RFC 3339 (the status JSON's yyyy-MM-ddTHH:mm:ssZ, with or
// without fractional seconds, or with an offset), or yyyy-MM-ddTHH:mm:ss
// and yyyy-MM-dd, taken as UTC.
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: want yyyy-MM-ddTHH:mm:ssZ (RFC 3339) or yyyy-MM-dd", s)
}
