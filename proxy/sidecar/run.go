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
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

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
// called, then drains in-flight work for the graceful-shutdown period. It
// only sequences the parts; each step below owns one of them.
func Run(ctx context.Context, o *Options) error {
	if err := o.normalize(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &sidecar{o: o, start: time.Now(), log: newLogger(o), cancel: cancel, health: &httpapi.Health{}}
	defer s.cleanup()
	for _, step := range []func(context.Context) error{
		s.configure,       // resources, Configuration, telemetry, resiliency policies
		s.listen,          // API, internal and gossip ports
		s.join,            // gossip discovery
		s.startComponents, // plugins: every component out of process
		s.connectApp,      // the app channel
		s.buildBlocks,     // building blocks, metadata
		s.serve,           // pipeline, API servers, metrics, admin
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	s.health.Outbound.Store(true)
	s.log.Info("outbound ready", "http", addrs(s.httpLns), "grpc", addrs(s.grpcLns), "internal", s.internalAddr,
		"gossip", s.member.GossipAddr(), "startup", time.Since(s.start).Round(time.Microsecond).String())
	s.register()
	go s.waitForApp(ctx)
	if hotReloadEnabled(s.o, s.conf) && len(s.o.ResourcesPaths) > 0 {
		go s.watchResources(ctx)
	}

	<-ctx.Done()
	s.drain()
	return nil
}

// sidecar is the running sidecar's parts, filled in by Run's steps.
type sidecar struct {
	o      *Options
	start  time.Time
	log    *slog.Logger
	cancel context.CancelFunc
	health *httpapi.Health
	// closers run in reverse order when Run returns (after a failed step too).
	closers []func()

	res     *resources.Set                // as loaded at start
	resNow  atomic.Pointer[resources.Set] // as last (re)loaded
	conf    *resources.Configuration
	tracing *telemetry.Tracing
	metrics *telemetry.Metrics
	reg     *prometheus.Registry
	pols    *policies
	maxBody int64

	httpLns, grpcLns []net.Listener
	internalLn       net.Listener
	internalAddr     string
	advertise        string

	member   *discovery.Member
	balancer *discovery.Balancer
	comps    *components

	appAddr string
	channel appchannel.Channel
	grpcApp *appchannel.GRPCChannel

	inv       *invoke.Service
	md        *metadata.Store
	blocks    blocks
	servers   servers
	adminPort int
	removeReg func()
}

// blocks are the building blocks.
type blocks struct {
	state    *state.API
	secrets  *secrets.API
	pubsub   *pubsub.API
	bindings *bindings.API
	lock     *lock.API
	config   *configuration.API
}

// servers are what serve; wg tracks their goroutines.
type servers struct {
	http, metrics, admin, prof *http.Server
	grpc, internal             *grpc.Server
	fresh                      *freshConns
	wg                         sync.WaitGroup
}

func (s *sidecar) onClose(f func()) { s.closers = append(s.closers, f) }

func (s *sidecar) cleanup() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

func (s *sidecar) configure(ctx context.Context) error {
	var err error
	if s.maxBody, err = s.o.maxBody(); err != nil {
		return fmt.Errorf("--max-body-size: %w", err)
	}
	// Resources and configuration: loaded and validated before anything starts.
	if s.res, s.conf, err = loadResources(ctx, s.o, s.log); err != nil {
		return err
	}
	s.resNow.Store(s.res)
	if s.tracing, s.metrics, s.reg, err = startTelemetry(ctx, s.o, s.conf, s.log); err != nil {
		return err
	}
	s.onClose(func() { _ = s.tracing.Shutdown(context.Background()) })
	s.pols, err = newPolicies(s.res.Resiliencies, s.o.AppID, s.metrics, s.log.With("scope", "resiliency"))
	return err
}

// listen takes the ports first, so they are taken (and reported) at once.
func (s *sidecar) listen(context.Context) error {
	hosts := listenHosts(s.o.ListenAddresses)
	var err error
	if s.httpLns, err = listenAll(hosts, s.o.HTTPPort); err != nil {
		return fmt.Errorf("HTTP API port: %w", err)
	}
	s.onClose(func() { closeAll(s.httpLns) })
	if s.grpcLns, err = listenAll(hosts, s.o.GRPCPort); err != nil {
		return fmt.Errorf("gRPC API port: %w", err)
	}
	s.onClose(func() { closeAll(s.grpcLns) })
	s.advertise = advertiseHost(s.o)
	if s.internalLn, err = net.Listen("tcp", net.JoinHostPort(s.advertise, strconv.Itoa(s.o.InternalGRPCPort))); err != nil {
		return fmt.Errorf("internal gRPC port: %w", err)
	}
	s.onClose(func() { _ = s.internalLn.Close() })
	s.internalAddr = s.internalLn.Addr().String()
	return nil
}

func (s *sidecar) join(ctx context.Context) error {
	var err error
	s.member, err = discovery.Start(ctx, discovery.Config{
		AppID: s.o.AppID, InternalAddr: s.internalAddr, BindAddr: s.advertise,
		GossipPort: s.o.GossipPort, Join: s.o.GossipJoin, Seeds: registrySeeds,
		Logger: s.log.With("scope", "discovery"),
	})
	if err != nil {
		return fmt.Errorf("start gossip: %w", err)
	}
	s.onClose(func() { _ = s.member.Close(context.Background()) })
	strategy := discovery.RoundRobin
	if s.o.Balancer == "least-outstanding" || s.o.Balancer == "p2c" {
		strategy = discovery.LeastOutstanding
	}
	// Instances outlier detection ejected are left out of load balancing.
	eject := func(appID string, addrs []string) []string { return s.pols.current().Ejector().Healthy(appID, addrs) }
	s.balancer = discovery.NewBalancer(s.member, discovery.WithStrategy(strategy), discovery.WithFilter(eject))
	return nil
}

func (s *sidecar) startComponents(ctx context.Context) error {
	var err error
	if s.comps, err = startComponents(ctx, s.o, s.res, s.pols, s.log.With("scope", "plugins")); err != nil {
		return err
	}
	s.onClose(func() { _ = s.comps.host.Close(context.Background()) })
	return nil
}

func (s *sidecar) connectApp(context.Context) error {
	if s.o.AppPort <= 0 {
		return nil
	}
	s.appAddr = net.JoinHostPort(s.o.AppChannelAddress, strconv.Itoa(s.o.AppPort))
	token := os.Getenv("APP_API_TOKEN")
	if s.o.AppProtocol == "grpc" {
		g, err := appchannel.NewGRPC(s.appAddr, token)
		if err != nil {
			return err
		}
		s.grpcApp, s.channel = g, g
	} else {
		s.channel = appchannel.NewHTTP(s.appAddr, token, s.o.AppMaxConcurrency)
	}
	s.onClose(func() { _ = s.channel.Close() })
	return nil
}

func (s *sidecar) buildBlocks(context.Context) error {
	o, log, comps := s.o, s.log, s.comps
	s.inv = invoke.New(invoke.Config{AppID: o.AppID, Local: s.channel, Picker: pickerAdapter{s.balancer},
		Logger: log.With("scope", "invoke"), ProxyApp: s.grpcApp,
		Tracing: s.tracing, Metrics: s.metrics, Resiliency: s.pols.current})
	s.onClose(func() { _ = s.inv.Close() })
	var app pubsub.AppChannel // nil when there is no app
	if s.channel != nil {
		app = s.channel
	}
	var confApp configuration.AppChannel
	if httpApp, ok := s.channel.(*appchannel.HTTPChannel); ok {
		confApp = httpApp // updates are pushed to HTTP apps; gRPC apps subscribe by stream
	}
	var secretScopes []resources.SecretsScope
	if s.conf.Spec.Secrets != nil {
		secretScopes = s.conf.Spec.Secrets.Scopes
	}
	b := &s.blocks
	b.secrets = secrets.New(secrets.Config{Stores: comps.secretStores(), Scopes: secretScopes, Logger: log.With("scope", "secrets")})
	b.state = state.New(state.Config{AppID: o.AppID, Namespace: os.Getenv("NAMESPACE"), Stores: comps.stateStores(), Logger: log.With("scope", "state")})
	b.pubsub = pubsub.New(pubsub.Config{AppID: o.AppID, Brokers: comps.brokers(), App: app,
		Declarative: s.res.Subscriptions, Logger: log.With("scope", "pubsub"), Retrier: s.pols.inbound(), Tracing: s.tracing})
	b.bindings = bindings.New(bindings.Config{AppID: o.AppID, Bindings: comps.bindings(), App: app, State: b.state,
		Logger: log.With("scope", "bindings")})
	b.lock = lock.New(lock.Config{AppID: o.AppID, Stores: comps.lockStores(), Logger: log.With("scope", "lock")})
	b.config = configuration.New(configuration.Config{Stores: comps.configurationStores(), AppChannel: confApp,
		Logger: log.With("scope", "configuration")})
	s.onClose(func() { _ = b.config.Close() })
	s.md = metadata.New(o.AppID, appConnection(o), metadata.Sources{
		Components:    comps.registered,
		Subscriptions: b.pubsub.Subscriptions,
		Extended: func() map[string]string {
			ext := comps.extended()
			ext["outrigger.gossipAddr"], ext["outrigger.internalAddr"] = s.member.GossipAddr(), s.internalAddr
			return ext
		},
	})
	return nil
}

// serve builds the pipeline and starts every server.
func (s *sidecar) serve(context.Context) error {
	o, log, b := s.o, s.log, &s.blocks
	fs := []pipeline.Filter{filters.Recover(log), filters.Tracing(s.tracing), filters.Metrics(s.metrics)}
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
	shutdown := sync.OnceFunc(func() { log.Info("shutdown requested through the API"); s.cancel() })
	router := httpapi.New(httpapi.Config{
		AppID: o.AppID, Invoke: s.inv, Metadata: s.md, Health: s.health, Shutdown: shutdown,
		MaxBodySize: s.maxBody, Logger: log,
		Blocks: []httpapi.RouteRegistrar{b.state, b.secrets, b.pubsub, b.bindings, b.lock, b.config},
	})
	readBuf := 4 << 10
	if o.ReadBufferSizeKB > 0 {
		readBuf = o.ReadBufferSizeKB << 10
	}
	sv := &s.servers
	sv.fresh = &freshConns{m: map[net.Conn]struct{}{}}
	sv.http = &http.Server{
		Handler:           chain.HTTP(router),
		ConnState:         sv.fresh.track,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    readBuf * 4,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	sv.grpc = grpcapi.New(grpcapi.Config{Invoke: s.inv, Metadata: s.md, Shutdown: shutdown, Options: chain.GRPCOptions(),
		Blocks: grpcapi.Blocks{State: b.state, Secrets: b.secrets, PubSub: b.pubsub, Lock: b.lock,
			Configuration: b.config, Bindings: b.bindings}})
	sv.internal = grpc.NewServer(
		grpc.MaxRecvMsgSize(64<<20), grpc.MaxSendMsgSize(64<<20),
		grpc.InitialWindowSize(1<<20), grpc.InitialConnWindowSize(4<<20),
		grpc.ReadBufferSize(64<<10), grpc.WriteBufferSize(64<<10),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	sidecarv1.RegisterInvokeServiceServer(sv.internal, s.inv)

	for _, ln := range s.httpLns {
		s.run("http", func() error { return sv.http.Serve(ln) })
	}
	for _, ln := range s.grpcLns {
		s.run("grpc", func() error { return sv.grpc.Serve(ln) })
	}
	s.run("internal", func() error { return sv.internal.Serve(s.internalLn) })
	sv.metrics = startMetrics(o, s.reg, log, s.run)
	sv.prof = startProfiling(o, log, s.run)
	pols, comps := s.pols, s.comps
	var adminPort int
	sv.admin, adminPort = startAdmin(o, log, map[string]admin.Page{
		"members":     func() any { return s.member.Members() },
		"clusters":    clustersPage(s.member, s.balancer, pols),
		"breakers":    func() any { return pols.current().Snapshot() },
		"stats":       statsPage(s.reg),
		"config_dump": configDump(o, func() any { return summarize(s.resNow.Load()) }),
		"plugins":     func() any { return comps.host.Plugins() },
		"components":  func() any { return comps.host.Components() },
	}, s.health.Ready.Load, s.run)
	s.removeReg = func() {}
	s.adminPort = adminPort
	return nil
}

// run serves f in the background; a server that fails stops the sidecar.
func (s *sidecar) run(name string, f func() error) {
	s.servers.wg.Add(1)
	go func() {
		defer s.servers.wg.Done()
		if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("server stopped", "server", name, "err", err)
			s.cancel()
		}
	}()
}

// register lists the sidecar in the host-local registry (outrigger list, and
// zero-config gossip seeds).
func (s *sidecar) register() {
	remove, err := hostreg.Write(hostreg.Entry{
		AppID: s.o.AppID, PID: os.Getpid(), HTTPPort: port(s.httpLns), GRPCPort: port(s.grpcLns),
		InternalGRPCPort: s.internalLn.Addr().(*net.TCPAddr).Port, MetricsPort: s.o.MetricsPort,
		AdminPort: s.adminPort, GossipAddr: s.member.GossipAddr(), AppPort: s.o.AppPort,
		Command: strings.Join(os.Args, " "), Started: s.start,
	})
	if err != nil {
		s.log.Warn("could not register in the host-local sidecar registry", "err", err)
		return
	}
	s.removeReg = remove
}

// waitForApp waits for the app like daprd (its port, then its health when
// probing is on), starts what needs the app (subscriptions, input bindings)
// and reports ready.
func (s *sidecar) waitForApp(ctx context.Context) {
	startApp := sync.OnceFunc(func() {
		if err := s.blocks.pubsub.Start(ctx); err != nil {
			s.log.Error("pub/sub subscriptions did not start", "err", err)
		}
		if err := s.blocks.bindings.Start(ctx); err != nil {
			s.log.Error("input bindings did not start", "err", err)
		}
	})
	if s.appAddr == "" {
		startApp()
		s.health.Ready.Store(true)
		s.log.Info("ready (no app port)")
		return
	}
	s.log.Info("waiting for the app", "addr", s.appAddr)
	if err := appchannel.WaitForPort(ctx, s.appAddr); err != nil {
		return
	}
	o := s.o
	if !o.EnableAppHealthCheck {
		startApp()
		s.health.Ready.Store(true)
		s.log.Info("ready: the app is listening", "addr", s.appAddr)
		return
	}
	cfg := appchannel.ProbeConfig{Path: o.AppHealthCheckPath, Interval: time.Duration(o.AppHealthProbeInterval) * time.Second,
		Timeout: time.Duration(o.AppHealthProbeTimeout) * time.Millisecond, Threshold: o.AppHealthThreshold}
	changed := func(ok bool) {
		if ok {
			startApp()
		}
		s.health.Ready.Store(ok)
	}
	var p *appchannel.Prober
	if s.grpcApp != nil {
		p = appchannel.NewGRPCProber(s.grpcApp, cfg, s.log, changed)
	} else {
		p = appchannel.NewHTTPProber(s.appAddr, cfg, s.log, changed)
	}
	p.Run(ctx)
}

// drain stops taking new work, finishes what is in flight within the
// graceful-shutdown period, then leaves; cleanup closes the rest.
func (s *sidecar) drain() {
	log := s.log
	log.Info("shutting down", "grace", s.o.gracePeriod().String())
	s.health.Ready.Store(false)
	s.removeReg()
	ctx, cancel := context.WithTimeout(context.Background(), s.o.gracePeriod())
	defer cancel()
	_ = s.member.Close(ctx) // leave first, so callers stop picking us
	s.comps.host.Drain()
	if err := s.blocks.pubsub.Stop(ctx); err != nil {
		log.Warn("pub/sub did not drain in time", "err", err)
	}
	if err := s.blocks.bindings.Stop(ctx); err != nil {
		log.Warn("input bindings did not drain in time", "err", err)
	}
	sv := &s.servers
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); _ = sv.http.Shutdown(ctx) }()
	sv.fresh.closeAll() // Shutdown would wait seconds for connections that never sent a request
	go func() { defer wg.Done(); gracefulStop(ctx, sv.grpc) }()
	go func() { defer wg.Done(); gracefulStop(ctx, sv.internal) }()
	for _, srv := range []*http.Server{sv.metrics, sv.admin, sv.prof} {
		if srv != nil {
			_ = srv.Shutdown(ctx)
		}
	}
	wg.Wait()
	sv.wg.Wait()
	if err := s.tracing.Shutdown(ctx); err != nil {
		log.Warn("traces not all exported", "err", err)
	}
	log.Info("stopped")
}
