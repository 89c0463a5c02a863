package httpapi

import "net/http"

// purgeResponse is the body of a purge, as Durable Functions writes it.
type purgeResponse struct {
	InstancesDeleted int `json:"instancesDeleted"`
}

// purge handles DELETE /instances/{instanceId}: 200 with
// {"instancesDeleted":1}, 404 for an unknown instance, 410 for one that has
// not finished.
func (a *api) purge(w http.ResponseWriter, r *http.Request) {
	if err := a.c.PurgeInstance(r.Context(), r.PathValue("instanceId")); err != nil {
		a.writeClientError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, purgeResponse{InstancesDeleted: 1})
}
