package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/outrigger/outrigger/proxy/cli/launch"
	"github.com/outrigger/outrigger/proxy/cli/runfile"
	"github.com/outrigger/outrigger/proxy/hostreg"
)

// Sidecar flag names run itself reads (ports it picks, env it gives the app).
const (
	flagAppID            = "app-id"
	flagAppPort          = "app-port"
	flagAppProtocol      = "app-protocol"
	flagAppChannelAddr   = "app-channel-address"
	flagHTTPPort         = "dapr-http-port"
	flagGRPCPort         = "dapr-grpc-port"
	flagInternalGRPCPort = "dapr-internal-grpc-port"
	flagMetricsPort      = "metrics-port"
	flagResourcesPath    = "resources-path"
	flagComponentsPath   = "components-path"
	flagConfig           = "config"
)

// pickedPorts are the sidecar ports run picks when they are not given.
var pickedPorts = []string{flagHTTPPort, flagGRPCPort, flagInternalGRPCPort, flagMetricsPort}

// shorthands are `dapr run`'s one-letter flags.
var shorthands = map[string]string{
	flagAppID: "a", flagAppPort: "p", flagAppProtocol: "P", flagHTTPPort: "H", flagGRPCPort: "G",
	flagInternalGRPCPort: "I", flagMetricsPort: "M", flagConfig: "c", flagComponentsPath: "d",
	"unix-domain-socket": "u",
}

// daprdFlags is daprd's v1.14 flag set (compat reference §5.7) plus the
// dapr-run-only flags; true marks booleans. Those the Outrigger sidecar does
// not define are accepted by run and ignored with a warning.
var daprdFlags = map[string]bool{
	flagAppID: false, flagAppPort: false, flagAppProtocol: false, flagAppChannelAddr: false,
	"app-max-concurrency": false, "app-ssl": true, flagHTTPPort: false, flagGRPCPort: false,
	flagInternalGRPCPort: false, "dapr-listen-addresses": false, "dapr-public-port": false,
	"unix-domain-socket": false, flagResourcesPath: false, flagComponentsPath: false, flagConfig: false,
	"placement-host-address": false, "scheduler-host-address": false, "mode": false, "enable-mtls": true,
	"sentry-address": false, "control-plane-address": false, flagMetricsPort: false, "enable-metrics": true,
	"enable-profiling": true, "profile-port": false, "log-level": false, "log-as-json": true,
	"enable-api-logging": true, "dapr-http-max-request-size": false, "max-body-size": false,
	"dapr-http-read-buffer-size": false, "read-buffer-size": false, "enable-app-health-check": true,
	"app-health-check-path": false, "app-health-probe-interval": false, "app-health-probe-timeout": false,
	"app-health-threshold": false, "dapr-graceful-shutdown-seconds": false, "dapr-block-shutdown-duration": false,
	"allowed-origins": false, "wait": true, "runtime-path": false,
}

// repeatable daprd flags (string arrays when we define them ourselves).
var repeatable = map[string]bool{flagResourcesPath: true, flagConfig: true}

type runOptions struct {
	runFile string
	all     *pflag.FlagSet // run's flag set: Changed is recorded here
	sidecar *pflag.FlagSet // the sidecar's own flags (values shared with all)
	ignored *pflag.FlagSet // daprd flags the sidecar lacks
}

// changed reports whether the user set the flag on the command line.
func (o *runOptions) changed(name string) bool {
	f := o.all.Lookup(name)
	return f != nil && f.Changed
}

// visit calls fn for every flag of set that the user set, in name order.
func (o *runOptions) visit(set *pflag.FlagSet, fn func(*pflag.Flag)) {
	set.VisitAll(func(f *pflag.Flag) {
		if o.changed(f.Name) {
			fn(f)
		}
	})
}

