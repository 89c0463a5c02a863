package jetflow

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStatusJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		st   Status
		want string
	}{
		{"empty values are null", Status{Name: "E1", InstanceID: "abc", RuntimeStatus: StatusPending,
			CreatedTime: Time{time.Date(2026, 11, 23, 19, 0, 1, 999, time.UTC)}},
			`{"name":"E1","instanceId":"abc","runtimeStatus":"Pending","input":null,"customStatus":null,"output":null,"createdTime":"2026-11-23T19:00:01Z","lastUpdatedTime":null,"activityProgress":null,"requestId":null}`},
		{"values and escapes", Status{Name: "n\"ame", InstanceID: "ü/\n", RuntimeStatus: StatusCompleted,
			Input: json.RawMessage(`{"a":1}`), CustomStatus: json.RawMessage(`"Tokyo"`), Output: json.RawMessage(`[1,2]`),
			CreatedTime:      Time{time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))},
			LastUpdatedTime:  Time{time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)},
			ActivityProgress: &ActivityProgress{Name: "Copy", TaskID: 3, Progress: json.RawMessage(`{"done":42,"of":100}`)},
			RequestID:        "order-17"},
			`{"name":"n\"ame","instanceId":"ü/\n","runtimeStatus":"Completed","input":{"a":1},"customStatus":"Tokyo","output":[1,2],"createdTime":"2026-01-02T02:04:05Z","lastUpdatedTime":"2026-01-02T03:04:06Z","activityProgress":{"name":"Copy","taskId":3,"progress":{"done":42,"of":100}},"requestId":"order-17"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.st)
			require.NoError(t, err)
			require.JSONEq(t, tc.want, string(b))
			require.True(t, json.Valid(b))
			var back Status
			require.NoError(t, json.Unmarshal(b, &back))
			b2, err := json.Marshal(back)
			require.NoError(t, err)
			require.Equal(t, string(b), string(b2), "a round trip changes nothing")
		})
	}
}
