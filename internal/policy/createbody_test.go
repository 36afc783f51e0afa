package policy

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// differentialPolicy has rules whose checks differ, so that comparing their
// decisions exercises each check both ways: the ci preset, a rule with
// images, ownership and several lifted constraints, and admin.
const differentialPolicy = `
rules:
  - name: ci
    groups: [ci]
    presets: [ci]
  - name: lifted
    clients: [lifted]
    presets: [ci]
    ownership: true
    images: ["localhost/*", busybox]
    lift:
      capabilities: [NET_ADMIN]
      devices: true
      namespaces: [pid, network]
      sysctls: ["net.ipv4.*"]
      bind_paths: [/srv/ci]
      volumes_from: true
      log_drivers: [syslog]
  - name: admin
    groups: [admin]
    presets: [admin]
`

// wholeCreateBody decodes data with the duplicate key check and then
// json.Unmarshal of the whole body, which decodeCreateBody must agree with.
func wholeCreateBody(data []byte) (*createBody, error) {
	var body createBody
	if err := decodeBody(data, &body); err != nil {
		return nil, err
	}
	return &body, nil
}

// compareCreateDecoding checks that decodeCreateBody and wholeCreateBody
// agree on data: when the whole body decodes, the filtered decoding
// succeeds, sets every inspected field to the same value, and every rule
// decides the same on both. When only the filtered decoding succeeds, the
// whole body must be valid JSON without duplicate keys, so that only a
// field type that the daemon rejects too failed.
//
// Decisions are compared by violation field, references and volumes. The
// reason is left out because checks of Sysctls, Tmpfs and volume driver
// options name the first offending map key in map iteration order, which
// differs between two checks of the same map.
func compareCreateDecoding(t *testing.T, rules []*Rule, data []byte) {
	t.Helper()
	filtered, filteredErr := decodeCreateBody(data)
	whole, wholeErr := wholeCreateBody(data)
	if wholeErr != nil {
		if filteredErr == nil && (!json.Valid(data) || checkJSONKeys(data) != nil) {
			t.Fatalf("body %q: filtered decoding succeeded, but the whole body is invalid: %v", data, wholeErr)
		}
		return
	}
	if filteredErr != nil {
		t.Fatalf("body %q: filtered decoding failed (%v), but the whole body decodes", data, filteredErr)
	}
	got, want := projectCreate(filtered), projectCreate(whole)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("body %q: inspected fields differ:\nfiltered: %s\nwhole:    %s", data, describe(got), describe(want))
	}
	for _, rule := range rules {
		got, want := checkCreate(rule, filtered), checkCreate(rule, whole)
		if !reflect.DeepEqual(comparableInspection(got), comparableInspection(want)) {
			t.Fatalf("body %q, rule %q: filtered decoding gives %s, whole body gives %s",
				data, rule.Name, describeInspection(got), describeInspection(want))
		}
	}
}

// comparableInspection returns found without the reason of its violation.
func comparableInspection(found *inspection) *inspection {
	if found.violation == nil {
		return found
	}
	stripped := *found
	stripped.violation = &violation{Field: found.violation.Field}
	return &stripped
}

func describeInspection(found *inspection) string {
	text := fmt.Sprintf("references %+v, volumes %+v", found.references, found.volumes)
	if found.violation != nil {
		text = fmt.Sprintf("violation %+v, %s", *found.violation, text)
	}
	return text
}

func describe(body createBody) string {
	text, err := json.Marshal(struct {
		Top   createBody
		Inner *hostConfig
	}{body, body.Inner})
	if err != nil {
		return err.Error()
	}
	return string(text)
}

// projectCreate returns the fields of body that inspectCreate reads. Absent
// objects become zero values, because a check reads nothing from them.
func projectCreate(body *createBody) createBody {
	out := createBody{
		Config:           &container.Config{},
		HostConfig:       projectHostConfig(body.HostConfig),
		NetworkingConfig: body.NetworkingConfig,
		Capabilities:     body.Capabilities,
	}
	if body.Config != nil {
		out.Image = body.Image
	}
	if body.Inner != nil {
		out.Inner = &hostConfig{HostConfig: projectHostConfig(body.Inner.HostConfig), Capabilities: body.Inner.Capabilities}
	}
	return out
}