func newRunCmd(s *streams) *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run [flags] [-- <command> [args...]]",
		Short: "Run an app with an Outrigger sidecar (like `dapr run`), or several with -f",
		Long: `Starts the Outrigger sidecar for an app and then the app itself, like ` + "`dapr run`" + `.

Ports not given are picked free; the app gets APP_ID, APP_PORT, APP_PROTOCOL,
DAPR_HTTP_PORT, DAPR_GRPC_PORT and DAPR_METRICS_PORT in its environment. With
--app-port the app starts at once; without, once the sidecar is up. Ctrl-C or
the app exiting stops both; the exit code is the app's.

Without --resources-path/--config, ~/.outrigger/components and
~/.outrigger/config.yaml are used if they exist (see ` + "`outrigger init`" + `).

With -f, runs every app of a Dapr multi-app run template (dapr.yaml format).`,
		Example: `  outrigger run --app-id order-processor --app-port 5000 -- python3 app.py
  outrigger run -f examples/order-processor/run.yaml`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.runFile != "" {
				if len(args) > 0 {
					return errors.New("give either -f <run template> or a command, not both")
				}
				var set []string
				cmd.Flags().Visit(func(f *pflag.Flag) {
					if f.Name != "run-file" {
						set = append(set, "--"+f.Name)
					}
				})
				if len(set) > 0 {
					return fmt.Errorf("-f takes every setting from the run template; remove %s", strings.Join(set, ", "))
				}
				return runTemplate(cmd.Context(), s, o.runFile)
			}
			return runOne(cmd.Context(), s, o, args)
		},
	}
	fs := cmd.Flags()
	o.all = fs
	// `outrigger run --app-id x python3 app.py --port 5`: flags end at the
	// command, as with dapr run.
	fs.SetInterspersed(false)
	fs.StringVarP(&o.runFile, "run-file", "f", "", "run the apps of a Dapr multi-app run template (a file, or a folder holding dapr.yaml)")

	o.sidecar = newSidecarCmd().Flags()
	o.ignored = pflag.NewFlagSet("ignored", pflag.ContinueOnError)
	o.sidecar.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" || fs.Lookup(f.Name) != nil {
			return
		}
		c := *f
		if c.Shorthand == "" {
			c.Shorthand = shorthands[f.Name]
		}
		if c.Shorthand != "" && fs.ShorthandLookup(c.Shorthand) != nil {
			c.Shorthand = ""
		}
		fs.AddFlag(&c)
	})
	for name, isBool := range daprdFlags {
		if fs.Lookup(name) != nil {
			continue
		}
		short := shorthands[name]
		if short != "" && fs.ShorthandLookup(short) != nil {
			short = ""
		}
		usage := "accepted for dapr compatibility; not supported by the Outrigger sidecar (ignored)"
		switch {
		case isBool:
			o.ignored.BoolP(name, short, false, usage)
		case repeatable[name] || name == flagComponentsPath:
			o.ignored.StringArrayP(name, short, nil, usage)
		default:
			o.ignored.StringP(name, short, "", usage)
		}
	}
	fs.AddFlagSet(o.ignored)
	cmd.Flags().SortFlags = true
	return cmd
}

// sidecarExe is the binary run starts as `<exe> sidecar …`.
func (s *streams) sidecarExe() (string, error) {
	if s.exe != "" {
		return s.exe, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the outrigger binary to start the sidecar: %w", err)
	}
	return exe, nil
}

