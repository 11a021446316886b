package sidecar

import (
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// startMetrics serves Prometheus metrics on --metrics-port (a registry of our
// own, never the global one). A port in use is a warning, not a failed start.
func startMetrics(o *Options, log *slog.Logger, serve func(string, func() error)) *http.Server {
	if !o.EnableMetrics {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.MetricsPort)))
	if err != nil {
		log.Warn("metrics disabled: cannot bind the metrics port", "port", o.MetricsPort, "err", err)
		return nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	serve("metrics", func() error { return srv.Serve(ln) })
	return srv
}