func projectHostConfig(hc *container.HostConfig) *container.HostConfig {
	out := &container.HostConfig{}
	if hc == nil {
		return out
	}
	for _, name := range inspectedHostConfigFields {
		_, target := structField(reflect.ValueOf(out).Elem(), name)
		_, source := structField(reflect.ValueOf(hc).Elem(), name)
		target.Set(source)
	}
	return out
}

func jsonName(field reflect.StructField) string {
	name, _, _ := strings.Cut(field.Tag.Get("json"), ",")
	if name == "" {
		return field.Name
	}
	return name
}

// jsonNames returns the JSON names of the exported fields of struct type t
// and of the structs it embeds.
func jsonNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		field := t.Field(i)
		fieldType := field.Type
		if fieldType.Kind() == reflect.Pointer {
			fieldType = fieldType.Elem()
		}
		switch {
		case field.Anonymous && fieldType.Kind() == reflect.Struct:
			names = append(names, jsonNames(fieldType)...)
		case field.IsExported():
			names = append(names, jsonName(field))
		}
	}
	return names
}

// keyVariants returns keys that encoding/json matches to a field named
// name: the name itself, lower and upper case, the Kelvin sign for k and
// the long s for s (as UTF-8 and as \u escapes), an escaped first letter
// and a key whose every character is escaped.
func keyVariants(name string) []string {
	variants := []string{name, strings.ToLower(name), strings.ToUpper(name)}
	if strings.ContainsAny(name, "kK") {
		variants = append(variants,
			strings.NewReplacer("k", "\u212a", "K", "\u212a").Replace(name),
			strings.NewReplacer("k", `\u212A`, "K", `\u212a`).Replace(name))
	}
	if strings.ContainsAny(name, "sS") {
		variants = append(variants,
			strings.NewReplacer("s", "\u017f", "S", "\u017f").Replace(name),
			strings.NewReplacer("s", `\u017F`, "S", `\u017f`).Replace(name))
	}
	var escaped strings.Builder
	for _, c := range []byte(name) {
		fmt.Fprintf(&escaped, `\u%04x`, c)
	}
	return append(variants, fmt.Sprintf(`\u%04x`, name[0])+name[1:], escaped.String())
}

// memberValues are JSON values of each JSON type, including values that the
// checks deny.
var memberValues = []string{
	`null`, `false`, `true`, `""`, `"host"`, `"container:abc"`, `"bind"`, `0`, `1`, `-1.5e3`,
	`[]`, `{}`, `[null]`, `["/:/h"]`, `["SYS_ADMIN"]`, `["seccomp=unconfined"]`, `["db:alias"]`,
	`{"a":"b"}`, `{"kernel.shm_rmid_forced":"1"}`, `{"kernel.a":"1","kernel.b":"2","kernel.c":"3"}`,
	`{"/mnt":"rbind"}`, `{"/a":"bind","/b":"rbind","/c":"bind"}`,
	`[{"Type":"bind","Source":"/","Target":"/h"}]`,
	`[{"Type":"volume","Source":"v","Target":"/v","VolumeOptions":{"DriverConfig":{"Options":{"o":"bind","device":"/"}}}}]`,
	`[{"PathOnHost":"/dev/sda"}]`, `{"Type":"syslog"}`, `{"Config":{"syslog-address":"udp://127.0.0.1:1"}}`,
	`{"EndpointsConfig":{"host":{}}}`, `{"Privileged":true}`, `{"privileged":true,"Binds":null}`,
}

