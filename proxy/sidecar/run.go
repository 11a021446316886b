package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/discovery"
	sidecarv1 "github.com/outrigger/outrigger/proto/gen/outrigger/sidecar/v1"
	"github.com/outrigger/outrigger/proxy/admin"
	"github.com/outrigger/outrigger/proxy/appchannel"
	"github.com/outrigger/outrigger/proxy/bindings"
	"github.com/outrigger/outrigger/proxy/configuration"
	"github.com/outrigger/outrigger/proxy/filters"
	"github.com/outrigger/outrigger/proxy/grpcapi"
	"github.com/outrigger/outrigger/proxy/hostreg"
	"github.com/outrigger/outrigger/proxy/httpapi"
	"github.com/outrigger/outrigger/proxy/invoke"
	"github.com/outrigger/outrigger/proxy/lock"
	"github.com/outrigger/outrigger/proxy/metadata"
	"github.com/outrigger/outrigger/proxy/pipeline"
	"github.com/outrigger/outrigger/proxy/pubsub"
	"github.com/outrigger/outrigger/proxy/resources"
	"github.com/outrigger/outrigger/proxy/secrets"
	"github.com/outrigger/outrigger/proxy/state"
	"github.com/outrigger/outrigger/proxy/telemetry"
)

// Run starts the sidecar and serves until ctx ends or the shutdown API is
// called, then drains in-flight work for the graceful-shutdown period.
func Run(ctx context.Context, o *Options) error {
	start := time.Now()
	if err := o.normalize(); err != nil {
		return err
	}
	log := newLogger(o)
	maxBody, err := o.maxBody()
	if err != nil {
		return fmt.Errorf("--max-body-size: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Resources and configuration: loaded and validated now; each kind takes
	// effect as its building block lands.
	res, conf, err := loadResources(ctx, o, log)
	if err != nil {
		return err
	}

	// Telemetry: tracing and metrics from the Configuration.
	tracing, metrics, reg, err := startTelemetry(ctx, o, conf, log)
	if err != nil {
		return err
	}
	defer func() { _ = tracing.Shutdown(context.Background()) }()
	pols, err := newPolicies(res.Resiliencies, o.AppID, metrics, log.With("scope", "resiliency"))
	if err != nil {
		return err
	}

	// Listeners first, so the ports are taken (and reported) at once.
	apiHosts := listenHosts(o.ListenAddresses)
	httpLns, err := listenAll(apiHosts, o.HTTPPort)
	if err != nil {
		return fmt.Errorf("HTTP API port: %w", err)
	}
	grpcLns, err := listenAll(apiHosts, o.GRPCPort)
	if err != nil {
		closeAll(httpLns)
		return fmt.Errorf("gRPC API port: %w", err)
	}
	advertise := advertiseHost(o)
	internalLn, err := net.Listen("tcp", net.JoinHostPort(advertise, strconv.Itoa(o.InternalGRPCPort)))
	if err != nil {
		closeAll(httpLns)
		closeAll(grpcLns)
		return fmt.Errorf("internal gRPC port: %w", err)
	}
	internalAddr := internalLn.Addr().String()

	// Discovery.
	member, err := discovery.Start(ctx, discovery.Config{
		AppID:        o.AppID,
		InternalAddr: internalAddr,
		BindAddr:     advertise,
		GossipPort:   o.GossipPort,
		Join:         o.GossipJoin,
		Seeds:        registrySeeds,
		Logger:       log.With("scope", "discovery"),
	})
	if err != nil {
		closeAll(httpLns)
		closeAll(grpcLns)
		_ = internalLn.Close()
		return fmt.Errorf("start gossip: %w", err)
	}
	strategy := discovery.RoundRobin
	if o.Balancer == "least-outstanding" || o.Balancer == "p2c" {
		strategy = discovery.LeastOutstanding
	}
	balancer := discovery.NewBalancer(member, discovery.WithStrategy(strategy))
	picker := pickerAdapter{balancer}

	// Components: every one runs out of process, supervised by the plugin host.
	comps, err := startComponents(ctx, o, res, pols, log.With("scope", "plugins"))
	if err != nil {
		_ = member.Close(context.Background())
		closeAll(httpLns)
		closeAll(grpcLns)
		_ = internalLn.Close()
		return err
	}
	var secretScopes []resources.SecretsScope
	if conf.Spec.Secrets != nil {
		secretScopes = conf.Spec.Secrets.Scopes
	}
	secretsAPI := secrets.New(secrets.Config{Stores: comps.secretStores(), Scopes: secretScopes, Logger: log.With("scope", "secrets")})
	stateAPI := state.New(state.Config{AppID: o.AppID, Namespace: os.Getenv("NAMESPACE"), Stores: comps.stateStores(), Logger: log.With("scope", "state")})

	// App channel.
	appAddr := ""
	var channel appchannel.Channel
	var grpcApp *appchannel.GRPCChannel
	appToken := os.Getenv("APP_API_TOKEN")
	if o.AppPort > 0 {
		appAddr = net.JoinHostPort(o.AppChannelAddress, strconv.Itoa(o.AppPort))
		if o.AppProtocol == "grpc" {
			grpcApp, err = appchannel.NewGRPC(appAddr, appToken)
			if err != nil {
				return err
			}
			channel = grpcApp
		} else {
			channel = appchannel.NewHTTP(appAddr, appToken, o.AppMaxConcurrency)
		}
	}

	inv := invoke.New(invoke.Config{AppID: o.AppID, Local: channel, Picker: picker, Logger: log.With("scope", "invoke"), ProxyApp: grpcApp,
		Tracing: tracing, Metrics: metrics, Resiliency: pols.current})
	var app pubsub.AppChannel
	if channel != nil {
		app = channel
	}
	pubsubAPI := pubsub.New(pubsub.Config{AppID: o.AppID, Brokers: comps.brokers(), App: app,
		Declarative: res.Subscriptions, Logger: log.With("scope", "pubsub"), Retrier: pols.inbound()})
	bindingsAPI := bindings.New(bindings.Config{AppID: o.AppID, Bindings: comps.bindings(), App: app, State: stateAPI,
		Logger: log.With("scope", "bindings")})
	lockAPI := lock.New(lock.Config{AppID: o.AppID, Stores: comps.lockStores(), Logger: log.With("scope", "lock")})
	var confApp configuration.AppChannel
	if httpApp, ok := channel.(*appchannel.HTTPChannel); ok {
		confApp = httpApp // updates are pushed to HTTP apps; gRPC apps subscribe by stream
	}
	confAPI := configuration.New(configuration.Config{Stores: comps.configurationStores(), AppChannel: confApp, Logger: log.With("scope", "configuration")})
	md := metadata.New(o.AppID, appConnection(o), metadata.Sources{
		Components:    comps.registered,
		Subscriptions: pubsubAPI.Subscriptions,
		Extended: func() map[string]string {
			ext := comps.extended()
			ext["outrigger.gossipAddr"], ext["outrigger.internalAddr"] = member.GossipAddr(), internalAddr
			return ext
		},
	})

	// The pipeline.
	fs := []pipeline.Filter{filters.Recover(log), filters.Tracing(tracing), filters.Metrics(metrics)}
	if o.EnableAPILogging {
		fs = append(fs, filters.AccessLog(log.With("scope", "api"), true))
	}
	if tok := os.Getenv("DAPR_API_TOKEN"); tok != "" {
		fs = append(fs, filters.APIToken(tok))
	}
	chain, err := pipeline.New(fs...)
	if err != nil {
		return err
	}

	health := &httpapi.Health{}
	shutdown := sync.OnceFunc(func() { log.Info("shutdown requested through the API"); cancel() })
	router := httpapi.New(httpapi.Config{
		AppID: o.AppID, Invoke: inv, Metadata: md, Health: health, Shutdown: shutdown,
		MaxBodySize: maxBody, Logger: log, Blocks: []httpapi.RouteRegistrar{stateAPI, secretsAPI, pubsubAPI, bindingsAPI, lockAPI, confAPI},
	})
	readBuf := 4 << 10
	if o.ReadBufferSizeKB > 0 {
		readBuf = o.ReadBufferSizeKB << 10
	}
	fresh := &freshConns{m: map[net.Conn]struct{}{}}
	httpSrv := &http.Server{
		Handler:           chain.HTTP(router),
		ConnState:         fresh.track,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    readBuf * 4,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	grpcSrv := grpcapi.New(grpcapi.Config{Invoke: inv, Metadata: md, Shutdown: shutdown, Options: chain.GRPCOptions(),
		Blocks: grpcapi.Blocks{State: stateAPI, Secrets: secretsAPI, PubSub: pubsubAPI, Lock: lockAPI, Configuration: confAPI, Bindings: bindingsAPI}})
	internalSrv := grpc.NewServer(
		grpc.MaxRecvMsgSize(64<<20), grpc.MaxSendMsgSize(64<<20),
		grpc.InitialWindowSize(1<<20), grpc.InitialConnWindowSize(4<<20),
		grpc.ReadBufferSize(64<<10), grpc.WriteBufferSize(64<<10),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	sidecarv1.RegisterInvokeServiceServer(internalSrv, inv)

	var wg sync.WaitGroup
	serve := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
				log.Error("server stopped", "server", name, "err", err)
				cancel()
			}
		}()
	}
	for _, ln := range httpLns {
		serve("http", func() error { return httpSrv.Serve(ln) })
	}
	for _, ln := range grpcLns {
		serve("grpc", func() error { return grpcSrv.Serve(ln) })
	}
	serve("internal", func() error { return internalSrv.Serve(internalLn) })
	metricsSrv := startMetrics(o, reg, log, serve)
	profSrv := startProfiling(o, log, serve)
	adminSrv, adminPort := startAdmin(o, log, map[string]admin.Page{
		"members":     func() any { return member.Members() },
		"clusters":    clustersPage(member, balancer, pols),
		"breakers":    func() any { return pols.current().Snapshot() },
		"config_dump": configDump(o, func() any { return summarize(res) }),
		"plugins":     func() any { return comps.host.Plugins() },
		"components":  func() any { return comps.host.Components() },
	}, health.Ready.Load, serve)

	health.Outbound.Store(true)
	log.Info("outbound ready", "app_id", o.AppID, "http", addrs(httpLns), "grpc", addrs(grpcLns),
		"internal", internalAddr, "gossip", member.GossipAddr(), "startup", time.Since(start).Round(time.Microsecond).String())

	removeReg, err := hostreg.Write(hostreg.Entry{
		AppID: o.AppID, PID: os.Getpid(), HTTPPort: port(httpLns), GRPCPort: port(grpcLns),
		InternalGRPCPort: internalLn.Addr().(*net.TCPAddr).Port, MetricsPort: o.MetricsPort,
		AdminPort: adminPort, GossipAddr: member.GossipAddr(), AppPort: o.AppPort,
		Command: strings.Join(os.Args, " "), Started: start,
	})
	if err != nil {
		log.Warn("could not register in the host-local sidecar registry", "err", err)
		removeReg = func() {}
	}

	// Wait for the app like daprd, start what needs the app (subscriptions),
	// then report ready.
	startApp := sync.OnceFunc(func() {
		if err := pubsubAPI.Start(ctx); err != nil {
			log.Error("pub/sub subscriptions did not start", "err", err)
		}
		if err := bindingsAPI.Start(ctx); err != nil {
			log.Error("input bindings did not start", "err", err)
		}
	})
	go func() {
		if appAddr == "" {
			startApp()
			health.Ready.Store(true)
			log.Info("ready (no app port)")
			return
		}
		log.Info("waiting for the app", "addr", appAddr)
		if err := appchannel.WaitForPort(ctx, appAddr); err != nil {
			return
		}
		if o.EnableAppHealthCheck {
			cfg := appchannel.ProbeConfig{Path: o.AppHealthCheckPath, Interval: time.Duration(o.AppHealthProbeInterval) * time.Second,
				Timeout: time.Duration(o.AppHealthProbeTimeout) * time.Millisecond, Threshold: o.AppHealthThreshold}
			changed := func(ok bool) {
				if ok {
					startApp()
				}
				health.Ready.Store(ok)
			}
			var p *appchannel.Prober
			if grpcApp != nil {
				p = appchannel.NewGRPCProber(grpcApp, cfg, log, changed)
			} else {
				p = appchannel.NewHTTPProber(appAddr, cfg, log, changed)
			}
			p.Run(ctx)
			return
		}
		startApp()
		health.Ready.Store(true)
		log.Info("ready: the app is listening", "addr", appAddr)
	}()

	<-ctx.Done()

	// Drain: stop taking new work, finish what is in flight, then leave.
	log.Info("shutting down", "grace", o.gracePeriod().String())
	health.Ready.Store(false)
	removeReg()
	sctx, scancel := context.WithTimeout(context.Background(), o.gracePeriod())
	defer scancel()
	_ = member.Close(sctx) // leave first, so callers stop picking us
	if err := pubsubAPI.Stop(sctx); err != nil {
		log.Warn("pub/sub did not drain in time", "err", err)
	}
	if err := bindingsAPI.Stop(sctx); err != nil {
		log.Warn("input bindings did not drain in time", "err", err)
	}
	_ = confAPI.Close()
	var sw sync.WaitGroup
	sw.Add(3)
	go func() { defer sw.Done(); _ = httpSrv.Shutdown(sctx) }()
	fresh.closeAll() // Shutdown would wait seconds for connections that never sent a request
	go func() { defer sw.Done(); gracefulStop(sctx, grpcSrv) }()
	go func() { defer sw.Done(); gracefulStop(sctx, internalSrv) }()
	for _, srv := range []*http.Server{metricsSrv, adminSrv, profSrv} {
		if srv != nil {
			_ = srv.Shutdown(sctx)
		}
	}
	sw.Wait()
	_ = inv.Close()
	_ = comps.host.Close(sctx)
	if channel != nil {
		_ = channel.Close()
	}
	wg.Wait()
	if err := tracing.Shutdown(sctx); err != nil {
		log.Warn("traces not all exported", "err", err)
	}
	log.Info("stopped")
	return nil
}

func gracefulStop(ctx context.Context, s *grpc.Server) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.Stop()
	}
}

