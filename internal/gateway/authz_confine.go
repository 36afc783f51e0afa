package gateway

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/dockmoat/dockmoat/internal/dockerapi"
	"github.com/dockmoat/dockmoat/internal/policy"
)

// checkConfined inspects each container that an exec create, exec start or
// attach request would run in and denies the request when the deciding rule could
// not have created that container, for example because it is privileged or
// shares the host's PID namespace. The path target is replaced by the
// inspected container's full ID, so dockerd acts on the container that was
// checked even if the name or ID prefix resolves differently later.
func (a *policyAuthorizer) checkConfined(r *http.Request, req *dockerapi.Request, client string, d policy.Decision) (Decision, bool) {
	for _, ref := range d.Confined {
		containerRef := ref
		if ref.Field == "exec" {
			containerID, denial, ok := a.checkExecInstance(r, client, ref, d)
			if !ok {
				return denial, false
			}
			containerRef = policy.Reference{Field: "exec container", ID: containerID}
		}
		lookup := containerRef.ID
		if ref.Field == "path" {
			// The ownership check may already have pinned the target to a
			// full ID, and this check must look at that same container.
			lookup = req.Target
		}
		raw, err := a.owners.containerJSON(r.Context(), lookup)
		if errors.Is(err, errNotFound) {
			return notFound("No such container: " + containerRef.ID), false
		}
		if err != nil {
			return a.lookupFailed(containerRef.ID, err), false
		}
		denial, volumes := d.ContainerDenial(client, containerRef, raw)
		if denial != nil {
			return Decision{Status: denial.Status, Message: denial.Message}, false
		}
		mounted := d
		mounted.Volumes = volumes
		if denial, ok := a.checkVolumes(r, client, mounted); !ok {
			return denial, false
		}
		var info struct {
			ID string `json:"Id"`
		}
		if err := json.Unmarshal(raw, &info); err != nil || info.ID == "" {
			return a.lookupFailed(containerRef.ID, errors.New("container inspect response has no Id")), false
		}
		if ref.Field == "path" {
			replaceTarget(req, info.ID)
		}
	}
	return Decision{}, true
}

// checkExecInstance inspects the exec instance ref of an exec.start request
// and returns the ID of its container, or the denial when the instance is
// missing or the deciding rule could not have created it.
func (a *policyAuthorizer) checkExecInstance(r *http.Request, client string, ref policy.Reference, d policy.Decision) (string, Decision, bool) {
	raw, err := a.owners.execJSON(r.Context(), ref.ID)
	if errors.Is(err, errNotFound) {
		return "", notFound("No such exec instance: " + ref.ID), false
	}
	if err != nil {
		return "", a.lookupFailed(ref.ID, err), false
	}
	if denial := d.ExecDenial(client, ref, raw); denial != nil {
		return "", Decision{Status: denial.Status, Message: denial.Message}, false
	}
	var info struct{ ContainerID string }
	if err := json.Unmarshal(raw, &info); err != nil || info.ContainerID == "" {
		return "", a.lookupFailed(ref.ID, errors.New("exec inspect response has no ContainerID")), false
	}
	return info.ContainerID, Decision{}, true
}
