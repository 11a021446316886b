package runfile

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// DefaultFileName is the template file looked for in a directory.
const DefaultFileName = "dapr.yaml"

// Log destinations for appLogDestination and daprdLogDestination.
const (
	DestConsole        = "console"
	DestFile           = "file"
	DestFileAndConsole = "fileAndConsole"
)

// Shared holds the settings allowed both under `common` and in an app.
type Shared struct {
	ConfigFile           string   `json:"configFilePath,omitempty"`
	AppProtocol          string   `json:"appProtocol,omitempty"`
	APIListenAddresses   string   `json:"apiListenAddresses,omitempty"`
	EnableProfiling      bool     `json:"enableProfiling,omitempty"`
	LogLevel             string   `json:"logLevel,omitempty"`
	MaxConcurrency       int      `json:"appMaxConcurrency,omitempty"`
	PlacementHostAddress string   `json:"placementHostAddress,omitempty"`
	SchedulerHostAddress string   `json:"schedulerHostAddress,omitempty"`
	ComponentsPath       string   `json:"componentsPath,omitempty"` // deprecated alias of resourcesPath
	ResourcesPath        string   `json:"resourcesPath,omitempty"`  // deprecated: use resourcesPaths
	ResourcesPaths       []string `json:"resourcesPaths,omitempty"`
	AppSSL               bool     `json:"appSSL,omitempty"`
	MaxRequestBodySize   int      `json:"daprHTTPMaxRequestSize,omitempty"`
	HTTPReadBufferSize   int      `json:"daprHTTPReadBufferSize,omitempty"`
	EnableAppHealth      bool     `json:"enableAppHealthCheck,omitempty"`
	AppHealthPath        string   `json:"appHealthCheckPath,omitempty"`
	AppHealthInterval    int      `json:"appHealthProbeInterval,omitempty"`
	AppHealthTimeout     int      `json:"appHealthProbeTimeout,omitempty"`
	AppHealthThreshold   int      `json:"appHealthThreshold,omitempty"`
	EnableAPILogging     bool     `json:"enableApiLogging,omitempty"`
	RuntimePath          string   `json:"runtimePath,omitempty"` // ignored: the sidecar is this binary
	Env                  Env      `json:"env,omitempty"`
	DaprdLogDestination  string   `json:"daprdLogDestination,omitempty"`
	AppLogDestination    string   `json:"appLogDestination,omitempty"`
}

// App is one app of the template, merged with `common` and resolved by Load.
type App struct {
	Shared
	AppID             string   `json:"appID,omitempty"`
	AppDirPath        string   `json:"appDirPath,omitempty"`
	AppChannelAddress string   `json:"appChannelAddress,omitempty"`
	AppPort           int      `json:"appPort,omitempty"`
	HTTPPort          int      `json:"daprHTTPPort,omitempty"`
	GRPCPort          int      `json:"daprGRPCPort,omitempty"`
	InternalGRPCPort  int      `json:"daprInternalGRPCPort,omitempty"`
	MetricsPort       int      `json:"metricsPort,omitempty"`
	ProfilePort       int      `json:"profilePort,omitempty"`
	UnixDomainSocket  string   `json:"unixDomainSocket,omitempty"`
	Command           []string `json:"command,omitempty"`
	ContainerImage    string   `json:"containerImage,omitempty"` // Kubernetes only; ignored
	CreateService     bool     `json:"createService,omitempty"`  // Kubernetes only; ignored
}

// Template is a loaded run template.
type Template struct {
	Path     string // absolute path of the file
	Version  int
	Name     string
	Apps     []App
	Warnings []string // keys we ignore, deprecated spellings
}

type fileFormat struct {
	Version int    `json:"version"`
	Name    string `json:"name,omitempty"`
	Common  Shared `json:"common"`
	Apps    []App  `json:"apps"`
}

// Env is an app's environment; YAML scalars of any type become strings.
type Env map[string]string

// UnmarshalJSON accepts string, number, bool and null values.
func (e *Env) UnmarshalJSON(b []byte) error {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("env must be a map of names to values: %w", err)
	}
	out := make(Env, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case nil:
			out[k] = ""
		case string:
			out[k] = v
		case float64, bool:
			out[k] = fmt.Sprint(v)
		default:
			return fmt.Errorf("env %s: value must be a scalar, got %T", k, v)
		}
	}
	*e = out
	return nil
}

// Defaults are used for an app that names no resources or config and has
// no <appDir>/.dapr/resources or <appDir>/.dapr/config.yaml. Each is used
// only if it exists.
type Defaults struct {
	ResourcesDir string
	ConfigFile   string
}

