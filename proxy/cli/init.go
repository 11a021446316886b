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

const secretstoreTmpl = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: localsecretstore
spec:
  type: secretstores.local.file
  version: v1
  metadata:
  - name: secretsFile
    value: "{{HOME}}/secrets.json"
  - name: nestedSeparator
    value: ":"
`

const lockstoreTmpl = `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: lockstore
spec:
  type: lock.sqlite
  version: v1
  metadata:
  - name: connectionString
    value: "{{DATA}}/locks.db"
`

// secretsExample is the secrets.json written beside the components when
// there is none: one flat secret and one nested (read as "database:password").
const secretsExample = `{
  "example-secret": "change me",
  "database": {
    "password": "change me too"
  }
}
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
		Short: "Write default state, pub/sub, secret store and lock components and a Configuration to ~/.outrigger",
		Long: `Writes <home>/components/statestore.yaml (state.sqlite), <home>/components/pubsub.yaml
(pubsub.sqlite), <home>/components/secretstore.yaml (secretstores.local.file reading
<home>/secrets.json), <home>/components/lockstore.yaml (lock.sqlite) and <home>/config.yaml, plus an
example <home>/secrets.json when there is none. Nothing to install: these plugins ship with
Outrigger. Existing files are kept unless --force (secrets.json is never rewritten).
<home> is --home, $OUTRIGGER_HOME or ~/.outrigger.`,
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
			// keep: never rewritten, not even with --force (the user's secrets).
			files := []struct {
				path, body string
				perm       os.FileMode
				keep       bool
			}{
				{filepath.Join(home, "components", "statestore.yaml"), statestoreTmpl, 0o644, false},
				{filepath.Join(home, "components", "pubsub.yaml"), pubsubTmpl, 0o644, false},
				{filepath.Join(home, "components", "secretstore.yaml"), secretstoreTmpl, 0o644, false},
				{filepath.Join(home, "components", "lockstore.yaml"), lockstoreTmpl, 0o644, false},
				{filepath.Join(home, "secrets.json"), secretsExample, 0o600, true},
				{filepath.Join(home, "config.yaml"), configTmpl, 0o644, false},
			}
			for _, f := range files {
				body := strings.NewReplacer("{{DATA}}", data, "{{HOME}}", home).Replace(f.body)
				flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
				if force && !f.keep {
					flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
				}
				fh, err := os.OpenFile(f.path, flags, f.perm)
				if errors.Is(err, fs.ErrExist) {
					if f.keep {
						fmt.Fprintf(s.out, "kept    %s (exists)\n", f.path)
					} else {
						fmt.Fprintf(s.out, "kept    %s (exists; --force rewrites it)\n", f.path)
					}
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
