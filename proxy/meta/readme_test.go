package meta

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"

	"github.com/outrigger/outrigger/plugins/host"
	"github.com/outrigger/outrigger/proxy/resources"
)

// requiredSections are the README headings every plugin has, in this order.
var requiredSections = []string{"Name", "Description", "Metadata", "Examples"}

// embeddedDefaults are the plugins `outrigger init` configures; their README
// example is also provisioned for real. The function points the example at
// throw-away storage.
var embeddedDefaults = map[string]func(t *testing.T, c *resources.Component){
	"state.sqlite": func(t *testing.T, c *resources.Component) {
		setMetadata(c, "connectionString", filepath.Join(t.TempDir(), "state.db"))
	},
}

// readme is what the test reads from a plugin's README.md.
type readme struct {
	headings []heading // level-2 headings, outside code fences
	blocks   []block   // fenced blocks tagged "yaml component"
	lines    []string
}

type heading struct {
	title string
	line  int // 1-based
}

type block struct {
	line int // 1-based line of the opening fence
	text string
}

func parseReadme(r io.Reader) (*readme, error) {
	rd := &readme{}
	sc := bufio.NewScanner(r)
	var fence string // the opening fence while inside a code block
	var cur *block
	var body strings.Builder
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		rd.lines = append(rd.lines, line)
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, "`~") == "" {
				if cur != nil {
					cur.text = body.String()
					rd.blocks = append(rd.blocks, *cur)
				}
				fence, cur = "", nil
				continue
			}
			if cur != nil {
				body.WriteString(line + "\n")
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			marker := trimmed[:3]
			fence = trimmed[:len(trimmed)-len(strings.TrimLeft(trimmed, marker[:1]))]
			info := strings.Fields(strings.TrimLeft(trimmed, marker[:1]))
			if slices.Equal(info, []string{"yaml", "component"}) {
				cur = &block{line: n}
				body.Reset()
			}
			continue
		}
		if t, ok := strings.CutPrefix(line, "## "); ok {
			rd.headings = append(rd.headings, heading{title: strings.TrimSpace(t), line: n})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if fence != "" {
		return nil, fmt.Errorf("a code block opened with %s is never closed", fence)
	}
	return rd, nil
}

// section returns the lines under the level-2 heading title, up to the next one.
func (rd *readme) section(title string) []string {
	for i, h := range rd.headings {
		if h.title != title {
			continue
		}
		end := len(rd.lines)
		if i+1 < len(rd.headings) {
			end = rd.headings[i+1].line - 1
		}
		return rd.lines[h.line:end]
	}
	return nil
}

var tableSeparator = regexp.MustCompile(`^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$`)

// hasTable reports a Markdown table: a row of cells followed by a separator row.
func hasTable(lines []string) bool {
	for i := 1; i < len(lines); i++ {
		if tableSeparator.MatchString(lines[i]) && strings.Contains(lines[i-1], "|") {
			return true
		}
	}
	return false
}

// checkSections returns what is wrong with a README's headings and
// metadata table (nothing when it is fine).
func checkSections(rd *readme) []string {
	var problems []string
	next := 0
	for _, h := range rd.headings {
		if next < len(requiredSections) && h.title == requiredSections[next] {
			next++
		}
	}
	if next < len(requiredSections) {
		var got []string
		for _, h := range rd.headings {
			got = append(got, h.title)
		}
		problems = append(problems, fmt.Sprintf("level-2 headings %q; want %q in that order (missing or out of order: ## %s)",
			got, requiredSections, requiredSections[next]))
	}
	if !hasTable(rd.section("Metadata")) {
		problems = append(problems, "the ## Metadata section has no table")
	}
	return problems
}

// plugin is one plugins/<kind>/<name>/ folder with a main.go.
type plugin struct {
	kind, name, dir string
}

func (p plugin) typ() string { return p.kind + "." + p.name }

func pluginDirs(t *testing.T, root string) []plugin {
	t.Helper()
	mains, err := filepath.Glob(filepath.Join(root, "plugins", "*", "*", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	var ps []plugin
	for _, m := range mains {
		dir := filepath.Dir(m)
		ps = append(ps, plugin{kind: filepath.Base(filepath.Dir(dir)), name: filepath.Base(dir), dir: dir})
	}
	if len(ps) == 0 {
		t.Fatalf("no plugins/<kind>/<name>/main.go under %s", root)
	}
	return ps
}

// loadBlock writes a yaml component block to a fresh folder and loads it
// through the real Component loader.
func loadBlock(t *testing.T, b block) (*resources.Set, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "component.yaml"), []byte(b.text), 0o644); err != nil {
		t.Fatal(err)
	}
	return resources.Load(context.Background(), []string{dir}, "meta-test", nil)
}

func ofType(set *resources.Set, typ string) (resources.Component, bool) {
	for _, c := range set.Components {
		if c.Type == typ {
			return c, true
		}
	}
	return resources.Component{}, false
}

func setMetadata(c *resources.Component, name, value string) {
	items := slices.Clone(c.Metadata)
	for i := range items {
		if items[i].Name == name {
			items[i] = resources.MetadataItem{Name: name, Value: value}
			c.Metadata = items
			return
		}
	}
	c.Metadata = append(items, resources.MetadataItem{Name: name, Value: value})
}

