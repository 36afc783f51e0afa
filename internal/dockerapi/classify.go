// Package dockerapi classifies Docker Engine API requests: it parses the
// request target into one canonical form, rejects targets that dockerd could
// route differently from dockmoat, and maps the request to a named
// operation from the route table in routes.go.
package dockerapi

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// MinAPIVersion is the oldest API version dockmoat accepts in a /vX.Y
// prefix. dockerd 20.10 still serves versions down to 1.12, and below 1.24
// it applies a HostConfig sent to /containers/{id}/start and copies files
// out through /containers/{id}/copy, so older versions are rejected.
const MinAPIVersion = "1.24"

// Request is a classified API request.
type Request struct {
	// Route is the matched table entry.
	Route *Route
	// Operation is the operation name, usually Route.Operation. POST
	// /images/create without a fromImage value is "image.import".
	Operation string
	// Version is the API version from the /vX.Y prefix, empty when the
	// request has none (dockerd then uses its own current version).
	Version string
	// Path is the decoded path without the version prefix.
	Path string
	// Target is the decoded value of the route's path variable, such as a
	// container ID or an image reference, empty for routes without one.
	Target string
	// Query is the parsed query string.
	Query url.Values
}

// CanonicalPath returns the decoded path with the version prefix, the form
// the gateway forwards to dockerd.
func (r *Request) CanonicalPath() string {
	if r.Version == "" {
		return r.Path
	}
	return "/v" + r.Version + r.Path
}

// Error is a request that dockmoat rejects before any policy applies.
// Status is 400 for targets that are not in canonical form and 403 for
// unknown endpoints.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// Classify parses and classifies a server-side request. It uses
// r.RequestURI, the target exactly as the client sent it, and rejects form
// bodies because dockerd reads form values from them before the query.
func Classify(r *http.Request) (*Request, error) {
	target := r.RequestURI
	if target == "" {
		target = r.URL.RequestURI()
	}
	if err := checkContentType(r.Method, r.Header.Get("Content-Type")); err != nil {
		return nil, err
	}
	return ClassifyTarget(r.Method, target)
}

// checkContentType rejects bodies that dockerd would parse as form values.
// dockerd calls http.Request.ParseForm on every request, and FormValue
// returns a value from an application/x-www-form-urlencoded body before the
// same parameter in the query, so such a body could override checked query
// parameters such as build's networkmode.
func checkContentType(method, contentType string) error {
	if method != http.MethodPost && method != http.MethodPut && method != http.MethodPatch {
		return nil
	}
	if contentType == "" {
		return nil
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return badRequest("invalid Content-Type %q: %v", contentType, err)
	}
	if mediaType == "application/x-www-form-urlencoded" {
		return badRequest("Content-Type %q is not accepted: send parameters in the query string", contentType)
	}
	return nil
}

// ClassifyTarget classifies method and an origin-form request target such
// as "/v1.41/containers/json?all=1".
func ClassifyTarget(method, target string) (*Request, error) {
	rawPath, rawQuery, _ := strings.Cut(target, "?")
	segments, err := canonicalSegments(rawPath)
	if err != nil {
		return nil, err
	}
	query, err := parseQuery(rawQuery)
	if err != nil {
		return nil, err
	}

	req := &Request{Query: query}
	if len(segments) > 0 && isVersionSegment(segments[0]) {
		version := segments[0][1:]
		if err := checkVersion(version); err != nil {
			return nil, err
		}
		req.Version = version
		segments = segments[1:]
	}
	req.Path = "/" + strings.Join(segments, "/")

	route, value, err := match(method, segments, req.Version)
	if err != nil {
		return nil, err
	}
	req.Route = route
	req.Target = value
	req.Operation = route.Operation
	// dockerd 20.10 pulls only when the first fromImage value is non-empty
	// and imports otherwise, whether fromSrc is set or not.
	if route.Operation == "image.pull" && query.Get("fromImage") == "" {
		req.Operation = "image.import"
	}
	return req, nil
}

// canonicalSegments decodes an origin-form path into its segments. It
// rejects every form that gorilla/mux in dockerd would clean, redirect or
// decode into a different path than the one dockmoat checks.
func canonicalSegments(rawPath string) ([]string, error) {
	if !strings.HasPrefix(rawPath, "/") {
		return nil, badRequest("request target %q is not in origin form: send a path that starts with /", rawPath)
	}
	lower := strings.ToLower(rawPath)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		return nil, badRequest("request path %q contains an encoded slash or backslash", rawPath)
	}
	path, err := url.PathUnescape(rawPath)
	if err != nil {
		return nil, badRequest("request path %q has an invalid escape: %v", rawPath, err)
	}
	for _, c := range []byte(path) {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return nil, badRequest("request path %q contains a control character or backslash", rawPath)
		}
	}
	if path == "/" {
		return nil, nil
	}
	segments := strings.Split(path[1:], "/")
	for _, s := range segments {
		switch s {
		case "":
			return nil, badRequest("request path %q has an empty segment", rawPath)
		case ".", "..":
			return nil, badRequest("request path %q has a dot segment", rawPath)
		}
	}
	return segments, nil
}

// parseQuery parses a raw query and rejects the ';' separator, which old
// Go versions in dockerd builds split on and current ones do not.
func parseQuery(rawQuery string) (url.Values, error) {
	if strings.Contains(rawQuery, ";") {
		return nil, badRequest("query %q contains ';': separate parameters with '&'", rawQuery)
	}
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, badRequest("invalid query %q: %v", rawQuery, err)
	}
	return query, nil
}