// TestCreateBodyFilterMatchesWholeBody compares decodeCreateBody with
// json.Unmarshal of the whole body for one member of every name that the
// create body types have, with every key variant and every member value,
// at the top level and in the HostConfig object.
func TestCreateBodyFilterMatchesWholeBody(t *testing.T) {
	rules := mustParse(t, differentialPolicy).Rules
	for _, seed := range createBodySeeds {
		compareCreateDecoding(t, rules, []byte(seed))
	}
	names := jsonNames(reflect.TypeFor[createBody]())
	names = append(names, "HostConfigs", "Unknown")
	for _, name := range names {
		for _, key := range keyVariants(name) {
			for _, value := range memberValues {
				member := `"` + key + `":` + value
				compareCreateDecoding(t, rules, []byte(`{`+member+`}`))
				compareCreateDecoding(t, rules, []byte(`{"Image":"x","HostConfig":{`+member+`}}`))
				compareCreateDecoding(t, rules, []byte(`{"HostConfig":{"Privileged":false,`+member+`},"Privileged":null}`))
			}
		}
	}
}

// TestInspectedFieldNames checks that every name that decodeCreateBody
// keeps names a field of createBody or hostConfig, so that a misspelt name
// cannot silently leave a checked field zero.
func TestInspectedFieldNames(t *testing.T) {
	top := jsonNames(reflect.TypeFor[createBody]())
	inner := jsonNames(reflect.TypeFor[hostConfig]())
	for _, name := range inspectedTopLevelFields {
		if !slices.Contains(top, name) {
			t.Errorf("%s is not a field of createBody", name)
		}
	}
	for _, name := range inspectedHostConfigFields {
		if !slices.Contains(top, name) {
			t.Errorf("%s is not a field of createBody", name)
		}
		if !slices.Contains(inner, name) {
			t.Errorf("%s is not a field of hostConfig", name)
		}
	}
}

// TestCreateBodyDropsOnlyZeroLiterals checks the premise that lets
// decodeCreateBody leave out members whose value is null, false or "".
// json.Unmarshal of those values into every field it keeps fails or leaves
// the field zero, and no such field type has its own JSON or text decoding,
// which could give those values another meaning.
func TestCreateBodyDropsOnlyZeroLiterals(t *testing.T) {
	structs := []struct {
		value reflect.Value
		names []string
	}{
		{reflect.ValueOf(&createBody{Config: &container.Config{}, HostConfig: &container.HostConfig{}}).Elem(),
			slices.Concat(inspectedTopLevelFields, inspectedHostConfigFields)},
		{reflect.ValueOf(&hostConfig{HostConfig: &container.HostConfig{}}).Elem(),
			slices.Concat([]string{"Capabilities"}, inspectedHostConfigFields)},
	}
	unmarshaler := reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler := reflect.TypeFor[encoding.TextUnmarshaler]()
	for _, s := range structs {
		for _, name := range s.names {
			field, value := structField(s.value, name)
			if !value.IsValid() {
				t.Fatalf("%s has no field %s", s.value.Type(), name)
			}
			if strings.Contains(field.Tag.Get("json"), ",string") {
				t.Errorf("%s.%s has the string option", s.value.Type(), name)
			}
			for typ := value.Type(); ; typ = typ.Elem() {
				for _, candidate := range []reflect.Type{typ, reflect.PointerTo(typ)} {
					if candidate.Implements(unmarshaler) || candidate.Implements(textUnmarshaler) {
						t.Errorf("%s.%s: %s has its own JSON or text decoding", s.value.Type(), name, candidate)
					}
				}
				if typ.Kind() != reflect.Pointer {
					break
				}
			}
			for _, literal := range []string{`null`, `false`, `""`} {
				target := reflect.New(value.Type())
				if err := json.Unmarshal([]byte(literal), target.Interface()); err == nil && !target.Elem().IsZero() {
					t.Errorf("%s.%s: %s decodes to %#v, not the zero value", s.value.Type(), name, literal, target.Elem())
				}
			}
		}
	}
}