// loadResources reads the resources folders and the Configuration (the
// first --config file; an empty one when none is given).
func loadResources(ctx context.Context, o *Options, log *slog.Logger) (*resources.Set, *resources.Configuration, error) {
	conf := &resources.Configuration{}
	for i, path := range o.Config {
		c, err := resources.LoadConfiguration(path)
		if err != nil {
			return nil, nil, fmt.Errorf("--config: %w", err)
		}
		for _, w := range c.Warnings {
			log.Warn("configuration: ignored", "where", w.String())
		}
		if i == 0 {
			conf = c
		} else {
			log.Warn("only the first --config file is used", "ignored", path)
		}
	}
	if len(o.ResourcesPaths) == 0 {
		return &resources.Set{}, conf, nil
	}
	set, err := resources.Load(ctx, o.ResourcesPaths, o.AppID, log.With("scope", "resources"))
	if err != nil {
		return nil, nil, err
	}
	return set, conf, nil
}

func newLogger(o *Options) *slog.Logger {
	var lvl slog.Level
	switch strings.ToLower(o.LogLevel) {
	case "debug":
		lvl = slog.LevelDebug
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error", "fatal":
		lvl = slog.LevelError
	default:
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(os.Stdout, opts)
	if o.LogAsJSON {
		h = slog.NewJSONHandler(os.Stdout, opts)
	}
	return slog.New(h).With("app_id", o.AppID)
}

// listenHosts are the API servers' bind addresses: --dapr-listen-addresses, or
// loopback on IPv4 and (when the host has it) IPv6, like daprd.
func listenHosts(flag string) []string {
	if flag != "" {
		var out []string
		for _, a := range strings.Split(flag, ",") {
			if a = strings.Trim(strings.TrimSpace(a), "[]"); a != "" {
				out = append(out, a)
			}
		}
		return out
	}
	return []string{"127.0.0.1", "::1"}
}

// listenAll binds port on every host; the first must succeed, IPv6 loopback may
// be missing. Port 0 picks one free port, reused for the other hosts.
func listenAll(hosts []string, p int) ([]net.Listener, error) {
	var lns []net.Listener
	for i, h := range hosts {
		ln, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(p)))
		if err != nil {
			if i == 0 {
				return nil, err
			}
			continue // e.g. no IPv6 loopback
		}
		if p == 0 {
			p = ln.Addr().(*net.TCPAddr).Port
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func closeAll(lns []net.Listener) {
	for _, l := range lns {
		_ = l.Close()
	}
}

func addrs(lns []net.Listener) string {
	var s []string
	for _, l := range lns {
		s = append(s, l.Addr().String())
	}
	return strings.Join(s, ",")
}

func port(lns []net.Listener) int {
	if len(lns) == 0 {
		return 0
	}
	return lns[0].Addr().(*net.TCPAddr).Port
}

// advertiseHost is where other sidecars reach this one: DAPR_HOST_IP, else
// loopback when gossip is host-local, else the first non-loopback IPv4.
func advertiseHost(o *Options) string {
	if ip := os.Getenv("DAPR_HOST_IP"); ip != "" {
		return ip
	}
	if len(o.GossipJoin) == 0 {
		return "127.0.0.1"
	}
	ifaces, _ := net.InterfaceAddrs()
	for _, a := range ifaces {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return "127.0.0.1"
}

// registrySeeds are the gossip addresses of the other sidecars on this host.
func registrySeeds() []string {
	entries, err := hostreg.List()
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.GossipAddr != "" && e.PID != os.Getpid() {
			out = append(out, e.GossipAddr)
		}
	}
	return out
}

func appConnection(o *Options) *runtimev1.AppConnectionProperties {
	p := &runtimev1.AppConnectionProperties{Port: int32(o.AppPort), Protocol: o.AppProtocol, ChannelAddress: o.AppChannelAddress}
	if o.AppMaxConcurrency > 0 {
		p.MaxConcurrency = int32(o.AppMaxConcurrency)
	}
	if o.EnableAppHealthCheck {
		p.Health = &runtimev1.AppConnectionHealthProperties{
			HealthCheckPath:     o.AppHealthCheckPath,
			HealthProbeInterval: (time.Duration(o.AppHealthProbeInterval) * time.Second).String(),
			HealthProbeTimeout:  (time.Duration(o.AppHealthProbeTimeout) * time.Millisecond).String(),
			HealthThreshold:     int32(o.AppHealthThreshold),
		}
	}
	return p
}

// pickerAdapter gives the invoke building block addresses from discovery.
type pickerAdapter struct{ b *discovery.Balancer }

func (p pickerAdapter) Pick(ctx context.Context, appID string) (string, func(error), error) {
	inst, done, err := p.b.Pick(ctx, appID)
	if err != nil {
		return "", nil, err
	}
	return inst.Addr, func(err error) {
		// A hop that could not reach the instance skips it until gossip catches up.
		if status.Code(err) == codes.Unavailable {
			p.b.MarkFailed(inst.Addr)
		}
		done(err)
	}, nil
}

// summarize lists the loaded resources without their metadata values (which
// may hold secrets).
func summarize(set *resources.Set) any {
	type item struct {
		Kind, Name, Type, File string
		Metadata               []string `json:",omitempty"`
	}
	var out []item
	for _, c := range set.Components {
		names := make([]string, 0, len(c.Metadata))
		for _, m := range c.Metadata {
			names = append(names, m.Name)
		}
		out = append(out, item{Kind: "Component", Name: c.Name, Type: c.Type, File: c.Location(), Metadata: names})
	}
	for _, s := range set.Subscriptions {
		out = append(out, item{Kind: "Subscription", Name: s.Name})
	}
	for _, r := range set.Resiliencies {
		out = append(out, item{Kind: "Resiliency", Name: r.Name})
	}
	return out
}

// freshConns tracks HTTP connections that have not sent a request yet
// (clients' pools open them ahead of need), so shutdown can close them at once
// instead of waiting for them as http.Server.Shutdown does.
type freshConns struct {
	mu sync.Mutex
	m  map[net.Conn]struct{}
}

func (f *freshConns) track(c net.Conn, st http.ConnState) {
	f.mu.Lock()
	if st == http.StateNew {
		f.m[c] = struct{}{}
	} else {
		delete(f.m, c)
	}
	f.mu.Unlock()
}

func (f *freshConns) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.m {
		_ = c.Close()
		delete(f.m, c)
	}
}

// startTelemetry builds tracing and metrics from the Configuration (spec.tracing,
// spec.metrics) on a registry of the sidecar's own.
func startTelemetry(ctx context.Context, o *Options, conf *resources.Configuration, log *slog.Logger) (*telemetry.Tracing, *telemetry.Metrics, *prometheus.Registry, error) {
	var ts resources.TracingSpec
	var ms resources.MetricSpec
	if conf.Spec.Tracing != nil {
		ts = *conf.Spec.Tracing
	}
	if conf.Spec.Metrics != nil {
		ms = *conf.Spec.Metrics
	} else if conf.Spec.Metric != nil {
		ms = *conf.Spec.Metric
	}
	tracing, err := telemetry.NewTracing(ctx, ts, o.AppID, log.With("scope", "tracing"))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--config: spec.tracing: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if !o.EnableMetrics {
		off := false
		ms.Enabled = &off
	}
	metrics, err := telemetry.NewMetrics(reg, ms, o.AppID, os.Getenv("NAMESPACE"), log.With("scope", "metrics"))
	if err != nil {
		_ = tracing.Shutdown(ctx)
		return nil, nil, nil, fmt.Errorf("--config: spec.metrics: %w", err)
	}
	return tracing, metrics, reg, nil
}
