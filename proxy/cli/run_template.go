package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/outrigger/outrigger/proxy/cli/launch"
	"github.com/outrigger/outrigger/proxy/cli/runfile"
)

// runTemplate is `outrigger run -f <template>`: every app of the template
// with its sidecar, output prefixed per app, one Ctrl-C stopping all.
func runTemplate(ctx context.Context, s *streams, path string) error {
	tpl, err := runfile.Load(path, s.homeDefaults())
	if err != nil {
		return err
	}
	for _, w := range tpl.Warnings {
		s.log.Warn(w)
	}
	exe, err := s.sidecarExe()
	if err != nil {
		return err
	}
	known := newSidecarCmd().Flags()
	console := launch.NewConsole(s.out)
	stamp := time.Now().Format("20060102150405")
	var pairs []launch.Pair
	var files []io.Closer
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, app := range tpl.Apps {
		ports, err := templatePorts(app)
		if err != nil {
			return err
		}
		args, ignored := templateSidecarArgs(app, ports, known)
		for _, name := range ignored {
			s.log.Warn("setting not supported by the Outrigger sidecar; ignored", "app", app.AppID, "flag", "--"+name)
		}
		logDir := filepath.Join(app.AppDirPath, ".dapr", "logs")
		open := func(kind string) (io.Writer, string, error) {
			if err := os.MkdirAll(logDir, 0o755); err != nil {
				return nil, "", fmt.Errorf("app %s: create log folder: %w", app.AppID, err)
			}
			p := filepath.Join(logDir, fmt.Sprintf("%s_%s_%s.log", app.AppID, kind, stamp))
			f, err := os.Create(p)
			if err != nil {
				return nil, "", fmt.Errorf("app %s: create log file: %w", app.AppID, err)
			}
			files = append(files, f)
			return f, p, nil
		}
		appOut, appLog, err := destination(console, "== APP - "+app.AppID+" == ", app.AppLogDestination, func() (io.Writer, string, error) { return open("app") })
		if err != nil {
			return err
		}
		scOut, scLog, err := destination(console, "== SIDECAR - "+app.AppID+" == ", app.DaprdLogDestination, func() (io.Writer, string, error) { return open("daprd") })
		if err != nil {
			return err
		}
		pair := launch.Pair{
			Name:    app.AppID,
			Sidecar: launch.Cmd{Path: exe, Args: args, Stdout: scOut, Stderr: scOut},
		}
		if len(app.Command) > 0 {
			var extra []string
			for k, v := range app.Env {
				extra = append(extra, k+"="+v)
			}
			extra = append(extra, appEnv(app.AppID, app.AppPort, app.AppProtocol, app.AppChannelAddress, ports)...)
			pair.App = &launch.Cmd{
				Path: app.Command[0], Args: app.Command[1:], Dir: app.AppDirPath,
				Env:    launch.Environ(os.Environ(), extra...),
				Stdout: appOut, Stderr: appOut,
			}
			if app.AppPort <= 0 {
				pair.Ready = launch.HTTPReady(outboundURL(ports[flagHTTPPort]), sidecarStartTimeout)
			}
		}
		md := map[string]string{"runTemplatePath": tpl.Path}
		if tpl.Name != "" {
			md["runTemplateName"] = tpl.Name
		}
		if appLog != "" {
			md["appLogPath"] = appLog
		}
		if scLog != "" {
			md["daprdLogPath"] = scLog
		}
		pair.OnStarted = putMetadata(s, ports[flagHTTPPort], strings.Join(app.Command, " "), md)
		s.log.Info("starting", "app-id", app.AppID, "http-port", ports[flagHTTPPort], "grpc-port", ports[flagGRPCPort], "app-port", app.AppPort, "dir", app.AppDirPath)
		if scLog != "" && app.DaprdLogDestination == runfile.DestFile {
			s.log.Info("sidecar logs go to a file", "app-id", app.AppID, "file", scLog)
		}
		pairs = append(pairs, pair)
	}
	sup := &launch.Supervisor{Log: s.log, Grace: stopGrace}
	code, results := sup.Run(ctx, pairs)
	return exitFrom(code, results)
}