// isVersionSegment reports whether dockerd would take s as a version
// prefix: it registers every route also under /v{version:[0-9.]+}.
func isVersionSegment(s string) bool {
	if len(s) < 2 || s[0] != 'v' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}

// checkVersion accepts only MAJOR.MINOR without leading zeros, because
// dockerd compares versions numerically part by part, so "1.041" and
// "1.41.0" would otherwise be further spellings of 1.41.
func checkVersion(version string) error {
	major, minor, ok := strings.Cut(version, ".")
	if !ok || !isDecimal(major) || !isDecimal(minor) {
		return badRequest("invalid API version %q in path: use the form /v1.41", version)
	}
	if CompareVersions(version, MinAPIVersion) < 0 {
		return badRequest("API version %s is too old: dockmoat accepts %s and later", version, MinAPIVersion)
	}
	return nil
}

func isDecimal(s string) bool {
	if s == "" || len(s) > 4 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// CompareVersions compares two API versions of the form MAJOR.MINOR
// numerically and returns -1, 0 or +1.
func CompareVersions(a, b string) int {
	aMajor, aMinor := splitVersion(a)
	bMajor, bMinor := splitVersion(b)
	switch {
	case aMajor != bMajor:
		return sign(aMajor - bMajor)
	default:
		return sign(aMinor - bMinor)
	}
}

func splitVersion(v string) (int, int) {
	majorText, minorText, _ := strings.Cut(v, ".")
	major, _ := strconv.Atoi(majorText)
	minor, _ := strconv.Atoi(minorText)
	return major, minor
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// match finds the route for method and the path segments. More than one
// matching template, or a multi-segment value for a name that cannot
// contain a slash, is rejected as ambiguous.
func match(method string, segments []string, version string) (*Route, string, error) {
	var found *Route
	var value string
	for _, i := range candidateRoutes(method, segments) {
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
			return nil, "", badRequest("request path %q matches both %s and %s: the target is ambiguous",
				"/"+strings.Join(segments, "/"), found.Template, route.Template)
		}
		found, value = route, v
	}
	if found == nil {
		return nil, "", &Error{Status: http.StatusForbidden,
			Message: fmt.Sprintf("unknown endpoint %s %s", method, "/"+strings.Join(segments, "/"))}
	}
	if found.kind == slashlessName && strings.Contains(value, "/") {
		return nil, "", badRequest("name %q in request path contains a slash: the target is ambiguous", value)
	}
	return found, value, nil
}

// matchTemplate matches segments against the route's template and returns
// the variable's value. A template has at most one variable; for
// multi-segment kinds it spans every segment between the literal prefix
// and the literal suffix, as dockerd's {name:.*} does.
func matchTemplate(route *Route, parts, segments []string) (string, bool) {
	variable := -1
	for i, p := range parts {
		if strings.HasPrefix(p, "{") {
			variable = i
			break
		}
	}
	if variable < 0 {
		return "", equalSegments(parts, segments)
	}

	prefix, suffix := parts[:variable], parts[variable+1:]
	if route.kind == oneSegment {
		if len(segments) != len(parts) {
			return "", false
		}
	} else if len(segments) < len(parts) {
		return "", false
	}
	if !equalSegments(prefix, segments[:len(prefix)]) ||
		!equalSegments(suffix, segments[len(segments)-len(suffix):]) {
		return "", false
	}
	middle := segments[len(prefix) : len(segments)-len(suffix)]
	// A second variable in the suffix, the checkpoint name, matches any one
	// segment in equalSegments.
	return strings.Join(middle, "/"), true
}

// templateParts holds the segments of each template in Routes, by index.
var templateParts = splitTemplates()

// routeIndex lists, for a method and a first path segment, the indexes in
// Routes of the routes that can match: those whose template starts with
// that literal segment or with a variable, in the order of Routes. A route
// whose template starts with another literal can never match, so match
// skips it without changing its result.
// variableFirst is true when some template starts with a variable.
var routeIndex, allRoutes, variableFirst = indexRoutes()

func indexRoutes() (index map[routeKey][]int, all []int, variableFirst bool) {
	index = map[routeKey][]int{}
	all = make([]int, len(Routes))
	for i, r := range Routes {
		all[i] = i
		first := templateParts[i][0]
		if strings.HasPrefix(first, "{") {
			variableFirst = true
		} else {
			index[routeKey{r.Method, first}] = nil
		}
	}
	for key := range index {
		for i, r := range Routes {
			first := templateParts[i][0]
			if r.Method == key.method && (first == key.first || strings.HasPrefix(first, "{")) {
				index[key] = append(index[key], i)
			}
		}
	}
	return index, all, variableFirst
}

type routeKey struct{ method, first string }

// candidateRoutes returns the indexes of the routes that match must try
// for method and segments, in the order of Routes.
func candidateRoutes(method string, segments []string) []int {
	if len(segments) == 0 {
		return allRoutes
	}
	if candidates, ok := routeIndex[routeKey{method, segments[0]}]; ok {
		return candidates
	}
	if variableFirst {
		// A template that starts with a variable matches any first
		// segment, so only the full scan is exact.
		return allRoutes
	}
	return nil
}

func splitTemplates() [][]string {
	parts := make([][]string, len(Routes))
	for i, r := range Routes {
		parts[i] = strings.Split(r.Template[1:], "/")
	}
	return parts
}

func equalSegments(template, segments []string) bool {
	if len(template) != len(segments) {
		return false
	}
	for i := range template {
		if strings.HasPrefix(template[i], "{") {
			continue
		}
		if template[i] != segments[i] {
			return false
		}
	}
	return true
}

func sortedKeys(set map[string]bool) []string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
