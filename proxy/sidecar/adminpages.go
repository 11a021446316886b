package sidecar

import (
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/outrigger/outrigger/discovery"
	"github.com/outrigger/outrigger/proxy/admin"
	"github.com/outrigger/outrigger/resiliency"
)

// cluster is one /clusters row: an instance of a target app.
type cluster struct {
	AppID       string `json:"appId"`
	Instance    string `json:"instance"`
	Node        string `json:"node"`
	State       string `json:"state"`
	Outstanding int    `json:"outstanding"`
	Ejected     bool   `json:"ejected"`
	Failures    int    `json:"consecutiveFailures"`
}

// startAdmin serves the admin endpoint on loopback (--admin-port; 0 = any free
// port, -1 = off) and returns the server and its port.
func startAdmin(o *Options, log *slog.Logger, pages map[string]admin.Page, ready func() bool, serve func(string, func() error)) (*http.Server, int) {
	if o.AdminPort < 0 {
		return nil, 0
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.AdminPort)))
	if err != nil {
		log.Warn("admin endpoint disabled: cannot bind its port", "port", o.AdminPort, "err", err)
		return nil, 0
	}
	srv := &http.Server{Handler: admin.New(pages, ready), ReadHeaderTimeout: 10 * time.Second}
	serve("admin", func() error { return srv.Serve(ln) })
	return srv, ln.Addr().(*net.TCPAddr).Port
}

func clustersPage(m *discovery.Member, b *discovery.Balancer, pols *policies) admin.Page {
	return func() any {
		type key struct{ app, addr string }
		ej := map[key]resiliency.Ejection{}
		for _, e := range pols.current().Ejector().Ejections() {
			ej[key{e.AppID, e.Instance}] = e
		}
		var out []cluster
		for _, mi := range m.Members() {
			e := ej[key{mi.AppID, mi.Addr}]
			out = append(out, cluster{AppID: mi.AppID, Instance: mi.Addr, Node: mi.Name, State: mi.State,
				Outstanding: b.Outstanding(mi.Addr), Ejected: e.Ejected, Failures: e.ConsecutiveFailures})
		}
		return out
	}
}

// configDump is the effective configuration, secrets never included (component
// metadata values are shown only as names until the secrets issue lands).
func configDump(o *Options, resourceSummary func() any) admin.Page {
	return func() any {
		return map[string]any{
			"options": map[string]any{
				"appId": o.AppID, "appPort": o.AppPort, "appProtocol": o.AppProtocol, "appChannelAddress": o.AppChannelAddress,
				"httpPort": o.HTTPPort, "grpcPort": o.GRPCPort, "internalGrpcPort": o.InternalGRPCPort,
				"metricsPort": o.MetricsPort, "resourcesPaths": o.ResourcesPaths, "config": o.Config,
				"gossipPort": o.GossipPort, "gossipJoin": o.GossipJoin, "balancer": o.Balancer,
				"maxBodySize": o.MaxBodySize, "gracefulShutdownSeconds": o.GracefulShutdownSecs,
				"appHealthCheck": o.EnableAppHealthCheck,
			},
			"resources": resourceSummary(),
		}
	}
}
