package httpapi

import (
	"errors"
	"net/http"

	"github.com/jetflow/jetflow"
)

// purgeResponse is the body of a purge, as Durable Functions writes it.
type purgeResponse struct {
	InstancesDeleted int `json:"instancesDeleted"`
}

// purge handles DELETE /instances/{instanceId}: 200 with
// {"instancesDeleted":1}, 404 for an unknown instance and for one that has
// not finished (nothing purged: Durable Functions answers so when its
// store purges nothing, and its clients take 404 as "0 deleted" but fail
// on any other code).
func (a *api) purge(w http.ResponseWriter, r *http.Request) {
	err := a.c.PurgeInstance(r.Context(), r.PathValue("instanceId"))
	if errors.Is(err, jetflow.ErrInstanceNotFinished) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	if err != nil {
		a.writeClientError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, purgeResponse{InstancesDeleted: 1})
}

// purgeMany handles DELETE /instances?createdTimeFrom=…[&createdTimeTo=…]
// [&runtimeStatus=…]: it purges the finished instances selected and
// answers 200 with their count, 404 when there were none, 400 without
// createdTimeFrom (as Durable Functions requires it).
func (a *api) purgeMany(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("createdTimeFrom") == "" {
		writeError(w, http.StatusBadRequest, "createdTimeFrom is required to purge many instances (DELETE /instances/{id} purges one)")
		return
	}
	lq, err := filterQuery(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	n, err := a.c.PurgeInstances(r.Context(), lq)
	if err != nil {
		a.writeClientError(w, r, err)
		return
	}
	if n == 0 {
		writeError(w, http.StatusNotFound, "no finished instance matched")
		return
	}
	writeJSON(w, http.StatusOK, purgeResponse{InstancesDeleted: n})
}
