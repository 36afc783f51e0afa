package dockerapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// matchFullScan is match without the route index: every route is tried.
func matchFullScan(method string, segments []string, version string) (*Route, string, error) {
	var found *Route
	var value string
	for i := range Routes {
		route := &Routes[i]
		if route.Method != method {
			continue
		}
		if route.MaxVersion != "" && (version == "" || CompareVersions(version, route.MaxVersion) > 0) {
			continue
		}
		v, ok := matchTemplate(route, templateParts[i], segments)
		if !ok {
			continue
		}
		if found != nil {
			return nil, "", fmt.Errorf("ambiguous: %s and %s", found.Template, route.Template)
		}
		found, value = route, v
	}
	if found == nil {
		return nil, "", fmt.Errorf("unknown endpoint")
	}
	if found.kind == slashlessName && strings.Contains(value, "/") {
		return nil, "", fmt.Errorf("slash in name %q", value)
	}
	return found, value, nil
}

func TestMatchIndexAgreesWithFullScan(t *testing.T) {
	var paths [][]string
	for _, r := range Routes {
		parts := strings.Split(r.Template[1:], "/")
		for _, fill := range [][]string{{"abc"}, {"a", "b"}, {"a", "b", "c"}} {
			var segments []string
			for _, p := range parts {
				if strings.HasPrefix(p, "{") {
					segments = append(segments, fill...)
				} else {
					segments = append(segments, p)
				}
			}
			paths = append(paths, segments)
		}
	}
	paths = append(paths, nil, []string{""}, []string{"unknown"}, []string{"containers"}, []string{"_ping", "x"})
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, "PATCH"}

	for _, segments := range paths {
		for _, method := range methods {
			for _, version := range []string{"", "1.24", "1.41", "1.52"} {
				gotRoute, gotValue, gotErr := match(method, segments, version)
				wantRoute, wantValue, wantErr := matchFullScan(method, segments, version)
				name := fmt.Sprintf("%s /%s (version %q)", method, strings.Join(segments, "/"), version)
				if gotRoute != wantRoute {
					t.Errorf("%s: route = %v, want %v", name, gotRoute, wantRoute)
				}
				if gotValue != wantValue {
					t.Errorf("%s: value = %q, want %q", name, gotValue, wantValue)
				}
				if (gotErr != nil) != (wantErr != nil) {
					t.Errorf("%s: error = %v, want %v", name, gotErr, wantErr)
				}
			}
		}
	}
}