// Load reads and resolves the template at path (a file, or a directory
// holding dapr.yaml).
func Load(path string, def Defaults) (*Template, error) {
	if path == "" {
		path = "."
	}
	path = expandHome(path)
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, DefaultFileName)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("run template %s: %w", path, err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("read run template: %w", err)
	}
	t, f, err := parse(data, abs)
	if err != nil {
		return nil, err
	}
	if err := t.resolve(f, def); err != nil {
		return nil, err
	}
	return t, nil
}

// parse decodes a template; file names it in messages.
func parse(data []byte, file string) (*Template, *fileFormat, error) {
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, nil, fmt.Errorf("run template %s: %w", file, err)
	}
	if raw == nil {
		return nil, nil, fmt.Errorf("run template %s: empty file", file)
	}
	var f fileFormat
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, nil, fmt.Errorf("run template %s: %w", file, err)
	}
	t := &Template{Path: file, Version: f.Version, Name: f.Name}
	t.Warnings = unknownKeys(raw, reflect.TypeOf(fileFormat{}), "")
	for i := range t.Warnings {
		t.Warnings[i] = fmt.Sprintf("%s: ignoring unknown key %s", file, t.Warnings[i])
	}
	switch {
	case f.Version == 0:
		t.Warnings = append(t.Warnings, fmt.Sprintf("%s: no version given; reading it as version 1", file))
	case f.Version != 1:
		return nil, nil, fmt.Errorf("run template %s: version %d is not supported (want 1)", file, f.Version)
	}
	if len(f.Apps) == 0 {
		return nil, nil, fmt.Errorf("run template %s: no apps given (want a list under 'apps')", file)
	}
	for i, a := range f.Apps {
		if a.AppDirPath == "" {
			return nil, nil, fmt.Errorf("run template %s: apps[%d]%s: required field 'appDirPath' is missing", file, i, idSuffix(a.AppID))
		}
		if a.ContainerImage != "" || a.CreateService {
			t.Warnings = append(t.Warnings, fmt.Sprintf("%s: apps[%d]%s: containerImage and createService are for Kubernetes and are ignored", file, i, idSuffix(a.AppID)))
		}
	}
	return t, &f, nil
}

func idSuffix(id string) string {
	if id == "" {
		return ""
	}
	return " (" + id + ")"
}

// merge returns app with every zero field taken from common; env maps merge
// with the app's values winning.
func merge(common, app Shared) Shared {
	cv := reflect.ValueOf(common)
	av := reflect.ValueOf(&app).Elem()
	for i := 0; i < av.NumField(); i++ {
		if av.Field(i).IsZero() {
			av.Field(i).Set(cv.Field(i))
		}
	}
	if len(common.Env) > 0 {
		env := make(Env, len(common.Env)+len(app.Env))
		for k, v := range common.Env {
			env[k] = v
		}
		for k, v := range app.Env {
			env[k] = v
		}
		app.Env = env
	}
	return app
}

// resolvePaths makes s's config and resources paths absolute against base
// (checking they exist) and folds the deprecated single-path spellings into
// ResourcesPaths.
func resolvePaths(s *Shared, base string) error {
	var err error
	if s.ConfigFile, err = existing(base, s.ConfigFile); err != nil {
		return fmt.Errorf("configFilePath: %w", err)
	}
	var paths []string
	for _, p := range append(append([]string(nil), s.ResourcesPaths...), s.ResourcesPath, s.ComponentsPath) {
		if p == "" {
			continue
		}
		r, err := existing(base, p)
		if err != nil {
			return fmt.Errorf("resources path: %w", err)
		}
		if !contains(paths, r) {
			paths = append(paths, r)
		}
	}
	s.ResourcesPaths, s.ResourcesPath, s.ComponentsPath = paths, "", ""
	return nil
}

// existing resolves p against base and checks it exists ("" stays "").
func existing(base, p string) (string, error) {
	if p == "" {
		return "", nil
	}
	p = absPath(base, p)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s does not exist", p)
	}
	return p, nil
}