// TestPluginReadmes checks every plugin's README.md: the sections in order,
// a metadata table, and example Component YAML that the real loader accepts
// as a component of the plugin's type.
func TestPluginReadmes(t *testing.T) {
	root := repoRoot(t)
	for _, p := range pluginDirs(t, root) {
		t.Run(p.typ(), func(t *testing.T) {
			rel, _ := filepath.Rel(root, filepath.Join(p.dir, "README.md"))
			f, err := os.Open(filepath.Join(p.dir, "README.md"))
			if err != nil {
				t.Fatalf("plugin %s has no README.md: %v", p.typ(), err)
			}
			defer f.Close()
			rd, err := parseReadme(f)
			if err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			for _, problem := range checkSections(rd) {
				t.Errorf("%s: %s", rel, problem)
			}
			// Examples load through the real loader.
			if len(rd.blocks) == 0 {
				t.Errorf("%s: no ```yaml component example", rel)
			}
			for _, b := range rd.blocks {
				set, err := loadBlock(t, b)
				if err != nil {
					t.Errorf("%s:%d: example does not load: %v", rel, b.line, err)
					continue
				}
				if _, ok := ofType(set, p.typ()); !ok {
					t.Errorf("%s:%d: example loads %d components, none of type %s", rel, b.line, len(set.Components), p.typ())
				}
			}
		})
	}
}

// TestEmbeddedDefaultExampleInits builds each embedded default plugin,
// launches it through plugins/host and Inits its README's first example
// (pointed at a temporary file), then stores and reads a key through it.
func TestEmbeddedDefaultExampleInits(t *testing.T) {
	root := repoRoot(t)
	plugins := map[string]plugin{}
	for _, p := range pluginDirs(t, root) {
		plugins[p.typ()] = p
	}
	for typ, adjust := range embeddedDefaults {
		t.Run(typ, func(t *testing.T) {
			p, ok := plugins[typ]
			if !ok {
				t.Fatalf("embedded default %s has no plugins/<kind>/<name>/main.go", typ)
			}
			f, err := os.Open(filepath.Join(p.dir, "README.md"))
			if err != nil {
				t.Fatal(err)
			}
			rd, err := parseReadme(f)
			f.Close()
			if err != nil || len(rd.blocks) == 0 {
				t.Fatalf("README of %s: no yaml component example (%v)", typ, err)
			}
			set, err := loadBlock(t, rd.blocks[0])
			if err != nil {
				t.Fatalf("README example: %v", err)
			}
			comp, ok := ofType(set, typ)
			if !ok {
				t.Fatalf("README example has no %s component", typ)
			}
			adjust(t, &comp)

			pluginsDir := t.TempDir()
			bin := filepath.Join(pluginsDir, p.kind+"-"+p.name)
			if out, err := exec.Command("go", "build", "-o", bin, p.dir).CombinedOutput(); err != nil {
				t.Fatalf("go build %s: %v\n%s", p.dir, err, out)
			}
			h, err := host.New(host.Config{PluginsDir: pluginsDir, SocketsDir: t.TempDir(),
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatalf("host.New: %v", err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := h.Close(ctx); err != nil {
					t.Errorf("host.Close: %v", err)
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := h.Provision(ctx, comp)
			if err != nil {
				t.Fatalf("Provision of the README example: %v", err)
			}
			t.Logf("%s from the README: features %v", typ, c.Features())
			if p.kind == "state" {
				cl := componentsv1.NewStateStoreClient(c.Conn())
				if _, err := cl.Set(ctx, &componentsv1.SetRequest{Key: "readme", Value: []byte(`"ok"`)}); err != nil {
					t.Fatalf("Set: %v", err)
				}
				got, err := cl.Get(ctx, &componentsv1.GetRequest{Key: "readme"})
				if err != nil || string(got.GetData()) != `"ok"` {
					t.Fatalf("Get = %q, %v", got.GetData(), err)
				}
			}
		})
	}
}

// TestReadmeChecker proves the README checks catch what they promise to.
func TestReadmeChecker(t *testing.T) {
	const table = "| field | meaning |\n| --- | --- |\n| `a` | b |\n"
	cases := []struct {
		name, text string
		problems   int
		blocks     int
	}{
		{"good", "# x\n## Name\n\n## Description\n\n## Metadata\n" + table + "## Examples\n```yaml component\nkind: Component\n```\n", 0, 1},
		{"out of order", "## Name\n## Metadata\n" + table + "## Description\n## Examples\n", 1, 0},
		{"missing examples", "## Name\n## Description\n## Metadata\n" + table, 1, 0},
		{"no table", "## Name\n## Description\n## Metadata\n| just a pipe\n## Examples\n", 1, 0},
		{"table in another section", "## Name\n" + table + "## Description\n## Metadata\n## Examples\n", 1, 0},
		{"heading inside a fence", "## Name\n## Description\n```md\n## Metadata\n" + table + "```\n## Examples\n", 2, 0},
		{"untagged yaml is not an example", "## Name\n## Description\n## Metadata\n" + table + "## Examples\n```yaml\nkind: Component\n```\n", 0, 0},
	}
	for _, c := range cases {
		rd, err := parseReadme(strings.NewReader(c.text))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := checkSections(rd); len(got) != c.problems {
			t.Errorf("%s: problems %q, want %d", c.name, got, c.problems)
		}
		if len(rd.blocks) != c.blocks {
			t.Errorf("%s: %d yaml component blocks, want %d", c.name, len(rd.blocks), c.blocks)
		}
	}
	if _, err := parseReadme(strings.NewReader("## Name\n```yaml component\nkind: x\n")); err == nil {
		t.Error("an unclosed code block is not reported")
	}
}
