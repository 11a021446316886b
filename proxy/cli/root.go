package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

// Execute runs the `outrigger` command line with os.Args and returns the
// process exit code. ctx is cancelled on SIGINT/SIGTERM by the caller;
// commands that supervise processes stop them cleanly when it is.
func Execute(ctx context.Context) int {
	return run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

// run is Execute with its inputs explicit, for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	root := newRootCmd(&streams{out: stdout, errOut: stderr, log: logger})
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "Error:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "Error:", err)
	return 1
}

// streams is what every command writes to: its output, its diagnostics and
// a logger on the diagnostics stream.
type streams struct {
	out    io.Writer
	errOut io.Writer
	log    *slog.Logger
	exe    string // the binary started as the sidecar; "" = this one
}

// exitError makes Execute return a specific exit code (the app's, for run).
type exitError struct {
	code int
	err  error // printed when not nil
}

func (e *exitError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

func (e *exitError) Unwrap() error { return e.err }

func newRootCmd(s *streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "outrigger",
		Short: "Outrigger: a Dapr-compatible sidecar runtime with out-of-process component plugins",
		Long: `Outrigger runs a Dapr-compatible sidecar next to your app.

  outrigger init                       write default SQLite components to ~/.outrigger
  outrigger run --app-id orders -- python3 app.py
  outrigger run -f dapr.yaml           run several apps from a Dapr multi-app template
  outrigger list | stop | invoke | publish | version`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())
	})
	root.AddCommand(
		newSidecarCmd(),
		newRunCmd(s),
		newListCmd(s),
		newStatusCmd(s),
		newStopCmd(s),
		newInvokeCmd(s),
		newPublishCmd(s),
		newInitCmd(s),
		newVersionCmd(s),
	)
	return root
}
