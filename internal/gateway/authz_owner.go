package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/dockmoat/dockmoat/internal/dockerapi"
	"github.com/dockmoat/dockmoat/internal/policy"
)

// ownerLookupTimeout bounds one inspect request to dockerd for an
// ownership check.
const ownerLookupTimeout = 10 * time.Second

// errNotFound is dockerd's 404 for an inspected container or exec.
var errNotFound = errors.New("not found")

// ownerLookup inspects containers, exec instances and volumes through
// dockerd's socket, for ownership and volume checks. The zero value has no socket and fails
// every lookup.
type ownerLookup struct {
	client *http.Client
}

func newOwnerLookup(socket string) *ownerLookup {
	dialer := net.Dialer{Timeout: 5 * time.Second}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	return &ownerLookup{client: &http.Client{Transport: transport, Timeout: ownerLookupTimeout}}
}

// containerInfo is the part of dockerd's container inspect response that
// ownership needs.
type containerInfo struct {
	ID string `json:"Id"`
	// Name is the container's name with a leading slash.
	Name   string
	Config struct {
		Labels map[string]string
	}
}

func (o *ownerLookup) container(ctx context.Context, id string) (*containerInfo, error) {
	var info containerInfo
	if err := o.get(ctx, "/containers/"+url.PathEscape(id)+"/json", &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// containerJSON returns dockerd's container inspect response for id.
func (o *ownerLookup) containerJSON(ctx context.Context, id string) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := o.get(ctx, "/containers/"+url.PathEscape(id)+"/json", &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// execJSON returns dockerd's exec inspect response for id.
func (o *ownerLookup) execJSON(ctx context.Context, id string) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := o.get(ctx, "/exec/"+url.PathEscape(id)+"/json", &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// volumeInfo is the part of dockerd's volume inspect response that the
// bind check needs.
type volumeInfo struct {
	Driver  string
	Options map[string]string
}

func (o *ownerLookup) volume(ctx context.Context, name string) (*volumeInfo, error) {
	var info volumeInfo
	if err := o.get(ctx, "/volumes/"+url.PathEscape(name), &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// execContainer returns the container ID of an exec instance.
func (o *ownerLookup) execContainer(ctx context.Context, id string) (string, error) {
	var info struct {
		ContainerID string
	}
	if err := o.get(ctx, "/exec/"+url.PathEscape(id)+"/json", &info); err != nil {
		return "", err
	}
	return info.ContainerID, nil
}

func (o *ownerLookup) get(ctx context.Context, path string, out any) error {
	if o.client == nil {
		return errors.New("no Docker socket configured for ownership checks")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+upstreamHost+path, nil)
	if err != nil {
		return err
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		_, _ = io.Copy(io.Discard, resp.Body)
		return errNotFound
	case resp.StatusCode != http.StatusOK:
		text, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: status %d: %s", path, resp.StatusCode, text)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// checkOwnership checks that every container the request names, and the
// container of its exec instance, carries the client's owner label. Path
// targets are replaced by the full container ID. A container of another
// owner gets the same response as a missing one, with dockerd's 404 text, so clients
// cannot probe which containers exist.
func (a *policyAuthorizer) checkOwnership(r *http.Request, req *dockerapi.Request, d policy.Decision) (Decision, bool) {
	ctx := r.Context()
	for _, ref := range d.Containers {
		info, err := a.owners.container(ctx, ref.ID)
		if err != nil && !errors.Is(err, errNotFound) {
			return a.lookupFailed(ref.ID, err), false
		}
		if err != nil || info.Config.Labels[policy.OwnerLabel] != d.Owner {
			return notFound("No such container: " + ref.ID), false
		}
		if ref.Field == "path" {
			replaceTarget(req, info.ID)
		} else if info.Name == "/"+ref.ID && isIDPrefix(ref.ID) {
			return ambiguousName(ref), false
		}
	}
	if d.Exec == "" {
		return Decision{}, true
	}
	containerID, err := a.owners.execContainer(ctx, d.Exec)
	if err != nil && !errors.Is(err, errNotFound) {
		return a.lookupFailed(d.Exec, err), false
	}
	if err != nil {
		return notFound("No such exec instance: " + d.Exec), false
	}
	info, err := a.owners.container(ctx, containerID)
	if err != nil && !errors.Is(err, errNotFound) {
		return a.lookupFailed(containerID, err), false
	}
	if err != nil || info.Config.Labels[policy.OwnerLabel] != d.Owner {
		return notFound("No such exec instance: " + d.Exec), false
	}
	return Decision{}, true
}

// checkVolumes denies a request that mounts an existing named volume whose
// local driver options reach the host beyond what the rule allows, which
// the request body cannot show. Volumes that do not exist yet are created by dockerd from the
// already checked request.
func (a *policyAuthorizer) checkVolumes(r *http.Request, client string, d policy.Decision) (Decision, bool) {
	for _, ref := range d.Volumes {
		info, err := a.owners.volume(r.Context(), ref.ID)
		if errors.Is(err, errNotFound) {
			continue
		}
		if err != nil {
			return a.lookupFailed(ref.ID, err), false
		}
		if reason := d.VolumeViolation(info.Driver, info.Options); reason != "" {
			denial := d.VolumeDenial(client, ref, reason)
			return Decision{Status: denial.Status, Message: denial.Message}, false
		}
	}
	return Decision{}, true
}

// isIDPrefix reports whether dockerd could read s as a container ID
// prefix: lowercase hexadecimal digits.
func isIDPrefix(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return s != ""
}

// ambiguousName returns the rejection of a body or query reference to an
// owned container by a name that is also a possible ID prefix. dockerd resolves a full ID
// first, then a name, then an ID prefix, and only path targets are replaced
// by the checked full ID. If the client removed that container between the
// check and dockerd's lookup, the name would resolve as a prefix to another
// client's container, whose ID the client can learn from system events.
func ambiguousName(ref policy.Reference) Decision {
	return Decision{Status: http.StatusBadRequest,
		Message: fmt.Sprintf("dockmoat: %s names container %q, which could also be read as an ID prefix: "+
			"refer to the container by its full ID or rename it", ref.Field, ref.ID)}
}

func notFound(message string) Decision {
	return Decision{Status: http.StatusNotFound, Message: message}
}

func (a *policyAuthorizer) lookupFailed(id string, err error) Decision {
	a.logger.Error("ownership check failed", "target", id, "error", err)
	return Decision{Status: http.StatusBadGateway,
		Message: fmt.Sprintf("dockmoat: cannot check the owner of %q through the Docker socket: %v", id, err)}
}
