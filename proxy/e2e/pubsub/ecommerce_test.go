package pubsube2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
	"github.com/redis/go-redis/v9"
	"sigs.k8s.io/yaml"
)

var ecommerceDir = filepath.Join("..", "..", "..", "examples", "ecommerce")

// TestEcommerceComponentsAgree: the three components folders of the
// example differ only in pubsub.yaml: the subscriptions are the same file,
// and each pubsub.yaml is a component named "pubsub" of the right type.
func TestEcommerceComponentsAgree(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile(filepath.Join(ecommerceDir, "components", "subscriptions.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for dir, typ := range map[string]string{"components": "pubsub.sqlite", "components-redis": "pubsub.redis", "components-kafka": "pubsub.kafka"} {
		got, err := os.ReadFile(filepath.Join(ecommerceDir, dir, "subscriptions.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s/subscriptions.yaml differs from components/subscriptions.yaml: keep them the same", dir)
		}
		var c struct {
			Kind     string
			Metadata struct{ Name string }
			Spec     struct{ Type string }
		}
		b, err := os.ReadFile(filepath.Join(ecommerceDir, dir, "pubsub.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s/pubsub.yaml: %v", dir, err)
		}
		if c.Kind != "Component" || c.Metadata.Name != "pubsub" || c.Spec.Type != typ {
			t.Errorf("%s/pubsub.yaml: kind %q name %q type %q, want Component pubsub %s", dir, c.Kind, c.Metadata.Name, c.Spec.Type, typ)
		}
	}
}

// TestEcommerceLoad runs examples/ecommerce/run.yaml with `outrigger run
// -f` (apps on free ports, the broker an SQLite file of the test's own, the
// example's subscriptions unchanged) and the example's load checker with
// N=50: every service must see every order as expected. Then the same apps
// again on components-redis/ (the local Redis; the example's streams
// "orders" and "bills" are deleted before and after).
func TestEcommerceLoad(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { ecommerceLoad(t, "components") })
	t.Run("redis", func(t *testing.T) {
		e2etest.NeedServer(t, "Redis", redisAddr, "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''")
		deleteStreams := func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			rc := redis.NewClient(&redis.Options{Addr: redisAddr})
			defer rc.Close()
			_ = rc.Del(ctx, "orders", "bills").Err()
		}
		deleteStreams()
		t.Cleanup(deleteStreams)
		ecommerceLoad(t, "components-redis")
	})
}

// ecommerceLoad runs the example on the components folder given.
func ecommerceLoad(t *testing.T, components string) {
	for _, bin := range []string{"node", "python3", "go"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("the example needs %s on PATH: %v", bin, err)
		}
	}
	example, err := filepath.Abs(ecommerceDir)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()

	// The components: the example's subscriptions and component; the
	// sqlite one pointed at a file of this test.
	res := filepath.Join(work, "components")
	if err := os.Mkdir(res, 0o755); err != nil {
		t.Fatal(err)
	}
	subs, err := os.ReadFile(filepath.Join(example, components, "subscriptions.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	comp, err := os.ReadFile(filepath.Join(example, components, "pubsub.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if components == "components" {
		const exampleDB = "/tmp/outrigger-ecommerce-pubsub.db"
		if !bytes.Contains(comp, []byte(exampleDB)) {
			t.Fatalf("components/pubsub.yaml no longer uses %s; update this test", exampleDB)
		}
		comp = bytes.ReplaceAll(comp, []byte(exampleDB), []byte(filepath.Join(work, "pubsub.db")))
	}
	for name, b := range map[string][]byte{"subscriptions.yaml": subs, "pubsub.yaml": comp} {
		if err := os.WriteFile(filepath.Join(res, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The run template: the example's, with absolute app folders, free app
	// ports and logs on the console.
	raw, err := os.ReadFile(filepath.Join(example, "run.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tpl map[string]any
	if err := yaml.Unmarshal(raw, &tpl); err != nil {
		t.Fatalf("run.yaml: %v", err)
	}
	tpl["common"] = map[string]any{"resourcesPath": res}
	apps, _ := tpl["apps"].([]any)
	ports := map[string]int{}
	for _, a := range apps {
		app := a.(map[string]any)
		id := fmt.Sprint(app["appID"])
		ports[id] = e2etest.FreePort(t)
		app["appPort"] = ports[id]
		app["appDirPath"] = filepath.Join(example, fmt.Sprint(app["appDirPath"]))
		app["appLogDestination"] = "console"
		app["daprdLogDestination"] = "console"
	}
	for _, id := range []string{"order", "billing", "notification", "shipping"} {
		if ports[id] == 0 {
			t.Fatalf("run.yaml has no app %q (apps: %v)", id, ports)
		}
	}
	out, err := yaml.Marshal(tpl)
	if err != nil {
		t.Fatal(err)
	}
	runFile := filepath.Join(work, "run.yaml")
	if err := os.WriteFile(runFile, out, 0o644); err != nil {
		t.Fatal(err)
	}

	home := filepath.Join(work, "home")
	run := startProc(t, "outrigger run -f", e2etest.CleanEnv([]string{appModeEnv}, "OUTRIGGER_HOME="+home), work, outrigger, "run", "-f", runFile)

	// Ready: four sidecars registered and healthy, four apps answering /stats.
	e2etest.WaitFor(t, 120*time.Second, "the four sidecars and apps of the run", func() bool {
		if run.Exited() {
			t.Fatalf("outrigger run exited: %v", run.Err())
		}
		healthy := 0
		files, _ := filepath.Glob(filepath.Join(home, "run", "*.json"))
		for _, f := range files {
			var reg struct {
				HTTPPort int `json:"httpPort"`
			}
			b, err := os.ReadFile(f)
			if err != nil || json.Unmarshal(b, &reg) != nil {
				continue
			}
			r, err := tryDo(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(reg.HTTPPort)+"/v1.0/healthz", nil, nil, time.Second)
			if err == nil && r.status == http.StatusNoContent {
				healthy++
			}
		}
		if healthy < 4 {
			return false
		}
		for _, p := range ports {
			r, err := tryDo(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(p)+"/stats", nil, nil, time.Second)
			if err != nil || r.status != http.StatusOK {
				return false
			}
		}
		return true
	})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	url := func(id string) string { return "http://127.0.0.1:" + strconv.Itoa(ports[id]) }
	load := exec.CommandContext(ctx, loadBin, "-n", "50", "-timeout", "60s",
		"-order", url("order"), "-billing", url("billing"), "-notification", url("notification"), "-shipping", url("shipping"))
	report, err := load.CombinedOutput()
	t.Logf("load -n 50:\n%s", report)
	if err != nil {
		t.Fatalf("the load check failed: %v", err)
	}
	if !strings.Contains(string(report), "OK: every service saw every order") {
		t.Errorf("load exited 0 without its OK line")
	}
	for _, line := range strings.Split(string(report), "\n") {
		if strings.HasPrefix(line, "  ") && strings.Contains(line, "expected") && !strings.HasSuffix(line, " ok") {
			t.Errorf("load line not ok: %s", line)
		}
	}
}
