package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
)

// InjectOwnerLabel returns the container create body with the label
// OwnerLabel=owner added to Labels, replacing any value the client sent.
// The body must already have passed the duplicate key check, so at most one
// top-level key folds to "Labels". Other members keep their bytes, but their
// order may change.
func InjectOwnerLabel(body []byte, owner string) ([]byte, error) {
	members := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &members); err != nil {
			return nil, fmt.Errorf("container create body is not a JSON object: %v", err)
		}
	}
	if members == nil {
		members = map[string]json.RawMessage{}
	}

	labels := map[string]string{}
	for key, value := range members {
		if foldKey(key) != "LABELS" {
			continue
		}
		if err := json.Unmarshal(value, &labels); err != nil {
			return nil, fmt.Errorf("invalid Labels: %v", err)
		}
		delete(members, key)
	}
	if labels == nil {
		labels = map[string]string{}
	}
	labels[OwnerLabel] = owner

	encoded, err := json.Marshal(labels)
	if err != nil {
		return nil, err
	}
	members["Labels"] = encoded
	return json.Marshal(members)
}

// AddOwnerFilter returns query with the filter label=OwnerLabel=owner added
// to its filters parameter. Docker ANDs label filters, so other filters of
// the client still apply. It accepts both filter encodings dockerd reads:
// {"label":{"a=b":true}} and the older {"label":["a=b"]}.
func AddOwnerFilter(query url.Values, owner string) (url.Values, error) {
	filters := map[string]map[string]bool{}
	if raw := query.Get("filters"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &filters); err != nil {
			var lists map[string][]string
			if err := json.Unmarshal([]byte(raw), &lists); err != nil {
				return nil, fmt.Errorf("invalid filters parameter %q: %v", raw, err)
			}
			filters = map[string]map[string]bool{}
			for key, values := range lists {
				filters[key] = map[string]bool{}
				for _, v := range values {
					filters[key][v] = true
				}
			}
		}
	}
	if filters == nil {
		filters = map[string]map[string]bool{}
	}
	if filters["label"] == nil {
		filters["label"] = map[string]bool{}
	}
	filters["label"][OwnerLabel+"="+owner] = true

	encoded, err := json.Marshal(filters)
	if err != nil {
		return nil, err
	}
	out := url.Values{}
	for key, values := range query {
		out[key] = append([]string(nil), values...)
	}
	out.Set("filters", string(encoded))
	return out, nil
}
