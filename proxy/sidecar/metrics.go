package sidecar

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// startMetrics serves Prometheus metrics on --metrics-port (a registry of our
// own, never the global one). A port in use is a warning, not a failed start.
func startMetrics(o *Options, reg *prometheus.Registry, log *slog.Logger, serve func(string, func() error)) *http.Server {
	if !o.EnableMetrics {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.MetricsPort)))
	if err != nil {
		log.Warn("metrics disabled: cannot bind the metrics port", "port", o.MetricsPort, "err", err)
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	serve("metrics", func() error { return srv.Serve(ln) })
	return srv
}

// startProfiling serves pprof on loopback when --enable-profiling is set.
func startProfiling(o *Options, log *slog.Logger, serve func(string, func() error)) *http.Server {
	if !o.Profiling {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.ProfilePort)))
	if err != nil {
		log.Warn("profiling disabled: cannot bind the profile port", "port", o.ProfilePort, "err", err)
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	serve("profiling", func() error { return srv.Serve(ln) })
	return srv
}
