package sidecar

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/pflag"
)

// Options are the sidecar's settings. Flag names are daprd's, so the sidecar is
// a drop-in for daprd; Outrigger's own flags are marked.
type Options struct {
	AppID                  string
	AppPort                int
	AppProtocol            string
	AppChannelAddress      string
	AppMaxConcurrency      int
	HTTPPort               int
	GRPCPort               int
	InternalGRPCPort       int
	ListenAddresses        string
	PublicPort             int
	MetricsPort            int
	EnableMetrics          bool
	ResourcesPaths         []string
	ComponentsPaths        []string // deprecated alias
	Config                 []string
	LogLevel               string
	LogAsJSON              bool
	EnableAPILogging       bool
	MaxBodySize            string
	MaxRequestSizeMB       int
	ReadBufferSizeKB       int
	EnableAppHealthCheck   bool
	AppHealthCheckPath     string
	AppHealthProbeInterval int
	AppHealthProbeTimeout  int
	AppHealthThreshold     int
	GracefulShutdownSecs   int
	// Outrigger's own.
	GossipPort  int
	GossipJoin  []string
	PluginsPath string
	SocketsPath string
	AdminPort   int
	Balancer    string
	// Watch applies changed Component, Subscription and Resiliency files without a restart.
	Watch bool
	// Profiling serves net/http/pprof on ProfilePort (daprd's --enable-profiling).
	Profiling   bool
	ProfilePort int
	// Accepted for daprd compatibility, not used.
	ignored struct {
		placement, scheduler, mode, sentry, controlPlane, unixSocket, allowedOrigins, blockShutdown string
		mtls, wait                                                                                  bool
	}
}

// DefaultOptions are daprd's defaults.
func DefaultOptions() *Options {
	return &Options{
		AppProtocol:            "http",
		AppChannelAddress:      "127.0.0.1",
		AppMaxConcurrency:      -1,
		HTTPPort:               3500,
		GRPCPort:               50001,
		MetricsPort:            9090,
		EnableMetrics:          true,
		LogLevel:               "info",
		MaxBodySize:            "4Mi",
		AppHealthCheckPath:     "/healthz",
		AppHealthProbeInterval: 5,
		AppHealthProbeTimeout:  500,
		AppHealthThreshold:     3,
		GracefulShutdownSecs:   5,
		GossipPort:             7946,
		Balancer:               "round-robin",
	}
}

