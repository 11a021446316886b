package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// Binding is the bindings.localstorage output binding: files under one root.
type Binding struct {
	root *os.Root
	dir  string
}

// metadataKeys are the component metadata keys Init reads.
var metadataKeys = []string{"rootPath", "direction"}

// New returns an uninitialised local storage binding.
func New() *Binding { return &Binding{} }

// Init opens (creating it if needed) the root directory.
func (b *Binding) Init(_ context.Context, md sdk.Metadata) error {
	dir := strings.TrimSpace(md["rootPath"])
	if dir == "" {
		return fmt.Errorf("metadata rootPath is required")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("metadata rootPath %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return fmt.Errorf("metadata rootPath: creating %s: %w", abs, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return fmt.Errorf("metadata rootPath: opening %s: %w", abs, err)
	}
	b.root, b.dir = root, abs
	return nil
}

// Close closes the root.
func (b *Binding) Close() error {
	if b.root == nil {
		return nil
	}
	return b.root.Close()
}

// Operations are create, get, list and delete.
func (b *Binding) Operations() []string {
	return []string{sdk.OperationCreate, sdk.OperationGet, sdk.OperationList, sdk.OperationDelete}
}

// relPath validates a file name from request metadata: relative, cleaned,
// and inside the root (the root handle refuses symlink escapes too).
func relPath(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("metadata fileName is required: %w", sdk.ErrBadRequest)
	}
	clean := filepath.Clean(filepath.FromSlash(name))
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) || clean == "." {
		return "", fmt.Errorf("fileName %q is outside rootPath: %w", name, sdk.ErrBadRequest)
	}
	return clean, nil
}

// Invoke runs create (write data to metadata fileName, a random name when
// absent; answers {"fileName": …}), get (the file's bytes), list (a JSON
// array of the files under the root, or under metadata fileName when it
// names a directory) and delete.
func (b *Binding) Invoke(_ context.Context, req *sdk.InvokeRequest) (*sdk.InvokeResponse, error) {
	if b.root == nil {
		return nil, errors.New("localstorage binding is not initialised")
	}
	name := req.Metadata["fileName"]
	switch req.Operation {
	case sdk.OperationCreate:
		if name == "" {
			r := make([]byte, 16)
			_, _ = rand.Read(r)
			name = hex.EncodeToString(r)
		}
		rel, err := relPath(name)
		if err != nil {
			return nil, err
		}
		data := req.Data
		// The HTTP API passes a JSON string with its quotes: store the text.
		if s, err := strconv.Unquote(string(data)); err == nil && len(data) > 0 && data[0] == '"' {
			data = []byte(s)
		}
		if d := filepath.Dir(rel); d != "." {
			if err := b.root.MkdirAll(d, 0o755); err != nil {
				return nil, fmt.Errorf("creating directory for %s: %w", name, err)
			}
		}
		if err := b.root.WriteFile(rel, data, 0o644); err != nil {
			return nil, fmt.Errorf("writing %s: %w", name, err)
		}
		out, _ := json.Marshal(map[string]string{"fileName": filepath.ToSlash(rel)})
		return &sdk.InvokeResponse{Data: out, ContentType: "application/json"}, nil
	case sdk.OperationGet:
		rel, err := relPath(name)
		if err != nil {
			return nil, err
		}
		data, err := b.root.ReadFile(rel)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("file not found: %s", name)
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		return &sdk.InvokeResponse{Data: data}, nil
	case sdk.OperationDelete:
		rel, err := relPath(name)
		if err != nil {
			return nil, err
		}
		if err := b.root.Remove(rel); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("file not found: %s", name)
			}
			return nil, fmt.Errorf("deleting %s: %w", name, err)
		}
		return nil, nil
	case sdk.OperationList:
		start := "."
		if name != "" {
			rel, err := relPath(name)
			if err != nil {
				return nil, err
			}
			start = rel
		}
		files := []string{}
		err := fs.WalkDir(b.root.FS(), filepath.ToSlash(start), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				files = append(files, p)
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("listing %s: %w", start, err)
		}
		out, _ := json.Marshal(files)
		return &sdk.InvokeResponse{Data: out, ContentType: "application/json"}, nil
	}
	return nil, fmt.Errorf("operation %s: %w", req.Operation, sdk.ErrOperationNotSupported)
}
