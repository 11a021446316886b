package cli

import (
	"github.com/spf13/cobra"

	"github.com/outrigger/outrigger/proxy/sidecar"
)

// newSidecarCmd is `outrigger sidecar`: the proxy itself, accepting daprd's flag names.
func newSidecarCmd() *cobra.Command {
	opts := sidecar.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "sidecar",
		Short: "Run the Outrigger sidecar (a drop-in for daprd)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return sidecar.Run(cmd.Context(), opts)
		},
	}
	opts.BindFlags(cmd.Flags())
	return cmd
}