// BindFlags registers the flags on fs.
func (o *Options) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.AppID, "app-id", o.AppID, "the app's id (default: a name derived from the host and pid)")
	fs.IntVar(&o.AppPort, "app-port", o.AppPort, "port the app listens on (0 or -1: no app)")
	fs.StringVar(&o.AppProtocol, "app-protocol", o.AppProtocol, "protocol the app speaks: http or grpc")
	fs.StringVar(&o.AppChannelAddress, "app-channel-address", o.AppChannelAddress, "address of the app")
	fs.IntVar(&o.AppMaxConcurrency, "app-max-concurrency", o.AppMaxConcurrency, "cap on concurrent calls to the app (-1: none)")
	fs.IntVar(&o.HTTPPort, "dapr-http-port", o.HTTPPort, "HTTP API port")
	fs.IntVar(&o.GRPCPort, "dapr-grpc-port", o.GRPCPort, "gRPC API port")
	fs.IntVar(&o.InternalGRPCPort, "dapr-internal-grpc-port", o.InternalGRPCPort, "sidecar-to-sidecar gRPC port (0: any free port)")
	fs.StringVar(&o.ListenAddresses, "dapr-listen-addresses", o.ListenAddresses, "comma-separated addresses the API servers bind (default 127.0.0.1 and [::1] when available)")
	fs.IntVar(&o.PublicPort, "dapr-public-port", o.PublicPort, "port serving healthz and metadata publicly (0: off)")
	fs.IntVar(&o.MetricsPort, "metrics-port", o.MetricsPort, "Prometheus metrics port")
	fs.BoolVar(&o.EnableMetrics, "enable-metrics", o.EnableMetrics, "serve Prometheus metrics")
	fs.StringArrayVar(&o.ResourcesPaths, "resources-path", nil, "directory of Dapr resource YAML (repeatable)")
	fs.StringArrayVar(&o.ComponentsPaths, "components-path", nil, "deprecated alias of --resources-path")
	fs.StringArrayVar(&o.Config, "config", nil, "Dapr Configuration YAML file")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "debug, info, warn or error")
	fs.BoolVar(&o.LogAsJSON, "log-as-json", o.LogAsJSON, "log in JSON")
	fs.BoolVar(&o.EnableAPILogging, "enable-api-logging", o.EnableAPILogging, "log every API call")
	fs.StringVar(&o.MaxBodySize, "max-body-size", o.MaxBodySize, "largest request body the building-block APIs accept (e.g. 4Mi); invocation bodies stream")
	fs.IntVar(&o.MaxRequestSizeMB, "dapr-http-max-request-size", -1, "legacy: max request size in MB")
	fs.IntVar(&o.ReadBufferSizeKB, "dapr-http-read-buffer-size", -1, "legacy: read buffer size in KB (headers)")
	fs.IntVar(&o.ReadBufferSizeKB, "read-buffer-size", -1, "read buffer size in KB (headers)")
	fs.BoolVar(&o.EnableAppHealthCheck, "enable-app-health-check", o.EnableAppHealthCheck, "probe the app's health")
	fs.StringVar(&o.AppHealthCheckPath, "app-health-check-path", o.AppHealthCheckPath, "HTTP path of the app health probe")
	fs.IntVar(&o.AppHealthProbeInterval, "app-health-probe-interval", o.AppHealthProbeInterval, "seconds between app health probes")
	fs.IntVar(&o.AppHealthProbeTimeout, "app-health-probe-timeout", o.AppHealthProbeTimeout, "milliseconds before a probe fails")
	fs.IntVar(&o.AppHealthThreshold, "app-health-threshold", o.AppHealthThreshold, "consecutive failures before the app is unhealthy")
	fs.IntVar(&o.GracefulShutdownSecs, "dapr-graceful-shutdown-seconds", o.GracefulShutdownSecs, "seconds to drain in-flight work at shutdown")
	fs.IntVar(&o.GossipPort, "gossip-port", o.GossipPort, "Outrigger: gossip port (0: any free port)")
	fs.StringSliceVar(&o.GossipJoin, "gossip-join", nil, "Outrigger: host:port of gossip members to join (DNS names allowed); empty: zero-config on this host")
	fs.StringVar(&o.PluginsPath, "plugins-path", o.PluginsPath, "Outrigger: directory of plugin binaries (default: plugins/ beside the outrigger binary)")
	fs.StringVar(&o.SocketsPath, "sockets-path", o.SocketsPath, "Outrigger: directory of plugin sockets (default $DAPR_COMPONENTS_SOCKETS_FOLDER or /tmp/dapr-components-sockets)")
	fs.IntVar(&o.AdminPort, "admin-port", o.AdminPort, "Outrigger: admin endpoint port on loopback (0: any free port, -1: off)")
	fs.BoolVar(&o.Watch, "watch", o.Watch, "Outrigger: hot reload: apply changed Component, Subscription and Resiliency files under --resources-path without a restart (also Configuration feature HotReload)")
	fs.StringVar(&o.Balancer, "balancer", o.Balancer, "Outrigger: instance choice: round-robin or least-outstanding (P2C)")
	// daprd flags accepted and ignored.
	fs.StringVar(&o.ignored.placement, "placement-host-address", "", "accepted for daprd compatibility (actors use gossip)")
	fs.StringVar(&o.ignored.scheduler, "scheduler-host-address", "", "accepted for daprd compatibility")
	fs.StringVar(&o.ignored.mode, "mode", "standalone", "accepted for daprd compatibility")
	fs.StringVar(&o.ignored.sentry, "sentry-address", "", "accepted for daprd compatibility")
	fs.StringVar(&o.ignored.controlPlane, "control-plane-address", "", "accepted for daprd compatibility")
	fs.StringVar(&o.ignored.unixSocket, "unix-domain-socket", "", "accepted for daprd compatibility")
	fs.StringVar(&o.ignored.allowedOrigins, "allowed-origins", "*", "accepted for daprd compatibility")
	fs.StringVar(&o.ignored.blockShutdown, "dapr-block-shutdown-duration", "", "accepted for daprd compatibility")
	fs.BoolVar(&o.ignored.mtls, "enable-mtls", false, "accepted for daprd compatibility")
	fs.BoolVar(&o.Profiling, "enable-profiling", false, "serve Go's pprof profiles on --profile-port (loopback)")
	fs.BoolVar(&o.ignored.wait, "wait", false, "accepted for daprd compatibility")
	fs.IntVar(&o.ProfilePort, "profile-port", 7777, "port of the pprof endpoint")
}

// normalize applies "-1 means the default" and derives values.
func (o *Options) normalize() error {
	d := DefaultOptions()
	neg := func(v *int, def int) {
		if *v < 0 {
			*v = def
		}
	}
	neg(&o.HTTPPort, d.HTTPPort)
	neg(&o.GRPCPort, d.GRPCPort)
	neg(&o.MetricsPort, d.MetricsPort)
	neg(&o.AppHealthProbeInterval, d.AppHealthProbeInterval)
	neg(&o.AppHealthProbeTimeout, d.AppHealthProbeTimeout)
	neg(&o.AppHealthThreshold, d.AppHealthThreshold)
	neg(&o.GracefulShutdownSecs, d.GracefulShutdownSecs)
	if o.AppPort < 0 {
		o.AppPort = 0
	}
	if o.InternalGRPCPort < 0 {
		o.InternalGRPCPort = 0
	}
	o.ResourcesPaths = append(o.ResourcesPaths, o.ComponentsPaths...)
	if o.AppProtocol != "http" && o.AppProtocol != "grpc" {
		return fmt.Errorf("--app-protocol %q is not supported: use http or grpc", o.AppProtocol)
	}
	if o.AppID == "" {
		if v := os.Getenv("APP_ID"); v != "" {
			o.AppID = v
		} else {
			host, _ := os.Hostname()
			o.AppID = host + "-" + strconv.Itoa(os.Getpid())
		}
	}
	return nil
}

// maxBody parses --max-body-size (and the legacy MB flag).
func (o *Options) maxBody() (int64, error) {
	if o.MaxRequestSizeMB > 0 {
		return int64(o.MaxRequestSizeMB) << 20, nil
	}
	return parseSize(o.MaxBodySize)
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	num := s
	for _, suf := range []struct {
		s string
		m int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"K", 1000}, {"M", 1000 * 1000}, {"G", 1000 * 1000 * 1000}, {"B", 1}} {
		if len(s) > len(suf.s) && s[len(s)-len(suf.s):] == suf.s {
			mult, num = suf.m, s[:len(s)-len(suf.s)]
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q (e.g. 4Mi, 16MB, 1048576)", s)
	}
	return n * mult, nil
}

func (o *Options) gracePeriod() time.Duration {
	return time.Duration(o.GracefulShutdownSecs) * time.Second
}
