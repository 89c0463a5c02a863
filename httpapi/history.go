package httpapi

import (
	"encoding/json"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
)

// StatusWithHistory is a status with the history of its execution, as
// GET /instances/{id}?showHistory=true shows it: the status object with a
// historyEvents key added.
type StatusWithHistory struct {
	Status  *jetflow.Status
	History []client.HistoryEvent
}

// MarshalJSON writes the status object with historyEvents as its last key.
func (s StatusWithHistory) MarshalJSON() ([]byte, error) {
	body, err := json.Marshal(s.Status)
	if err != nil {
		return nil, err
	}
	h, err := json.Marshal(s.History)
	if err != nil {
		return nil, err
	}
	return append(append(append(body[:len(body)-1], `,"historyEvents":`...), h...), '}'), nil
}
