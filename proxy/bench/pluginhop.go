package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// pluginHop is the state-redis plugin binary run on its own, serving on a unix socket as it
// does outside the host, with a gRPC client of the generated Dapr pluggable StateStore
// service: the plugin hop with no sidecar in front. Its rows show what the protocol the
// issue mandates (gRPC to an out-of-process plugin) costs by itself on this machine.
type pluginHop struct {
	dir  string // its sockets folder
	proc *proc
	conn *grpc.ClientConn
	st   componentsv1.StateStoreClient
	ctx  context.Context // carries x-component-instance
}

const pluginHopInstance = "bench-hop"

// startPluginHop starts bin/plugins/state-redis in socket mode and initialises one instance
// on e's Redis.
func startPluginHop(ctx context.Context, e *env) (*pluginHop, error) {
	dir, err := os.MkdirTemp("", "obh")
	if err != nil {
		return nil, fmt.Errorf("plugin hop: sockets folder: %w", err)
	}
	cmd := exec.Command(filepath.Join(e.l.plugins, "state-redis"))
	cmd.Env = append(os.Environ(), "DAPR_COMPONENTS_SOCKETS_FOLDER="+dir)
	p, err := startProc("state-redis (socket)", cmd)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	e.track(p)
	h := &pluginHop{dir: dir, proc: p}
	sock := filepath.Join(dir, "redis.sock")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if exited, werr := p.exitErr(); exited {
			h.close()
			return nil, fmt.Errorf("plugin hop: state-redis exited before serving: %v; output: %s", werr, p.logs)
		}
		if time.Now().After(deadline) {
			h.close()
			return nil, fmt.Errorf("plugin hop: no socket %s after 10s; output: %s", sock, p.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.conn, err = grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		h.close()
		return nil, fmt.Errorf("plugin hop: dial %s: %w", sock, err)
	}
	h.st = componentsv1.NewStateStoreClient(h.conn)
	h.ctx = metadata.AppendToOutgoingContext(context.Background(), "x-component-instance", pluginHopInstance)
	ictx, cancel := context.WithTimeout(mergeMD(ctx, h.ctx), 10*time.Second)
	defer cancel()
	_, err = h.st.Init(ictx, &componentsv1.InitRequest{Metadata: &componentsv1.MetadataRequest{Properties: map[string]string{"redisHost": e.o.redisAddr}}})
	if err != nil {
		h.close()
		return nil, fmt.Errorf("plugin hop: Init: %w; output: %s", err, p.logs)
	}
	return h, nil
}

func (h *pluginHop) close() {
	if h.conn != nil {
		_ = h.conn.Close()
	}
	h.proc.Stop(2 * time.Second)
	_ = os.RemoveAll(h.dir)
}

// get and set are the plugin calls a sidecar makes for a state get and save.
func (h *pluginHop) get(ctx context.Context, key string, size int) error {
	r, err := h.st.Get(mergeMD(ctx, h.ctx), &componentsv1.GetRequest{Key: key})
	if err == nil && len(r.GetData()) != size {
		err = fmt.Errorf("plugin get %s: %d bytes, want %d", key, len(r.GetData()), size)
	}
	return err
}

func (h *pluginHop) set(ctx context.Context, key string, value []byte) error {
	_, err := h.st.Set(mergeMD(ctx, h.ctx), &componentsv1.SetRequest{Key: key, Value: value})
	return err
}

// mergeMD is ctx (the load generator's, with its deadline) carrying md's outgoing metadata.
func mergeMD(ctx, md context.Context) context.Context {
	m, ok := metadata.FromOutgoingContext(md)
	if !ok {
		return ctx
	}
	return metadata.NewOutgoingContext(ctx, m)
}
