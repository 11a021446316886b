package runfile

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// tree creates files (and their folders) under a temp dir; a name ending in
// "/" is a folder.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const sample = `version: 1
common:
  resourcesPath: ./components
  configFilePath: ./config.yaml
  logLevel: debug
  env:
    DEBUG: true
    SHARED: common
apps:
  - appID: frontend
    appDirPath: ./frontend/
    appPort: 3000
    command: ["node", "app.js"]
    env:
      SHARED: app
  - appDirPath: ./order-processor
    appPort: 5000
    appProtocol: grpc
    resourcesPaths: [./res]
    configFilePath: cfg.yaml
    logLevel: warn
    daprHTTPPort: 3501
    appLogDestination: console
    command: ["python3", "app.py"]
    mysteryKey: 1
unknownTop: x
`

func TestLoadResolvesAndMerges(t *testing.T) {
	root := tree(t, map[string]string{
		"dapr.yaml":                        sample,
		"components/statestore.yaml":       "x",
		"config.yaml":                      "x",
		"frontend/app.js":                  "",
		"order-processor/app.py":           "",
		"order-processor/res/":             "",
		"order-processor/cfg.yaml":         "x",
		"order-processor/.dapr/resources/": "",
	})
	// A directory argument finds dapr.yaml in it.
	tpl, err := Load(root, Defaults{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(tpl.Apps) != 2 {
		t.Fatalf("apps = %d", len(tpl.Apps))
	}
	fe, op := tpl.Apps[0], tpl.Apps[1]

	if fe.AppID != "frontend" || fe.AppDirPath != filepath.Join(root, "frontend") {
		t.Errorf("frontend id/dir = %q %q", fe.AppID, fe.AppDirPath)
	}
	// Common paths resolve against the template's folder.
	if want := []string{filepath.Join(root, "components")}; !reflect.DeepEqual(fe.ResourcesPaths, want) {
		t.Errorf("frontend resources = %v, want %v", fe.ResourcesPaths, want)
	}
	if fe.ConfigFile != filepath.Join(root, "config.yaml") {
		t.Errorf("frontend config = %q", fe.ConfigFile)
	}
	if fe.LogLevel != "debug" || fe.AppProtocol != "http" {
		t.Errorf("frontend merged logLevel/protocol = %q/%q", fe.LogLevel, fe.AppProtocol)
	}
	if want := (Env{"DEBUG": "true", "SHARED": "app"}); !reflect.DeepEqual(fe.Env, want) {
		t.Errorf("frontend env = %v, want %v", fe.Env, want)
	}
	if fe.AppLogDestination != DestFileAndConsole || fe.DaprdLogDestination != DestFile {
		t.Errorf("frontend log destinations = %q/%q", fe.AppLogDestination, fe.DaprdLogDestination)
	}

	// App id defaults to the folder name; the app's own paths resolve
	// against its appDirPath and beat .dapr/resources and common.
	if op.AppID != "order-processor" {
		t.Errorf("second app id = %q", op.AppID)
	}
	if want := []string{filepath.Join(root, "order-processor", "res")}; !reflect.DeepEqual(op.ResourcesPaths, want) {
		t.Errorf("order-processor resources = %v, want %v", op.ResourcesPaths, want)
	}
	if op.ConfigFile != filepath.Join(root, "order-processor", "cfg.yaml") {
		t.Errorf("order-processor config = %q", op.ConfigFile)
	}
	if op.LogLevel != "warn" || op.AppProtocol != "grpc" || op.HTTPPort != 3501 || op.AppPort != 5000 {
		t.Errorf("order-processor fields: %+v", op)
	}
	if !reflect.DeepEqual(op.Command, []string{"python3", "app.py"}) {
		t.Errorf("command = %v", op.Command)
	}
	if op.AppLogDestination != DestConsole {
		t.Errorf("appLogDestination = %q", op.AppLogDestination)
	}

	joined := strings.Join(tpl.Warnings, "\n")
	for _, want := range []string{"unknownTop", "apps[1].mysteryKey"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings lack %q: %v", want, tpl.Warnings)
		}
	}
	if len(tpl.Warnings) != 2 {
		t.Errorf("warnings = %v, want exactly 2", tpl.Warnings)
	}
}

func TestLoadDefaultsPrecedence(t *testing.T) {
	root := tree(t, map[string]string{
		"run.yaml":            "version: 1\napps:\n- appDirPath: a\n- appDirPath: b\n",
		"a/.dapr/resources/":  "",
		"a/.dapr/config.yaml": "x",
		"b/":                  "",
		"home/components/":    "",
		"home/config.yaml":    "x",
	})
	def := Defaults{ResourcesDir: filepath.Join(root, "home", "components"), ConfigFile: filepath.Join(root, "home", "config.yaml")}
	tpl, err := Load(filepath.Join(root, "run.yaml"), def)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	a, b := tpl.Apps[0], tpl.Apps[1]
	if !reflect.DeepEqual(a.ResourcesPaths, []string{filepath.Join(root, "a", ".dapr", "resources")}) || a.ConfigFile != filepath.Join(root, "a", ".dapr", "config.yaml") {
		t.Errorf("app a should use its .dapr folder: %v %q", a.ResourcesPaths, a.ConfigFile)
	}
	if !reflect.DeepEqual(b.ResourcesPaths, []string{def.ResourcesDir}) || b.ConfigFile != def.ConfigFile {
		t.Errorf("app b should use the defaults: %v %q", b.ResourcesPaths, b.ConfigFile)
	}

	// Defaults that do not exist are not used.
	tpl, err = Load(filepath.Join(root, "run.yaml"), Defaults{ResourcesDir: filepath.Join(root, "nope"), ConfigFile: filepath.Join(root, "nope.yaml")})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if b := tpl.Apps[1]; len(b.ResourcesPaths) != 0 || b.ConfigFile != "" {
		t.Errorf("missing defaults were used: %v %q", b.ResourcesPaths, b.ConfigFile)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name     string
		template string
		want     string
	}{
		{"no apps", "version: 1\n", "no apps given"},
		{"missing appDirPath", "version: 1\napps:\n- appID: x\n", "required field 'appDirPath' is missing"},
		{"appDirPath not a dir", "version: 1\napps:\n- appDirPath: ./nope\n", "is not a directory"},
		{"duplicate ids", "version: 1\napps:\n- appDirPath: a\n- appID: a\n  appDirPath: b\n", `app id "a" is already used`},
		{"bad version", "version: 2\napps:\n- appDirPath: a\n", "version 2 is not supported"},
		{"bad yaml", "version: 1\napps: [\n", "run template"},
		{"wrong type", "version: 1\napps:\n- appDirPath: a\n  appPort: lots\n", "run template"},
		{"missing resources", "version: 1\napps:\n- appDirPath: a\n  resourcesPaths: [./gone]\n", "resources path"},
		{"missing common config", "version: 1\ncommon:\n  configFilePath: nope.yaml\napps:\n- appDirPath: a\n", "common: configFilePath"},
		{"bad log destination", "version: 1\napps:\n- appDirPath: a\n  appLogDestination: syslog\n", "not one of console, file, fileAndConsole"},
		{"bad port", "version: 1\napps:\n- appDirPath: a\n  appPort: 70000\n", "appPort 70000 is out of range"},
		{"empty", "", "empty file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tree(t, map[string]string{"dapr.yaml": tt.template, "a/": "", "b/": ""})
			_, err := Load(filepath.Join(root, "dapr.yaml"), Defaults{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "absent.yaml"), Defaults{}); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}

func TestMissingVersionWarns(t *testing.T) {
	root := tree(t, map[string]string{"dapr.yaml": "apps:\n- appDirPath: .\n  command: [echo]\n"})
	tpl, err := Load(root, Defaults{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(tpl.Warnings) != 1 || !strings.Contains(tpl.Warnings[0], "no version") {
		t.Fatalf("warnings = %v", tpl.Warnings)
	}
	if tpl.Apps[0].AppID != filepath.Base(root) {
		t.Fatalf("app id = %q, want the folder name", tpl.Apps[0].AppID)
	}
}
