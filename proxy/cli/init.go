package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/outrigger/outrigger/proxy/hostreg"
)

const statestoreTmpl = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.sqlite
  version: v1
  metadata:
  - name: connectionString
    value: "{{DATA}}/state.db"
  - name: actorStateStore
    value: "true"
`

const pubsubTmpl = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.sqlite
  version: v1
  metadata:
  - name: connectionString
    value: "{{DATA}}/pubsub.db"
`

const configTmpl = `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: daprConfig
spec: {}
`

func newInitCmd(s *streams) *cobra.Command {
	var home string
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write default SQLite state and pub/sub components and a Configuration to ~/.outrigger",
		Long: `Writes <home>/components/statestore.yaml (state.sqlite), <home>/components/pubsub.yaml
(pubsub.sqlite) and <home>/config.yaml. Nothing to install: the SQLite plugins ship with
Outrigger. Existing files are kept unless --force. <home> is --home, $OUTRIGGER_HOME or ~/.outrigger.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if home == "" {
				h, err := hostreg.Home()
				if err != nil {
					return err
				}
				home = h
			}
			home, err := filepath.Abs(home)
			if err != nil {
				return fmt.Errorf("--home: %w", err)
			}
			data := filepath.Join(home, "data")
			for _, d := range []string{filepath.Join(home, "components"), data} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					return fmt.Errorf("create %s: %w", d, err)
				}
			}
			files := []struct{ path, body string }{
				{filepath.Join(home, "components", "statestore.yaml"), statestoreTmpl},
				{filepath.Join(home, "components", "pubsub.yaml"), pubsubTmpl},
				{filepath.Join(home, "config.yaml"), configTmpl},
			}
			for _, f := range files {
				body := strings.ReplaceAll(f.body, "{{DATA}}", data)
				flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
				if force {
					flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
				}
				fh, err := os.OpenFile(f.path, flags, 0o644)
				if errors.Is(err, fs.ErrExist) {
					fmt.Fprintf(s.out, "kept    %s (exists; --force rewrites it)\n", f.path)
					continue
				}
				if err != nil {
					return fmt.Errorf("write %s: %w", f.path, err)
				}
				_, werr := fh.WriteString(body)
				if cerr := fh.Close(); werr == nil {
					werr = cerr
				}
				if werr != nil {
					return fmt.Errorf("write %s: %w", f.path, werr)
				}
				fmt.Fprintf(s.out, "wrote   %s\n", f.path)
			}
			fmt.Fprintf(s.out, "Outrigger is initialised in %s. Try: outrigger run --app-id myapp -- <your app>\n", home)
			return nil
		},
	}
	cmd.Flags().StringVar(&home, "home", "", "Outrigger home (default $OUTRIGGER_HOME or ~/.outrigger)")
	cmd.Flags().BoolVar(&force, "force", false, "rewrite files that exist")
	return cmd
}
