package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/httpapi"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/stretchr/testify/require"
)

const tokenHeader = "x-ms-continuation-token"

var listCreated = time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)

// putListStatuses writes n statuses h-00… straight to the status bucket:
// every fourth Failed, the others Completed, created a minute apart.
func putListStatuses(t *testing.T, store *storage.Store, n int) {
	t.Helper()
	outs := make([]storage.Outgoing, n)
	for i := range n {
		st := &jetflow.Status{Name: "Listed", InstanceID: fmt.Sprintf("h-%02d", i), RuntimeStatus: jetflow.StatusCompleted,
			Input: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), Output: json.RawMessage(`"ok"`),
			CreatedTime:     jetflow.Time{Time: listCreated.Add(time.Duration(i) * time.Minute)},
			LastUpdatedTime: jetflow.Time{Time: listCreated.Add(time.Duration(i) * time.Minute)}}
		if i%4 == 0 {
			st.RuntimeStatus = jetflow.StatusFailed
		}
		o, err := store.StatusWrite(st.InstanceID, st, 0)
		require.NoError(t, err)
		outs[i] = o
	}
	require.NoError(t, storage.FirstError(store.Publish(t.Context(), outs...)))
}

// list sends GET path with an optional continuation token and decodes the
// page.
func (b *testBundle) list(t *testing.T, path, token string) (response, []jetflow.Status) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.srv.URL+path, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set(tokenHeader, token)
	}
	resp, err := b.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var r response
	r.code, r.header = resp.StatusCode, resp.Header
	r.body, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.code, "body: %s", r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	var sts []jetflow.Status
	require.NoError(t, json.Unmarshal(r.body, &sts))
	require.NotNil(t, sts, "an array, never null: %s", r.body)
	return r, sts
}

func ids(sts []jetflow.Status) []string {
	out := make([]string, len(sts))
	for i, st := range sts {
		out[i] = st.InstanceID
	}
	return out
}

