package meta

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// repoRoot is the directory holding go.mod, found upwards from the test's
// working directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// goPackageDirs lists, relative to root, every directory holding .go files,
// skipping generated code (proto/gen), testdata, hidden folders and
// node_modules.
func goPackageDirs(t *testing.T, root string) []string {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			name := d.Name()
			if rel != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
				name == "testdata" || name == "node_modules" || name == "vendor" || rel == "proto/gen") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(d.Name(), ".go") {
			seen[filepath.ToSlash(filepath.Dir(rel))] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	var dirs []string
	for d := range seen {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	return dirs
}

// TestEveryPackageHasDocGo: each Go package directory has a doc.go carrying
// the package comment, which starts "Package <name> " (for package main,
// "Command <program> " is accepted too: Go's convention for commands, and a
// command may carry it in main.go instead, so a one-file program stays one file).
func TestEveryPackageHasDocGo(t *testing.T) {
	root := repoRoot(t)
	dirs := goPackageDirs(t, root)
	if len(dirs) < 10 {
		t.Fatalf("found only %d Go package directories under %s: the walk is broken", len(dirs), root)
	}
	var missing, bad []string
	for _, dir := range dirs {
		path := filepath.Join(root, dir, "doc.go")
		if _, err := os.Stat(path); err != nil {
			if !commandDocInMain(filepath.Join(root, dir, "main.go")) {
				missing = append(missing, dir)
			}
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			bad = append(bad, dir+"/doc.go: "+err.Error())
			continue
		}
		name := f.Name.Name
		if f.Doc == nil {
			bad = append(bad, dir+"/doc.go: no package comment (package "+name+")")
			continue
		}
		text := f.Doc.Text()
		ok := strings.HasPrefix(text, "Package "+name+" ")
		if name == "main" && strings.HasPrefix(text, "Command ") {
			ok = true
		}
		if !ok {
			first, _, _ := strings.Cut(text, "\n")
			bad = append(bad, dir+"/doc.go: package comment starts "+strings.TrimSpace(first)+
				` (want "Package `+name+` …")`)
		}
	}
	for _, d := range missing {
		t.Errorf("%s: Go package without doc.go", d)
	}
	for _, b := range bad {
		t.Errorf("%s", b)
	}
}

// commandDocInMain reports a main.go of package main whose package comment
// starts "Command ".
func commandDocInMain(path string) bool {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
	return err == nil && f.Name.Name == "main" && f.Doc != nil && strings.HasPrefix(f.Doc.Text(), "Command ")
}
