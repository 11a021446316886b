package host

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// binaryLauncher launches a plugin binary through hashicorp/go-plugin.
type binaryLauncher struct {
	path       string
	name       string
	socketsDir string
	log        *slog.Logger
}

func (l *binaryLauncher) start(ctx context.Context) (*run, error) {
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), 10*time.Millisecond)
	}
	cmd := exec.Command(l.path)
	cmd.Env = append(os.Environ(), sdk.SocketsDirEnv+"="+l.socketsDir)
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          goplugin.PluginSet{sdk.PluginName: &sdk.ComponentPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           newHCLog(l.log),
		SyncStdout:       pluginOutput(l.log, l.name, "stdout", slog.LevelInfo),
		SyncStderr:       pluginOutput(l.log, l.name, "stderr", slog.LevelWarn),
		StartTimeout:     timeout,
		GRPCDialOptions:  []grpc.DialOption{grpc.WithIdleTimeout(0)},
	})
	type result struct {
		conn *grpc.ClientConn
		err  error
	}
	// go-plugin's start is not context-aware: run it aside so a cancelled
	// Provision returns at once (the launch is then killed).
	done := make(chan result, 1)
	go func() {
		rpc, err := client.Client()
		if err != nil {
			done <- result{err: err}
			return
		}
		raw, err := rpc.Dispense(sdk.PluginName)
		if err != nil {
			done <- result{err: err}
			return
		}
		conn, ok := raw.(*grpc.ClientConn)
		if !ok {
			done <- result{err: fmt.Errorf("plugin set %q dispensed %T, want *grpc.ClientConn", sdk.PluginName, raw)}
			return
		}
		done <- result{conn: conn}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		go func() { <-done; client.Kill() }()
		return nil, fmt.Errorf("launching plugin %s: %w", l.name, ctx.Err())
	}
	if res.err != nil {
		client.Kill()
		return nil, fmt.Errorf("launching plugin %s: %w", l.name, res.err)
	}
	pid := 0
	if rc := client.ReattachConfig(); rc != nil {
		pid = rc.Pid
	}
	return &run{
		conn:          res.conn,
		pid:           pid,
		exited:        client.Exited,
		healthService: goplugin.GRPCServiceName,
		stop:          client.Kill,
	}, nil
}

// binaryType maps a plugin binary name to its component type:
// "state-sqlite" → "state.sqlite".
func binaryType(name string) (string, bool) {
	cat, impl, ok := strings.Cut(name, "-")
	if !ok || cat == "" || impl == "" || strings.HasPrefix(name, ".") {
		return "", false
	}
	return cat + "." + impl, true
}

// isExecutable reports whether path is a regular file someone may execute.
func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// defaultPluginsDir is the "plugins" folder next to the running executable
// (bin/plugins beside bin/outrigger).
func defaultPluginsDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "plugins"
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	return filepath.Join(filepath.Dir(exe), "plugins")
}