// destination builds the writer for a log destination; open creates the
// log file when the destination includes one.
func destination(console *launch.Console, prefix, dest string, open func() (io.Writer, string, error)) (*launch.LineWriter, string, error) {
	var file io.Writer
	var path string
	if dest == runfile.DestFile || dest == runfile.DestFileAndConsole {
		var err error
		if file, path, err = open(); err != nil {
			return nil, "", err
		}
	}
	if dest == runfile.DestFile {
		console = nil
	}
	return launch.NewLineWriter(console, prefix, file), path, nil
}

// templatePorts returns the app's sidecar ports, picking free ones for
// those not given.
func templatePorts(app runfile.App) (map[string]int, error) {
	given := map[string]int{flagHTTPPort: app.HTTPPort, flagGRPCPort: app.GRPCPort, flagInternalGRPCPort: app.InternalGRPCPort, flagMetricsPort: app.MetricsPort}
	var missing []string
	for _, name := range pickedPorts {
		if given[name] <= 0 {
			missing = append(missing, name)
		}
	}
	free, err := freePorts(len(missing))
	if err != nil {
		return nil, err
	}
	for i, name := range missing {
		given[name] = free[i]
	}
	return given, nil
}

// templateSidecarArgs renders an app of a run template as sidecar
// arguments, keeping only flags the sidecar knows; it also returns the
// names of set flags the sidecar does not know.
func templateSidecarArgs(app runfile.App, ports map[string]int, known *pflag.FlagSet) (args, ignored []string) {
	args = []string{"sidecar"}
	add := func(name string, values ...string) {
		if known.Lookup(name) == nil {
			ignored = append(ignored, name)
			return
		}
		for _, v := range values {
			args = append(args, "--"+name+"="+v)
		}
	}
	str := func(name, v string) {
		if v != "" {
			add(name, v)
		}
	}
	num := func(name string, v int) {
		if v != 0 {
			add(name, strconv.Itoa(v))
		}
	}
	flag := func(name string, v bool) {
		if v {
			add(name, "true")
		}
	}
	add(flagAppID, app.AppID)
	for _, name := range pickedPorts {
		num(name, ports[name])
	}
	if app.AppPort > 0 {
		num(flagAppPort, app.AppPort)
	}
	str(flagAppProtocol, app.AppProtocol)
	str(flagAppChannelAddr, app.AppChannelAddress)
	if len(app.ResourcesPaths) > 0 {
		add(flagResourcesPath, app.ResourcesPaths...)
	}
	str(flagConfig, app.ConfigFile)
	str("log-level", app.LogLevel)
	str("dapr-listen-addresses", app.APIListenAddresses)
	str("placement-host-address", app.PlacementHostAddress)
	str("scheduler-host-address", app.SchedulerHostAddress)
	str("unix-domain-socket", app.UnixDomainSocket)
	if app.MaxConcurrency > 0 {
		num("app-max-concurrency", app.MaxConcurrency)
	}
	if app.MaxRequestBodySize > 0 {
		num("dapr-http-max-request-size", app.MaxRequestBodySize)
	}
	if app.HTTPReadBufferSize > 0 {
		num("dapr-http-read-buffer-size", app.HTTPReadBufferSize)
	}
	flag("enable-app-health-check", app.EnableAppHealth)
	str("app-health-check-path", app.AppHealthPath)
	num("app-health-probe-interval", app.AppHealthInterval)
	num("app-health-probe-timeout", app.AppHealthTimeout)
	num("app-health-threshold", app.AppHealthThreshold)
	flag("enable-api-logging", app.EnableAPILogging)
	flag("enable-profiling", app.EnableProfiling)
	if app.ProfilePort > 0 {
		num("profile-port", app.ProfilePort)
	}
	flag("app-ssl", app.AppSSL)
	return args, ignored
}
