package cli

import "github.com/spf13/cobra"

func addServeCommands(root *cobra.Command) {}
