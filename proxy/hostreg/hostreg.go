package hostreg

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// HomeEnv names the environment variable that overrides the Outrigger home
// directory (default ~/.outrigger).
const HomeEnv = "OUTRIGGER_HOME"

// ErrNotFound is returned by Find when no live sidecar has the app id.
var ErrNotFound = errors.New("no running sidecar")

// Entry describes one running sidecar. The JSON names are the registry's file
// format, shared by every reader and writer.
type Entry struct {
	AppID            string    `json:"appId"`
	PID              int       `json:"pid"`
	HTTPPort         int       `json:"httpPort"`
	GRPCPort         int       `json:"grpcPort"`
	InternalGRPCPort int       `json:"internalGrpcPort"`
	MetricsPort      int       `json:"metricsPort"`
	AdminPort        int       `json:"adminPort"`
	GossipAddr       string    `json:"gossipAddr"`
	AppPort          int       `json:"appPort"`
	AppPID           int       `json:"appPID"`
	Command          string    `json:"command"`
	Started          time.Time `json:"started"`
	// CLIPID is the pid of the `outrigger run` process that started the
	// sidecar, when known (0 otherwise).
	CLIPID int `json:"cliPID,omitempty"`
}

// Home returns the Outrigger home directory: $OUTRIGGER_HOME if set, else
// ~/.outrigger.
func Home() (string, error) {
	if h := os.Getenv(HomeEnv); h != "" {
		return h, nil
	}
	u, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the Outrigger home (set %s): %w", HomeEnv, err)
	}
	return filepath.Join(u, ".outrigger"), nil
}

// Dir returns the directory holding the registry files, <home>/run.
func Dir() (string, error) {
	h, err := Home()
	if err != nil {
		return "", err
	}
	return filepath.Join(h, "run"), nil
}

// Write records e in the registry and returns a func that removes the record.
// PID defaults to the current process, Started to now. The file is replaced
// atomically, so readers never see a half-written entry.
func Write(e Entry) (remove func(), err error) {
	if e.AppID == "" {
		return nil, errors.New("hostreg: write entry: app id is empty")
	}
	if strings.ContainsAny(e.AppID, `/\`) || e.AppID == "." || e.AppID == ".." {
		return nil, fmt.Errorf("hostreg: write entry: app id %q is not usable in a file name", e.AppID)
	}
	if e.PID == 0 {
		e.PID = os.Getpid()
	}
	if e.Started.IsZero() {
		e.Started = time.Now()
	}
	e.Started = e.Started.Truncate(time.Second)
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("hostreg: create %s: %w", dir, err)
	}
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("hostreg: encode entry: %w", err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%d.json", e.AppID, e.PID))
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("hostreg: write %s: %w", path, err)
	}
	_, werr := tmp.Write(append(data, '\n'))
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return nil, fmt.Errorf("hostreg: write %s: %w", path, werr)
	}
	return func() { _ = os.Remove(path) }, nil
}

// List returns the entries of live sidecars, oldest first. Files of dead
// processes are deleted; unreadable or malformed files are skipped.
func List() ([]Entry, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hostreg: read %s: %w", dir, err)
	}
	var out []Entry
	for _, de := range des {
		name := de.Name()
		if de.IsDir() || !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			continue // removed meanwhile
		}
		var e Entry
		if err := json.Unmarshal(data, &e); err != nil || e.PID <= 0 || e.AppID == "" {
			continue
		}
		if !Alive(e.PID) {
			_ = os.Remove(path)
			continue
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b Entry) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.AppID, b.AppID)
	})
	return out, nil
}

// Find returns the newest live entry for appID, or an error wrapping
// ErrNotFound.
func Find(appID string) (Entry, error) {
	all, err := List()
	if err != nil {
		return Entry{}, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].AppID == appID {
			return all[i], nil
		}
	}
	return Entry{}, fmt.Errorf("%w with app id %q on this host", ErrNotFound, appID)
}

// Alive reports whether a process with the pid exists.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