// structField returns the field of v with JSON name name and its value,
// looking into embedded structs and non-nil pointers to them.
func structField(v reflect.Value, name string) (reflect.StructField, reflect.Value) {
	for i := range v.NumField() {
		field := v.Type().Field(i)
		fieldValue := v.Field(i)
		if field.Anonymous {
			if fieldValue.Kind() == reflect.Pointer {
				fieldValue = fieldValue.Elem()
			}
			if fieldValue.Kind() == reflect.Struct {
				if found, foundValue := structField(fieldValue, name); foundValue.IsValid() {
					return found, foundValue
				}
			}
			continue
		}
		if jsonName(field) == name {
			return field, fieldValue
		}
	}
	return reflect.StructField{}, reflect.Value{}
}

// FuzzDecodeCreateBody compares decodeCreateBody with json.Unmarshal of the
// whole body, and the syntax check of keyScanner with json.Valid.
func FuzzDecodeCreateBody(f *testing.F) {
	seeds := append([]string{
		`{"Image":"x","PRIVILEGED":true,"HostConfig":{"privileged":false}}`,
		`{"Image":"x","HostConfig":{"Privileged":true},"\u212aey":1}`,
		`{"Image":"x","HostConfig":{"Mas\u212aedPaths":[]},"\u017fysctls":{"kernel.x":"1"}}`,
		`{"Image":"x","hostconfig":{"HostConfig":{"Privileged":true}},"HostConfig2":{}}`,
		`{"Image":"x","HostConfig":null,"Binds":null,"MaskedPaths":[],"Capabilities":["CAP_SYS_ADMIN"]}`,
		`{"Image":"x","HostConfig":{"Capabilities":null,"CapAdd":[null],"Privileged":"true"}}`,
		`{"Image":"x","Hostname":1,"HostConfig":{"CpuShares":"1","Privileged":true}}`,
		`{"Image":"x","HostConfig":{"Links":["/db:db"],"VolumesFrom":["data:ro"],"PidMode":"container:c"}}`,
		`{"Image":"x","NetworkingConfig":{"EndpointsConfig":{"HOST":null}}}`,
		`{"Image":"x","HostConfig":[{"Privileged":true}]}`,
		`{"Image":1e400,"HostConfig":{"Privileged":true}}`,
		`{"Image":"x","Labels":{"k":"1","K":"2"}}`,
		`{"\u0049mage":"x","H\u006fstConfig":{"Pr\u0069vileged":true}}`,
		` {"Image":"x"} `,
		`null`,
		`[]`,
		`{"Image":"x","HostConfig":{"Privileged":tru}}`,
		`{"Image":"x","Hostname":01}`,
		`{"Image":"x","Hostname":"\q"}`,
		"{\"Image\":\"x\",\"Hostname\":\"a\tb\"}",
		`{"Image":"x","HostConfig":{"Sysctls":{"kernel.a":"1","kernel.b":"2","kernel.c":"3"}}}`,
		`{"Image":"x","Mounts":[{"Type":"volume","VolumeOptions":{"DriverConfig":{"Options":{"a":"1","b":"2","c":"3"}}}}]}`,
		`{"Image":"x","\u0048\u006f\u0073\u0074\u0043onfig":{"Ma\u017F\u212AedPaths":[]},"Privileged\ud800":true}`,
		"{\"Image\":\"x\",\"HostConfig\":{\"Privileged\\u0000\":true,\"Privileged\xff\":true,\"Pr\u0131vileged\":true}}",
	}, createBodySeeds...)
	for _, seed := range seeds {
		f.Add([]byte(seed))
	}
	rules := mustParse(f, differentialPolicy).Rules
	f.Fuzz(func(t *testing.T, data []byte) {
		compareCreateDecoding(t, rules, data)
		err := checkJSONKeys(data)
		if err == nil && !json.Valid(data) {
			t.Fatalf("body %q: checkJSONKeys accepts invalid JSON", data)
		}
		if err != nil && json.Valid(data) && !strings.HasPrefix(err.Error(), "duplicate key") &&
			!strings.HasPrefix(err.Error(), "JSON nests deeper") {
			t.Fatalf("body %q: checkJSONKeys rejects valid JSON: %v", data, err)
		}
	})
}
