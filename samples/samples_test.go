package samples_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/samples"
	"github.com/stretchr/testify/require"
)

func newEngine(t *testing.T, opts samples.Options) *testengine.Engine {
	return testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error { return samples.Register(r, opts) }})
}

// follow collects every status change of an instance until it finishes.
func follow(t *testing.T, e *testengine.Engine, id string) <-chan []client.Update {
	t.Helper()
	ch, err := e.Client.WatchStatus(e.Context(30*time.Second), id, 0)
	require.NoError(t, err)
	out := make(chan []client.Update, 1)
	go func() {
		var all []client.Update
		for u := range ch {
			all = append(all, u)
		}
		out <- all
	}()
	return out
}

func customStatuses(us []client.Update) []string {
	var out []string
	for _, u := range us {
		s := string(u.CustomStatus)
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

func TestHelloSequence(t *testing.T) {
	t.Parallel()
	e := newEngine(t, samples.Options{})
	ctx := e.Context(30 * time.Second)
	id := "hello-1"
	updates := follow(t, e, id)
	_, err := e.Client.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID(id))
	require.NoError(t, err)
	us := <-updates
	for _, u := range us {
		t.Logf("%s %s %s %s", u.RuntimeStatus, u.CustomStatus, u.Output, u.LastUpdatedTime)
	}
	final := us[len(us)-1]
	require.Equal(t, jetflow.StatusCompleted, final.RuntimeStatus)
	require.JSONEq(t, `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, string(final.Output))
	require.Equal(t, []string{"null", `"Tokyo"`, `"Seattle"`, `"London"`}, customStatuses(us))
	require.Equal(t, jetflow.StatusPending, us[0].RuntimeStatus)
	b, err := json.Marshal(final.Status)
	require.NoError(t, err)
	t.Log(string(b))
}

func TestCityRecommender(t *testing.T) {
	t.Parallel()
	e := newEngine(t, samples.Options{})
	ctx := e.Context(30 * time.Second)
	for _, tc := range []struct {
		input, status string
	}{
		{"1", `{"recommendedCities":["Tokyo","Seattle"],"recommendedSeasons":["Spring","Summer"]}`},
		{"2", `{"recommendedCities":["Seattle","London"],"recommendedSeasons":["Summer"]}`},
		{"3", `{"recommendedCities":["Tokyo","London"],"recommendedSeasons":["Spring","Summer"]}`},
	} {
		t.Run("input "+tc.input, func(t *testing.T) {
			id := "city-" + tc.input
			updates := follow(t, e, id)
			_, err := e.Client.StartOrchestration(ctx, "CityRecommender", client.WithInstanceID(id), client.WithRawInput(json.RawMessage(tc.input)))
			require.NoError(t, err)
			waitStatus(t, e, id, tc.status)
			require.NoError(t, e.Client.RaiseEvent(ctx, id, "CitySelected", "London"))
			us := <-updates
			final := us[len(us)-1]
			require.Equal(t, jetflow.StatusCompleted, final.RuntimeStatus)
			require.JSONEq(t, `"London"`, string(final.Output))
			require.Equal(t, []string{"null", tc.status}, customStatuses(us))
		})
	}
	t.Run("bad input", func(t *testing.T) {
		for _, in := range []string{"4", `"x"`, "null"} {
			id, err := e.Client.StartOrchestration(ctx, "CityRecommender", client.WithRawInput(json.RawMessage(in)))
			require.NoError(t, err)
			st, err := e.Client.WaitForCompletion(ctx, id)
			require.NoError(t, err)
			require.Equal(t, jetflow.StatusFailed, st.RuntimeStatus, "input %s", in)
			require.Contains(t, string(st.Output), "input must be 1, 2 or 3")
		}
	})
}

// waitStatus waits until an instance's custom status is want (JSON).
func waitStatus(t *testing.T, e *testengine.Engine, id, want string) {
	t.Helper()
	ch, err := e.Client.WatchStatus(e.Context(30*time.Second), id, 0)
	require.NoError(t, err)
	for u := range ch {
		if len(u.CustomStatus) > 0 && jsonEqual(t, want, string(u.CustomStatus)) {
			return
		}
	}
	t.Fatalf("custom status of %s never became %s", id, want)
}

func jsonEqual(t *testing.T, a, b string) bool {
	var x, y any
	require.NoError(t, json.Unmarshal([]byte(a), &x))
	require.NoError(t, json.Unmarshal([]byte(b), &y))
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

func TestReserveTicket(t *testing.T) {
	t.Parallel()
	t.Run("confirmed", func(t *testing.T) {
		t.Parallel()
		e := newEngine(t, samples.Options{})
		ctx := e.Context(30 * time.Second)
		id := "ticket-confirmed"
		updates := follow(t, e, id)
		_, err := e.Client.StartOrchestration(ctx, "ReserveTicket", client.WithInstanceID(id), client.WithInput("user-42"))
		require.NoError(t, err)
		offer := fmt.Sprintf(`{"discount":%d,"discountTimeout":60,"bookingUrl":"https://www.myawesomebookingweb.com"}`, samples.Discount("user-42"))
		waitStatus(t, e, id, offer)
		require.NoError(t, e.Client.RaiseEvent(ctx, id, "BookingConfirmed", true))
		us := <-updates
		final := us[len(us)-1]
		require.Equal(t, jetflow.StatusCompleted, final.RuntimeStatus)
		require.JSONEq(t, "true", string(final.Output))
		require.Equal(t, []string{"null", offer, `{"message":"Thank you for confirming your booking."}`}, customStatuses(us))
	})
	t.Run("timed out", func(t *testing.T) {
		t.Parallel()
		e := newEngine(t, samples.Options{DiscountTimeout: time.Second})
		ctx := e.Context(30 * time.Second)
		id := "ticket-late"
		updates := follow(t, e, id)
		_, err := e.Client.StartOrchestration(ctx, "ReserveTicket", client.WithInstanceID(id), client.WithInput("user-42"))
		require.NoError(t, err)
		us := <-updates
		final := us[len(us)-1]
		require.Equal(t, jetflow.StatusCompleted, final.RuntimeStatus)
		require.JSONEq(t, "false", string(final.Output))
		offer := fmt.Sprintf(`{"discount":%d,"discountTimeout":1,"bookingUrl":"https://www.myawesomebookingweb.com"}`, samples.Discount("user-42"))
		require.Equal(t, []string{"null", offer, `{"message":"The booking was not confirmed on time. Please try again."}`}, customStatuses(us))
	})
}

func TestSetStatusTest(t *testing.T) {
	t.Parallel()
	e := newEngine(t, samples.Options{})
	ctx := e.Context(30 * time.Second)
	id := "set-status"
	updates := follow(t, e, id)
	_, err := e.Client.StartOrchestration(ctx, "SetStatusTest", client.WithInstanceID(id))
	require.NoError(t, err)
	waitStatus(t, e, id, `{"nextActions":["A","B","C"],"foo":2}`)
	require.NoError(t, e.Client.RaiseEvent(ctx, id, "Done", nil))
	us := <-updates
	final := us[len(us)-1]
	require.Equal(t, jetflow.StatusCompleted, final.RuntimeStatus)
	require.Equal(t, []string{"null", `{"nextActions":["A","B","C"],"foo":2}`}, customStatuses(us))
}

func TestDiscountIsDeterministic(t *testing.T) {
	t.Parallel()
	require.Equal(t, samples.Discount("user-1"), samples.Discount("user-1"))
	seen := map[int]bool{}
	for i := 0; i < 100; i++ {
		d := samples.Discount(fmt.Sprint("user-", i))
		require.True(t, d >= 5 && d <= 50 && d%5 == 0, "discount %d", d)
		seen[d] = true
	}
	require.Greater(t, len(seen), 3, "discounts vary between users")
}
