package cli

import "github.com/spf13/cobra"

func addDaemonConfigCommand(root *cobra.Command) {}