func TestListInstances(t *testing.T) {
	t.Parallel()
	b := setup(t)
	putListStatuses(t, b.e.Storage, 25)
	instances := base + "/instances"

	t.Run("pages", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{instances + "?top=10", instances + "/?top=10"} {
			var got []string
			token := ""
			for page := 1; ; page++ {
				r, sts := b.list(t, path, token)
				got = append(got, ids(sts)...)
				token = r.header.Get(tokenHeader)
				if page < 3 {
					require.Len(t, sts, 10, "%s page %d", path, page)
					require.NotEmpty(t, token, "%s page %d: more follow", path, page)
					continue
				}
				require.Len(t, sts, 5, "%s: the last page", path)
				_, has := r.header[http.CanonicalHeaderKey(tokenHeader)]
				require.False(t, has, "%s: no token on the last page", path)
				break
			}
			want := make([]string, 25)
			for i := range want {
				want[i] = fmt.Sprintf("h-%02d", i)
			}
			require.Equal(t, want, got, "%s: every instance once, in id order", path)
		}
		// The default page size holds them all.
		r, sts := b.list(t, instances, "")
		require.Len(t, sts, 25)
		require.Empty(t, r.header.Get(tokenHeader))
	})

	t.Run("the shape of GET /instances/{id}", func(t *testing.T) {
		t.Parallel()
		one := b.do(t, http.MethodGet, statusPath("h-07"), "")
		require.Equal(t, http.StatusOK, one.code)
		r, sts := b.list(t, instances+"?instanceIdPrefix=h-07", "")
		require.Len(t, sts, 1)
		var elems []json.RawMessage
		require.NoError(t, json.Unmarshal(r.body, &elems))
		require.JSONEq(t, string(one.body), string(elems[0]))

		r, sts = b.list(t, instances+"?instanceIdPrefix=h-07&showInput=false", "")
		require.Len(t, sts, 1)
		require.Contains(t, string(r.body), `"input":null`)
		require.Equal(t, `"ok"`, string(sts[0].Output))
		_, sts = b.list(t, instances+"?instanceIdPrefix=h-07&showInput=true", "")
		require.JSONEq(t, `{"i":7}`, string(sts[0].Input))
	})

	t.Run("filters", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			query string
			want  []string
		}{
			{"runtimeStatus=failed", []string{"h-00", "h-04", "h-08", "h-12", "h-16", "h-20", "h-24"}},
			{"runtimeStatus=Failed,COMPLETED", nil}, // all 25
			{"runtimeStatus=Running", []string{}},
			{"instanceIdPrefix=h-1", []string{"h-10", "h-11", "h-12", "h-13", "h-14", "h-15", "h-16", "h-17", "h-18", "h-19"}},
			{"createdTimeFrom=2025-06-01T08:20:00Z", []string{"h-20", "h-21", "h-22", "h-23", "h-24"}},
			{"createdTimeTo=2025-06-01T10:02:00%2B02:00", []string{"h-00", "h-01", "h-02"}}, // RFC 3339 with an offset
			{"createdTimeFrom=2025-06-01T08:05:00.5Z&createdTimeTo=2025-06-01T08:09:00", []string{"h-06", "h-07", "h-08", "h-09"}},
			{"createdTimeFrom=2025-06-02", []string{}},
			{"runtimeStatus=Failed&instanceIdPrefix=h-2&createdTimeTo=2025-06-01T08:22:00Z", []string{"h-20"}},
		} {
			_, sts := b.list(t, instances+"?"+tt.query, "")
			if tt.want == nil {
				require.Len(t, sts, 25, tt.query)
				continue
			}
			require.Equal(t, tt.want, ids(sts), tt.query)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			query    string
			contains string
		}{
			{"top=0", "top"},
			{"top=-3", "top"},
			{"top=1001", "top"},
			{"top=ten", "top"},
			{"runtimeStatus=Sleeping", "runtimeStatus"},
			{"createdTimeFrom=yesterday", "createdTimeFrom"},
			{"createdTimeTo=2025-13-01", "createdTimeTo"},
			{"showInput=maybe", "showInput"},
			{"instanceIdPrefix=" + url.QueryEscape("a/b"), "instanceIdPrefix"},
		} {
			requireJSONError(t, b.do(t, http.MethodGet, instances+"?"+tt.query, ""), http.StatusBadRequest, tt.contains)
		}
		req, err := http.NewRequest(http.MethodGet, b.srv.URL+instances, nil)
		require.NoError(t, err)
		req.Header.Set(tokenHeader, "bogus!")
		resp, err := b.srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body struct {
			Error string `json:"error"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Contains(t, body.Error, tokenHeader)
		require.Contains(t, body.Error, `"bogus!"`)
	})

	t.Run("routes", func(t *testing.T) {
		t.Parallel()
		r := b.do(t, http.MethodPost, instances, "")
		requireJSONError(t, r, http.StatusMethodNotAllowed, "POST")
		require.Contains(t, r.header.Get("Allow"), http.MethodGet)
		requireJSONError(t, b.do(t, http.MethodGet, instances+"/h-01/nothing/here", ""), http.StatusNotFound)
	})
}

// TestListReadYourWrites starts instances over HTTP and lists each at
// once.
func TestListReadYourWrites(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 5 {
		id := b.start(t, "SetStatusTest", fmt.Sprintf("ryw-%d", i), "")
		_, sts := b.list(t, base+"/instances?instanceIdPrefix="+id, "")
		require.Equal(t, []string{id}, ids(sts))
	}
	_, sts := b.list(t, base+"/instances/?instanceIdPrefix=ryw-", "")
	require.Len(t, sts, 5)
}

func TestListAPIKey(t *testing.T) {
	t.Parallel()
	b := setupWith(t, httpapi.Config{APIKey: "s3cret"})
	for _, path := range []string{base + "/instances", base + "/instances/"} {
		requireJSONError(t, b.do(t, http.MethodGet, path, ""), http.StatusUnauthorized, "API key")
		requireJSONError(t, b.do(t, http.MethodGet, path+"?code=wrong", ""), http.StatusUnauthorized, "API key")
		_, sts := b.list(t, path+"?code=s3cret", "")
		require.Empty(t, sts)
	}
}