// runOne is `outrigger run [flags] -- <command>`.
func runOne(ctx context.Context, s *streams, o *runOptions, command []string) error {
	fs := o.sidecar
	args := []string{"sidecar"}
	appID := ""
	if f := fs.Lookup(flagAppID); f != nil {
		appID = f.Value.String()
	}
	if appID == "" {
		appID = randomAppID()
		s.log.Info("no --app-id given; using a random one", "app-id", appID)
	}
	args = append(args, "--"+flagAppID+"="+appID)

	// Ports: the given ones, or free ones (dapr passes -1 for "not given").
	ports := map[string]int{}
	var missing []string
	for _, name := range pickedPorts {
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if n, err := strconv.Atoi(f.Value.String()); err == nil && o.changed(name) && n > 0 {
			ports[name] = n
			continue
		}
		missing = append(missing, name)
	}
	free, err := freePorts(len(missing))
	if err != nil {
		return err
	}
	for i, name := range missing {
		ports[name] = free[i]
	}
	for _, name := range pickedPorts {
		if p, ok := ports[name]; ok {
			args = append(args, fmt.Sprintf("--%s=%d", name, p))
		}
	}

	// Everything else the user set goes through unchanged.
	o.visit(fs, func(f *pflag.Flag) {
		if f.Name == flagAppID || ports[f.Name] != 0 {
			return
		}
		args = append(args, flagArgs(f)...)
	})
	o.visit(o.ignored, func(f *pflag.Flag) {
		if f.Name == flagComponentsPath && fs.Lookup(flagResourcesPath) != nil {
			for _, v := range sliceValues(f) {
				args = append(args, "--"+flagResourcesPath+"="+v)
			}
			return
		}
		s.log.Warn("flag not supported by the Outrigger sidecar; ignored", "flag", "--"+f.Name)
	})
	args = append(args, homeDefaults(s, o.all)...)

	appPort := intFlag(fs, flagAppPort)
	protocol := "http"
	if f := fs.Lookup(flagAppProtocol); f != nil && f.Value.String() != "" {
		protocol = f.Value.String()
	}
	channel := ""
	if f := fs.Lookup(flagAppChannelAddr); f != nil {
		channel = f.Value.String()
	}
	exe, err := s.sidecarExe()
	if err != nil {
		return err
	}
	console := launch.NewConsole(s.out)
	scOut := launch.NewLineWriter(console, "== SIDECAR("+appID+") == ", nil)
	pair := launch.Pair{
		Name:    appID,
		Sidecar: launch.Cmd{Path: exe, Args: args, Stdout: scOut, Stderr: scOut},
	}
	httpPort := ports[flagHTTPPort]
	if len(command) > 0 {
		appOut := launch.NewLineWriter(console, "== APP == ", nil)
		pair.App = &launch.Cmd{
			Path: command[0], Args: command[1:],
			Env:    launch.Environ(os.Environ(), appEnv(appID, appPort, protocol, channel, ports)...),
			Stdout: appOut, Stderr: appOut,
		}
		if appPort <= 0 && httpPort > 0 {
			pair.Ready = launch.HTTPReady(outboundURL(httpPort), sidecarStartTimeout)
		}
	}
	if httpPort > 0 {
		pair.OnStarted = putMetadata(s, httpPort, strings.Join(command, " "), nil)
	}
	s.log.Info("starting", "app-id", appID, "http-port", httpPort, "grpc-port", ports[flagGRPCPort], "app-port", appPort)
	sup := &launch.Supervisor{Log: s.log, Grace: stopGrace}
	code, results := sup.Run(ctx, []launch.Pair{pair})
	return exitFrom(code, results)
}

const (
	sidecarStartTimeout = 60 * time.Second
	stopGrace           = 10 * time.Second
)

// homeDefaults adds ~/.outrigger/components and ~/.outrigger/config.yaml
// when no resources path or config was given and they exist.
func homeDefaults(s *streams, sets ...*pflag.FlagSet) []string {
	given := func(name string) bool {
		for _, fs := range sets {
			if f := fs.Lookup(name); f != nil && f.Changed {
				return true
			}
		}
		return false
	}
	def := s.homeDefaults()
	var args []string
	if !given(flagResourcesPath) && !given(flagComponentsPath) && def.ResourcesDir != "" && isDir(def.ResourcesDir) {
		args = append(args, "--"+flagResourcesPath+"="+def.ResourcesDir)
	}
	if !given(flagConfig) && def.ConfigFile != "" && isFile(def.ConfigFile) {
		args = append(args, "--"+flagConfig+"="+def.ConfigFile)
	}
	return args
}

