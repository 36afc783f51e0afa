package cli

import "github.com/spf13/cobra"

func addPKICommands(root *cobra.Command) {}