// resolve makes paths absolute, checks they exist, applies precedence and
// defaults, merges common into the apps and validates them.
func (t *Template) resolve(f *fileFormat, def Defaults) error {
	base := filepath.Dir(t.Path)
	common := f.Common
	if err := resolvePaths(&common, base); err != nil {
		return fmt.Errorf("run template %s: common: %w", t.Path, err)
	}
	seen := map[string]int{}
	for i, a := range f.Apps {
		where := fmt.Sprintf("run template %s: apps[%d]%s", t.Path, i, idSuffix(a.AppID))
		dir := absPath(base, a.AppDirPath)
		if !isDir(dir) {
			return fmt.Errorf("%s: appDirPath %s is not a directory", where, dir)
		}
		a.AppDirPath = dir
		if a.AppID == "" {
			a.AppID = filepath.Base(dir)
		}
		if j, dup := seen[a.AppID]; dup {
			return fmt.Errorf("%s: app id %q is already used by apps[%d]", where, a.AppID, j)
		}
		seen[a.AppID] = i

		// The app's own paths are relative to its appDirPath.
		if err := resolvePaths(&a.Shared, dir); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		// Precedence as in the dapr CLI: the app's own setting, then
		// <appDir>/.dapr/…, then common, then the defaults.
		if len(a.ResourcesPaths) == 0 {
			switch p := filepath.Join(dir, ".dapr", "resources"); {
			case isDir(p):
				a.ResourcesPaths = []string{p}
			case len(common.ResourcesPaths) > 0:
				a.ResourcesPaths = append([]string(nil), common.ResourcesPaths...)
			case def.ResourcesDir != "" && isDir(def.ResourcesDir):
				a.ResourcesPaths = []string{def.ResourcesDir}
			}
		}
		if a.ConfigFile == "" {
			switch p := filepath.Join(dir, ".dapr", "config.yaml"); {
			case isFile(p):
				a.ConfigFile = p
			case common.ConfigFile != "":
				a.ConfigFile = common.ConfigFile
			case def.ConfigFile != "" && isFile(def.ConfigFile):
				a.ConfigFile = def.ConfigFile
			}
		}
		a.Shared = merge(common, a.Shared)
		if a.RuntimePath != "" {
			t.Warnings = append(t.Warnings, fmt.Sprintf("%s: runtimePath is ignored: the sidecar is this outrigger binary", where))
			a.RuntimePath = ""
		}
		if a.AppProtocol == "" {
			a.AppProtocol = "http"
		}
		if a.AppLogDestination == "" {
			a.AppLogDestination = DestFileAndConsole
		}
		if a.DaprdLogDestination == "" {
			a.DaprdLogDestination = DestFile
		}
		for _, d := range []struct{ name, v string }{{"appLogDestination", a.AppLogDestination}, {"daprdLogDestination", a.DaprdLogDestination}} {
			if d.v != DestConsole && d.v != DestFile && d.v != DestFileAndConsole {
				return fmt.Errorf("%s: %s %q is not one of console, file, fileAndConsole", where, d.name, d.v)
			}
		}
		for _, p := range []struct {
			name string
			v    int
		}{{"appPort", a.AppPort}, {"daprHTTPPort", a.HTTPPort}, {"daprGRPCPort", a.GRPCPort}, {"daprInternalGRPCPort", a.InternalGRPCPort}, {"metricsPort", a.MetricsPort}} {
			if p.v < -1 || p.v > 65535 {
				return fmt.Errorf("%s: %s %d is out of range", where, p.name, p.v)
			}
		}
		t.Apps = append(t.Apps, a)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func absPath(base, p string) string {
	p = expandHome(p)
	if !filepath.IsAbs(p) {
		p = filepath.Join(base, p)
	}
	return filepath.Clean(p)
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func isDir(p string) bool { fi, err := os.Stat(p); return err == nil && fi.IsDir() }

func isFile(p string) bool { fi, err := os.Stat(p); return err == nil && !fi.IsDir() }

// unknownKeys lists keys of raw (a decoded YAML mapping) that t's JSON
// fields do not know, as dotted paths. Matching is case-insensitive, as the
// decoder's is.
func unknownKeys(raw map[string]any, t reflect.Type, prefix string) []string {
	fields := map[string]reflect.Type{}
	collectFields(t, fields)
	var out []string
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ft, ok := fields[strings.ToLower(k)]
		if !ok {
			out = append(out, prefix+k)
			continue
		}
		switch v := raw[k].(type) {
		case map[string]any:
			if ft.Kind() == reflect.Struct {
				out = append(out, unknownKeys(v, ft, prefix+k+".")...)
			}
		case []any:
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				for i, item := range v {
					if m, ok := item.(map[string]any); ok {
						out = append(out, unknownKeys(m, ft.Elem(), fmt.Sprintf("%s%s[%d].", prefix, k, i))...)
					}
				}
			}
		}
	}
	return out
}

func collectFields(t reflect.Type, into map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			collectFields(f.Type, into)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		into[strings.ToLower(name)] = f.Type
	}
}
