package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/dockmoat/dockmoat/internal/dockerapi"
	"github.com/dockmoat/dockmoat/internal/identity"
	"github.com/dockmoat/dockmoat/internal/policy"
)

// DefaultMaxInspectedBody is the size cap of request bodies that the policy
// inspects (container create and update, exec create, volume and network
// bodies). Docker CLI create bodies are a few KiB.
const DefaultMaxInspectedBody = 1 << 20

// Operation names for requests that never reach the route table. Together
// with the table's names they keep the metrics label set bounded.
const (
	opRejected = "rejected"
	opUnknown  = "unknown"
)

// policyAuthorizer decides requests with a policy.Policy that it reloads
// when the policy file changes.
type policyAuthorizer struct {
	path    string
	current atomic.Pointer[policy.Policy]
	owners  *ownerLookup
	logger  *slog.Logger
	maxBody int64
	stop    func()
}

func newPolicyAuthorizer(path string, logger *slog.Logger) (*policyAuthorizer, error) {
	a := &policyAuthorizer{
		path:    path,
		owners:  &ownerLookup{},
		logger:  logger,
		maxBody: DefaultMaxInspectedBody,
		stop:    func() {},
	}
	if path == "" {
		a.current.Store(policy.Default())
		logger.Info("policy loaded", "policy", "default", "rules", len(policy.Default().Rules))
		return a, nil
	}
	p, err := policy.Load(path)
	if err != nil {
		return nil, err
	}
	a.current.Store(p)
	logger.Info("policy loaded", "policy", path, "rules", len(p.Rules))
	a.stop = a.watch()
	return a, nil
}

func (a *policyAuthorizer) useDockerSocket(socket string) {
	a.owners = newOwnerLookup(socket)
}

// Reload reads the policy file again. A file that fails to load leaves the
// previous policy in force and the error is returned.
func (a *policyAuthorizer) Reload() error {
	if a.path == "" {
		return nil
	}
	p, err := policy.Load(a.path)
	if err != nil {
		return err
	}
	a.current.Store(p)
	a.logger.Info("policy reloaded", "policy", a.path, "rules", len(p.Rules))
	return nil
}

// Close stops watching the policy file.
func (a *policyAuthorizer) Close() error {
	a.stop()
	return nil
}

func (a *policyAuthorizer) Authorize(id identity.Identity, r *http.Request) Decision {
	req, err := dockerapi.Classify(r)
	if err != nil {
		return classifyDenial(id, r, err)
	}
	decision := Decision{Operation: req.Operation, APIVersion: req.Version}

	var body []byte
	if req.Route.Has(dockerapi.BodyInspected) {
		if body, err = a.readBody(r); err != nil {
			return bodyDenial(decision, id, err)
		}
	}
	d := a.current.Load().Decide(id, req, body)
	decision.Rule = d.Rule
	if !d.Allow {
		decision.Status = d.Status
		decision.Message = d.Message
		return decision
	}

	if len(d.Volumes) > 0 {
		if denial, ok := a.checkVolumes(r, id.Name, d); !ok {
			denial.Operation, denial.APIVersion, denial.Rule = decision.Operation, decision.APIVersion, d.Rule
			return denial
		}
	}
	if d.Owner != "" {
		if denial, ok := a.checkOwnership(r, req, d); !ok {
			denial.Operation, denial.APIVersion, denial.Rule = decision.Operation, decision.APIVersion, d.Rule
			return denial
		}
	}
	if len(d.Confined) > 0 {
		if denial, ok := a.checkConfined(r, req, id.Name, d); !ok {
			denial.Operation, denial.APIVersion, denial.Rule = decision.Operation, decision.APIVersion, d.Rule
			return denial
		}
	}
	if d.Body != nil {
		body = d.Body
	}
	if req.Route.Has(dockerapi.BodyInspected) {
		setBody(r, body)
	}
	rewriteTarget(r, req, d)
	decision.Allow = true
	return decision
}

// classifyDenial returns the denial of a request that dockerapi rejects:
// 400 for targets that are not canonical, 403 for unknown endpoints.
func classifyDenial(id identity.Identity, r *http.Request, err error) Decision {
	d := Decision{Status: http.StatusBadRequest, Operation: opRejected, Rule: policy.DefaultDenyRule}
	var apiErr *dockerapi.Error
	if errors.As(err, &apiErr) {
		d.Status = apiErr.Status
	}
	if d.Status == http.StatusForbidden {
		d.Operation = opUnknown
		d.Message = fmt.Sprintf("dockmoat: client %q may not call %s %s: unknown endpoint (%s)",
			id.Name, r.Method, r.URL.Path, policy.DefaultDenyRule)
		return d
	}
	d.Message = "dockmoat: " + err.Error()
	return d
}

// errBodyTooLarge is the error of an inspected body past the size cap.
var errBodyTooLarge = errors.New("request body is too large")

func bodyDenial(d Decision, id identity.Identity, err error) Decision {
	d.Rule = policy.DefaultDenyRule
	if errors.Is(err, errBodyTooLarge) {
		d.Status = http.StatusRequestEntityTooLarge
	} else {
		d.Status = http.StatusBadRequest
	}
	d.Message = fmt.Sprintf("dockmoat: client %q may not call %s: %v", id.Name, d.Operation, err)
	return d
}

// readBody reads the whole body of an inspected request, whatever its
// framing, up to the size cap.
func (a *policyAuthorizer) readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > a.maxBody {
		return nil, fmt.Errorf("%w: Content-Length %d exceeds the %d byte limit for inspected bodies",
			errBodyTooLarge, r.ContentLength, a.maxBody)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, a.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read request body: %v", err)
	}
	if int64(len(body)) > a.maxBody {
		return nil, fmt.Errorf("%w: it exceeds the %d byte limit for inspected bodies", errBodyTooLarge, a.maxBody)
	}
	return body, nil
}

// setBody makes body the request body, sent with a Content-Length whatever
// framing the client used.
func setBody(r *http.Request, body []byte) {
	r.TransferEncoding = nil
	r.Header.Del("Transfer-Encoding")
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	if len(body) == 0 {
		r.Body = http.NoBody
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
}

// rewriteTarget sets the forwarded path to the canonical one and the query
// to the one the policy rewrote, so dockerd routes exactly what was checked.
func rewriteTarget(r *http.Request, req *dockerapi.Request, d policy.Decision) {
	r.URL.Path = req.CanonicalPath()
	r.URL.RawPath = ""
	if d.Query != nil {
		r.URL.RawQuery = d.Query.Encode()
	}
}

// replaceTarget returns req with its container target replaced by the full
// container ID, so dockerd acts on the container whose owner was checked
// even if a container of that name is created in between.
func replaceTarget(req *dockerapi.Request, containerID string) {
	path := strings.Replace(req.Route.Template, "{id}", containerID, 1)
	req.Path = path
	req.Target = containerID
}