func (s *streams) homeDefaults() runfile.Defaults {
	home, err := hostreg.Home()
	if err != nil {
		return runfile.Defaults{}
	}
	return runfile.Defaults{ResourcesDir: filepath.Join(home, "components"), ConfigFile: filepath.Join(home, "config.yaml")}
}

func isDir(p string) bool  { fi, err := os.Stat(p); return err == nil && fi.IsDir() }
func isFile(p string) bool { fi, err := os.Stat(p); return err == nil && !fi.IsDir() }

func intFlag(fs *pflag.FlagSet, name string) int {
	f := fs.Lookup(name)
	if f == nil {
		return 0
	}
	n, _ := strconv.Atoi(f.Value.String())
	return n
}

// flagArgs renders a set flag back into command-line arguments.
func flagArgs(f *pflag.Flag) []string {
	if _, ok := f.Value.(pflag.SliceValue); ok {
		var out []string
		for _, v := range sliceValues(f) {
			out = append(out, "--"+f.Name+"="+v)
		}
		return out
	}
	return []string{"--" + f.Name + "=" + f.Value.String()}
}

func sliceValues(f *pflag.Flag) []string {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return sv.GetSlice()
	}
	return []string{f.Value.String()}
}

// appEnv is what `dapr run` adds to the app's environment.
func appEnv(appID string, appPort int, protocol, channel string, ports map[string]int) []string {
	env := []string{"APP_ID=" + appID}
	if appPort > 0 {
		env = append(env, "APP_PORT="+strconv.Itoa(appPort))
	}
	if channel != "" && channel != "127.0.0.1" {
		env = append(env, "APP_CHANNEL_ADDRESS="+channel)
	}
	env = append(env, "APP_PROTOCOL="+protocol)
	for name, envName := range map[string]string{flagHTTPPort: "DAPR_HTTP_PORT", flagGRPCPort: "DAPR_GRPC_PORT", flagMetricsPort: "DAPR_METRICS_PORT"} {
		if p := ports[name]; p > 0 {
			env = append(env, envName+"="+strconv.Itoa(p))
		}
	}
	return env
}

func outboundURL(httpPort int) string {
	return fmt.Sprintf("http://127.0.0.1:%d/v1.0/healthz/outbound", httpPort)
}

// putMetadata returns an OnStarted hook that tells the sidecar who started
// it, as the dapr CLI does: PUT /v1.0/metadata/{cliPID,appPID,appCommand}
// (plus extra keys, for run templates).
func putMetadata(s *streams, httpPort int, appCommand string, extra map[string]string) func(ctx context.Context, sidecarPID, appPID int) {
	return func(ctx context.Context, _ int, appPID int) {
		if err := launch.HTTPReady(outboundURL(httpPort), sidecarStartTimeout)(ctx); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("sidecar did not become ready", "error", err)
			}
			return
		}
		md := map[string]string{"cliPID": strconv.Itoa(os.Getpid()), "appCommand": appCommand}
		if appPID > 0 {
			md["appPID"] = strconv.Itoa(appPID)
		}
		for k, v := range extra {
			md[k] = v
		}
		client := &http.Client{Timeout: 5 * time.Second}
		for k, v := range md {
			url := fmt.Sprintf("http://127.0.0.1:%d/v1.0/metadata/%s", httpPort, k)
			req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader(v))
			if err != nil {
				continue
			}
			resp, err := client.Do(req)
			if err != nil {
				s.log.Debug("could not set sidecar metadata", "key", k, "error", err)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				s.log.Debug("could not set sidecar metadata", "key", k, "status", resp.Status)
			}
		}
	}
}

// exitFrom turns the supervisor's outcome into the command's result.
func exitFrom(code int, results []launch.Result) error {
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	if code == 0 && len(errs) == 0 {
		return nil
	}
	return &exitError{code: code, err: errors.Join(errs...)}
}
