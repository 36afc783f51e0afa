package cli

import "github.com/spf13/cobra"

func addCheckCommand(root *cobra.Command) {}
